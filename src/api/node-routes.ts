import { createReadStream, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Type } from '@sinclair/typebox';
import type { HttpApp } from './http.js';
import type { AuditLog } from '../audit/index.js';
import {
  dropQuarantined,
  dropQuarantinedWhere,
  listQuarantined,
  peerTrustScores,
  releaseQuarantined,
  releaseQuarantinedWhere,
  showQuarantined,
  trustOutcomeTotals,
} from '../cartridges/index.js';
import type { WeftNode } from '../node/index.js';
import { WeftError } from '../errors/index.js';
import type { NodeIdentity } from '../identity/index.js';
import { fromTeleClaudeJson, type MeshService, type PeerBook } from '../mesh/index.js';
import { IdParams } from './routes.js';

export interface NodeRoutesDeps {
  node: WeftNode;
  /** The current identity (a rotation replaces it). */
  identity: () => NodeIdentity;
  audit: AuditLog;
  peers: PeerBook;
  mesh: MeshService | undefined;
  /** Rotates the node key (daemon-level: it re-signs and announces). */
  rotate?: () => Promise<Record<string, unknown>>;
}

const SendBody = Type.Object({ computer: Type.String({ minLength: 1 }), text: Type.String({ minLength: 1, maxLength: 4000 }) });
const QuarantineQuery = Type.Object({
  status: Type.Optional(Type.Union([Type.Literal('held'), Type.Literal('released'), Type.Literal('dropped'), Type.Literal('all')])),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  cursor: Type.Optional(Type.Integer({ minimum: 1, description: 'nextCursor of the previous page' })),
  source: Type.Optional(Type.String({ minLength: 1, maxLength: 300 })),
  type: Type.Optional(Type.String({ minLength: 1, maxLength: 300 })),
});
/** Every held event of a source and/or type: at least one of the two, so nothing is released by accident. */
const QuarantineBulk = Type.Object(
  {
    source: Type.Optional(Type.String({ minLength: 1, maxLength: 300 })),
    type: Type.Optional(Type.String({ minLength: 1, maxLength: 300 })),
    all: Type.Optional(Type.Boolean({ description: 'every held event (instead of a source or type)' })),
  },
  { additionalProperties: false },
);
type Bulk = { source?: string; type?: string; all?: boolean };
const bulkFilter = (b: Bulk): { source?: string; eventType?: string } => {
  if (b.source === undefined && b.type === undefined && b.all !== true)
    throw new WeftError('WEFT_VALIDATION', 'say which held events: a source, a type, or all');
  return { ...(b.source !== undefined ? { source: b.source } : {}), ...(b.type !== undefined ? { eventType: b.type } : {}) };
};

const DecodeBody = Type.Object({
  base64: Type.Optional(Type.String({ maxLength: 12_000_000, description: 'a Weft frame (the payload field of an inbox entry)' })),
  teleclaude: Type.Optional(Type.String({ maxLength: 8_000_000, description: 'a TeleClaude mesh_event payload (envelope JSON)' })),
});

const RejectionsQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  cursor: Type.Optional(Type.Integer({ minimum: 1 })),
  origin: Type.Optional(Type.String({ maxLength: 300 })),
  code: Type.Optional(Type.String({ maxLength: 100 })),
});

const DeadLettersQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  cursor: Type.Optional(Type.Integer({ minimum: 1, description: 'nextCursor of the previous page' })),
  cartridge: Type.Optional(Type.String({ minLength: 1, maxLength: 300, description: "the stage that failed: a cartridge's name, domain:<domain>/<cartridge>, mesh-sender:<peer>" })),
  type: Type.Optional(Type.String({ minLength: 1, maxLength: 300 })),
});

/** A TeleClaude mesh_event payload read as the TeleClaude wire reads it. */
function describeTeleClaude(json: string): Record<string, unknown> {
  try {
    const envelope = fromTeleClaudeJson(json, '0-0');
    return { kind: 'teleclaude-mesh-event', verdict: { ok: true, signature: 'none (TeleClaude signs nothing: accepted only from a configured peer of this cluster)' }, envelope };
  } catch (err) {
    return { kind: 'teleclaude-mesh-event', verdict: { ok: false, code: 'LEGACY_ENTRY_INVALID', reason: (err as Error).message } };
  }
}

