/** audit: the append-only, hash-chained audit log (peer connections, refusals, key rotations, trust changes). */
export {
  AUDIT_GENESIS_HASH,
  type AuditEntry,
  type AuditKind,
  AuditLog,
  type AuditLogDeps,
  type AuditVerification,
  ensureAuditSchema,
} from './audit-log.js';