/** Routes for the dead letters: the events a cartridge failed on, to look at. */
export function deadLetterRoutes({ node }: { node: WeftNode }): (app: HttpApp) => void {
  return (app) => {
    app.get('/api/deadletters', { schema: { querystring: DeadLettersQuery } }, async (req) => {
      const q = req.query as { limit?: number; cursor?: number; cartridge?: string; type?: string };
      const limit = q.limit ?? 50;
      const items = node.ns.deadLetters.list({
        limit,
        ...(q.cursor ? { cursor: q.cursor } : {}),
        ...(q.cartridge ? { cartridge: q.cartridge } : {}),
        ...(q.type ? { eventType: q.type } : {}),
      });
      const last = items[items.length - 1];
      return { items, nextCursor: items.length === limit && last ? last.id : null, total: node.ns.deadLetters.count(), kept: node.ns.deadLetters.limit };
    });
    app.get('/api/deadletters/:id', { schema: { params: IdParams } }, async (req) => node.ns.deadLetters.get((req.params as { id: number }).id));
  };
}

/**
 * `POST /api/backup`: a consistent copy of the node's database, made beside it (the data dir
 * has room for what the database has) and sent as the answer's body, then deleted. One at a
 * time; a POST, so a read-only dashboard login cannot take the whole database.
 */
export function backupRoutes({ node }: { node: WeftNode }): (app: HttpApp) => void {
  let running = false;
  // A copy an earlier daemon left (it stopped or crashed while sending one) takes room for nothing.
  const dir = dirname(node.ns.store.path);
  for (const f of readdirSync(dir)) if (/^weft\.db\.backup-\d+-\d+\.tmp$/.test(f)) rmSync(join(dir, f), { force: true });
  return (app) => {
    app.post('/api/backup', async (_req, reply) => {
      if (running) throw new WeftError('WEFT_CONFLICT', 'a backup is being made already: wait for it to end');
      running = true;
      const store = node.ns.store;
      const tmp = join(dirname(store.path), `weft.db.backup-${process.pid}-${Date.now()}.tmp`);
      const done = () => {
        running = false;
        rmSync(tmp, { force: true });
      };
      try {
        await store.backup(tmp);
      } catch (err) {
        done();
        const e = err as NodeJS.ErrnoException;
        const full = e.code === 'SQLITE_FULL' || e.code === 'ENOSPC';
        throw new WeftError(
          full ? 'WEFT_STORE_FULL' : 'WEFT_STORE',
          `the backup could not be written beside the database (${e.code ?? e.message})${full ? `: ${dirname(store.path)} needs as much free space as the database takes` : ''}`,
        );
      }
      const size = statSync(tmp).size;
      const stream = createReadStream(tmp);
      reply.raw.once('close', done);
      stream.once('error', done);
      return reply
        .header('content-type', 'application/vnd.sqlite3')
        .header('content-length', String(size))
        .header('x-weft-computer', node.self.computer)
        .send(stream);
    });
  };
}

/** Routes for the pipeline, quarantine, rejections, identity, peers, mesh and audit log. */
export function nodeRoutes(deps: NodeRoutesDeps): (app: HttpApp) => void {
  const { node } = deps;
  return (app) => {
    app.get('/api/pipeline', async () => ({
      order: node.pipeline.order,
      invocations: Object.fromEntries(node.pipeline.invocationTotals),
      processor: node.processor.stats,
    }));

    app.get('/api/quarantine', { schema: { querystring: QuarantineQuery } }, async (req) => {
      const q = req.query as { status?: 'held' | 'released' | 'dropped' | 'all'; limit?: number; cursor?: number; source?: string; type?: string };
      const limit = q.limit ?? 50;
      const items = listQuarantined(node.ns, {
        limit,
        ...(q.status ? { status: q.status } : {}),
        ...(q.cursor ? { before: q.cursor } : {}),
        ...(q.source ? { source: q.source } : {}),
        ...(q.type ? { eventType: q.type } : {}),
      });
      return { items, nextCursor: items.length === limit ? (items[items.length - 1]?.id ?? null) : null, held: node.ns.quarantine.count('held'), totals: trustOutcomeTotals(node.ns) };
    });
    app.post('/api/quarantine/release', { schema: { body: QuarantineBulk } }, async (req) => ({
      released: await releaseQuarantinedWhere({ ns: node.ns, processBatch: (e, f) => node.processor.processBatch(e, f) }, bulkFilter(req.body as Bulk)),
    }));
    app.post('/api/quarantine/drop', { schema: { body: QuarantineBulk } }, async (req) => ({ dropped: await dropQuarantinedWhere(node.ns, bulkFilter(req.body as Bulk)) }));
    app.get('/api/quarantine/:id', { schema: { params: IdParams } }, async (req) => showQuarantined(node.ns, (req.params as { id: number }).id));
    app.post('/api/quarantine/:id/release', { schema: { params: IdParams } }, async (req) =>
      releaseQuarantined({ ns: node.ns, processBatch: (e, f) => node.processor.processBatch(e, f) }, (req.params as { id: number }).id),
    );
    app.post('/api/quarantine/:id/drop', { schema: { params: IdParams } }, async (req) => dropQuarantined(node.ns, (req.params as { id: number }).id));

    app.get('/api/rejections', { schema: { querystring: RejectionsQuery } }, async (req) => {
      const q = req.query as { limit?: number; cursor?: number; origin?: string; code?: string };
      const limit = q.limit ?? 50;
      const items = node.ns.rejections.list({ ...q, limit }).map(({ raw, ...r }) => ({ ...r, rawBytes: raw.length }));
      const last = items[items.length - 1];
      return { items, nextCursor: items.length === limit && last ? last.id : null, total: node.ns.rejections.count() };
    });
    app.get('/api/rejections/:id', { schema: { params: IdParams } }, async (req) => node.ns.rejections.get((req.params as { id: number }).id));

    app.get('/api/identity', async () => ({
      computer: node.self.computer,
      cluster: node.self.cluster ?? null,
      nodeId: deps.identity().nodeId,
      fingerprint: deps.identity().fingerprint,
    }));
    app.post('/api/identity/rotate', async () => {
      if (!deps.rotate) throw new WeftError('WEFT_CONFIG', 'key rotation is not available on this node');
      return deps.rotate();
    });

    app.get('/api/peers', async () => {
      const scores = new Map(peerTrustScores(node.ns, node.clock.now()).map((s) => [s.peer, s]));
      return deps.peers.getAllPeers().map((p) => ({ ...p, trustScore: scores.get(p.nodeId)?.score ?? null }));
    });

    app.get('/api/mesh/status', async () => {
      if (!deps.mesh) {
        const id = deps.identity();
        return { enabled: false, self: { computer: node.self.computer, nodeId: id.nodeId, fingerprint: id.fingerprint }, peers: [] };
      }
      return { enabled: true, ...deps.mesh.status() };
    });
    app.post('/api/mesh/decode', { schema: { body: DecodeBody } }, async (req) => {
      const b = req.body as { base64?: string; teleclaude?: string };
      if (b.teleclaude !== undefined) return describeTeleClaude(b.teleclaude);
      if (b.base64 === undefined) throw new WeftError('WEFT_VALIDATION', 'give base64 (a Weft frame) or teleclaude (a mesh_event payload)');
      if (!deps.mesh) throw new WeftError('WEFT_CONFIG', 'the mesh is off on this node (set mesh.provider): no keys to check a frame against');
      return deps.mesh.describeFrame(Buffer.from(b.base64, 'base64'));
    });
    app.post('/api/mesh/send', { schema: { body: SendBody } }, async (req) => {
      if (!deps.mesh) throw new WeftError('WEFT_CONFIG', 'the mesh is off on this node (set mesh.provider)');
      const b = req.body as { computer: string; text: string };
      await deps.mesh.sendText(b.computer, b.text);
      return { sent: true, to: b.computer };
    });

    app.get('/api/audit/verify', async () => deps.audit.verify());
    app.get('/api/audit/export', async (_req, reply) => {
      reply.header('content-type', 'application/x-ndjson');
      let out = '';
      for (const line of deps.audit.exportJsonLines()) out += `${line}\n`;
      return out;
    });
  };
}
