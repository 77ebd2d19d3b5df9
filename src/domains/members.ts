/**
 * Members of the node: people (or their agents) who hold, per domain, the role `admin` or
 * `member`, and API tokens of their own. The node's token (`<data_dir>/api-token`) stays the
 * all-powerful admin; a member token reaches only its domains' routes (api/member-auth.ts).
 *
 * Only the SHA-256 digest of a member token is stored: the token itself is shown once, when it
 * is created. Every change is written to the audit log in the same transaction as the change.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Statement } from 'better-sqlite3';
import type { AuditLog } from '../audit/index.js';
import { NotFoundError, requireDeps, ValidationError, WeftError } from '../errors/index.js';
import type { Store } from '../store/index.js';
import { RESERVED_DOMAINS, SCOPE_NAME } from './layout.js';

/** What a member may do in one domain: `admin` also changes the domain (installs, approvals). */
export type MemberRole = 'admin' | 'member';

export const MEMBER_ROLES: readonly MemberRole[] = ['admin', 'member'];

/** One API token of a member, as listings show it (never the token). */
export interface MemberTokenInfo {
  /** The first 12 hex digits of the token's digest: enough to tell tokens apart. */
  readonly id: string;
  readonly label: string | null;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
  /** Milliseconds since the epoch; updated at most once a minute. */
  readonly lastUsedAt: number | null;
}

/** A member with their roles and tokens. */
export interface Member {
  readonly name: string;
  readonly displayName: string | null;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
  /** Domain → role. */
  readonly roles: Readonly<Record<string, MemberRole>>;
  readonly tokens: readonly MemberTokenInfo[];
}

/** A request authenticated with a member token. */
export interface MemberPrincipal {
  readonly kind: 'member';
  readonly name: string;
  readonly roles: Readonly<Record<string, MemberRole>>;
}

/** A request authenticated with the node's token or a dashboard session: everything is allowed. */
export interface NodePrincipal {
  readonly kind: 'node';
}

/** Who is asking. */
export type Principal = MemberPrincipal | NodePrincipal;

/** A token just created: `token` is shown this once and never stored. */
export interface CreatedToken extends MemberTokenInfo {
  readonly token: string;
  readonly member: string;
}

/** Members a node keeps at most. */
export const MAX_MEMBERS = 10_000;
/** Tokens one member holds at most; past it the old ones must be revoked first. */
export const MAX_TOKENS_PER_MEMBER = 16;
/** Domains one member holds a role in at most. */
export const MAX_ROLES_PER_MEMBER = 256;
/** Longest display name or token label. */
export const MAX_LABEL_LENGTH = 200;
/** Every member token starts with this, so a leaked one is recognisable (secret scanners). */
export const MEMBER_TOKEN_PREFIX = 'weftm_';
/** `weftm_` + 32 random bytes in base64url. */
const TOKEN_LENGTH = MEMBER_TOKEN_PREFIX.length + 43;
/** `last_used_at` is written at most this often per token: a busy token must not cost a write per request. */
const TOUCH_EVERY_MS = 60_000;

const digestOf = (token: string) => createHash('sha256').update(token).digest('hex');
const tokenIdOf = (digest: string) => digest.slice(0, 12);

/**
 * The role a principal holds in a domain (`undefined`: none). Reads own properties only, so a
 * domain named like an Object method (`constructor`) is never mistaken for a grant.
 * @example
 * if (roleIn(principal, 'marketing') === 'admin') { ... }
 */
export function roleIn(principal: MemberPrincipal, domain: string): MemberRole | undefined {
  return Object.hasOwn(principal.roles, domain) ? principal.roles[domain] : undefined;
}

export interface MemberDirectoryDeps {
  /** The node's store (`node.ns.store`): migration 9's members, member_roles and member_tokens. */
  store: Store;
  /** The node's audit log: every change is recorded with it, in the change's own transaction. */
  audit: AuditLog;
}

interface MemberRow {
  name: string;
  display_name: string | null;
  created_at: number;
}
interface RoleRow {
  member: string;
  domain: string;
  role: MemberRole;
}
interface TokenRow {
  digest: string;
  member: string;
  label: string | null;
  created_at: number;
  last_used_at: number | null;
}
interface AuthRow {
  member: string;
  last_used_at: number | null;
  domain: string | null;
  role: MemberRole | null;
}

/**
 * The members of one node, their roles per domain and their API tokens.
 * @example
 * const members = new MemberDirectory({ store: node.ns.store, audit });
 * await members.add('ada', { displayName: 'Ada', roles: { marketing: 'admin' } });
 * const { token } = await members.createToken('ada', 'laptop'); // show it once
 * members.authenticate(token); // { kind: 'member', name: 'ada', roles: { marketing: 'admin' } }
 */
export class MemberDirectory {
  private readonly store: Store;
  private readonly audit: AuditLog;
  private readonly listeners = new Set<(member: string) => void>();
  /** Statements on the writer, run inside `store.write`. */
  private readonly w;
  /** Statements on the reader (committed rows only), prepared on first use. */
  private r:
    | Record<'member' | 'roles' | 'tokens' | 'allMembers' | 'allRoles' | 'allTokens' | 'auth', Statement>
    | undefined;
  /** Tokens whose `last_used_at` update is queued, so a burst of requests queues one. */
  private readonly touching = new Set<string>();

  constructor(deps: MemberDirectoryDeps) {
    requireDeps('MemberDirectory', deps, { store: "the node's Store", audit: "the node's AuditLog" });
    this.store = deps.store;
    this.audit = deps.audit;
    const db = deps.store.db;
    this.w = {
      member: db.prepare('SELECT name, display_name, created_at FROM members WHERE name = ?'),
      count: db.prepare('SELECT COUNT(*) FROM members').pluck(),
      insert: db.prepare('INSERT INTO members (name, display_name, created_at) VALUES (?, ?, ?)'),
      delete: db.prepare('DELETE FROM members WHERE name = ?'),
      role: db.prepare('SELECT role FROM member_roles WHERE member = ? AND domain = ?').pluck(),
      roleCount: db.prepare('SELECT COUNT(*) FROM member_roles WHERE member = ?').pluck(),
      roles: db.prepare('SELECT member, domain, role FROM member_roles WHERE member = ? ORDER BY domain'),
      tokens: db.prepare(
        'SELECT digest, member, label, created_at, last_used_at FROM member_tokens WHERE member = ? ORDER BY created_at, digest',
      ),
      upsertRole: db.prepare(
        'INSERT INTO member_roles (member, domain, role, granted_at) VALUES (?, ?, ?, ?) ON CONFLICT(member, domain) DO UPDATE SET role = excluded.role, granted_at = excluded.granted_at',
      ),
      deleteRole: db.prepare('DELETE FROM member_roles WHERE member = ? AND domain = ?'),
      deleteRoles: db.prepare('DELETE FROM member_roles WHERE member = ?'),
      tokenCount: db.prepare('SELECT COUNT(*) FROM member_tokens WHERE member = ?').pluck(),
      insertToken: db.prepare(
        'INSERT INTO member_tokens (digest, member, label, created_at) VALUES (?, ?, ?, ?)',
      ),
      deleteTokens: db.prepare('DELETE FROM member_tokens WHERE member = ?'),
      touch: db.prepare(
        'UPDATE member_tokens SET last_used_at = ? WHERE digest = ? AND (last_used_at IS NULL OR last_used_at < ?)',
      ),
    };
  }

  private get reads() {
    if (!this.r) {
      const db = this.store.reader;
      this.r = {
        member: db.prepare('SELECT name, display_name, created_at FROM members WHERE name = ?'),
        roles: db.prepare('SELECT member, domain, role FROM member_roles WHERE member = ? ORDER BY domain'),
        tokens: db.prepare(
          'SELECT digest, member, label, created_at, last_used_at FROM member_tokens WHERE member = ? ORDER BY created_at, digest',
        ),
        allMembers: db.prepare('SELECT name, display_name, created_at FROM members ORDER BY name'),
        allRoles: db.prepare('SELECT member, domain, role FROM member_roles ORDER BY member, domain'),
        allTokens: db.prepare(
          'SELECT digest, member, label, created_at, last_used_at FROM member_tokens ORDER BY member, created_at, digest',
        ),
        auth: db.prepare(
          `SELECT t.member, t.last_used_at, r.domain, r.role
           FROM member_tokens t JOIN members m ON m.name = t.member LEFT JOIN member_roles r ON r.member = t.member
           WHERE t.digest = ?`,
        ),
      };
    }
    return this.r;
  }

  /**
   * Adds a member, with roles if given. A name already taken is WEFT_CONFLICT.
   * @example
   * await members.add('ada', { displayName: 'Ada Lovelace', roles: { engineering: 'member' } });
   */
  async add(
    name: string,
    opts: { displayName?: string; roles?: Record<string, MemberRole> } = {},
  ): Promise<Member> {
    checkName('member', name);
    const displayName = checkLabel('display name', name, opts.displayName);
    const roles = Object.entries(opts.roles ?? {});
    for (const [domain, role] of roles) {
      checkName('domain', domain);
      checkRole(name, domain, role);
    }
    if (roles.length > MAX_ROLES_PER_MEMBER) {
      throw new ValidationError(
        `member '${name}': ${roles.length} roles given, at most ${MAX_ROLES_PER_MEMBER} domains per member`,
      );
    }
    await this.store.write(() => {
      if (this.w.member.get(name))
        throw new WeftError('WEFT_CONFLICT', `member '${name}' already exists`, {
          details: { member: name },
        });
      const count = this.w.count.get() as number;
      if (count >= MAX_MEMBERS) {
        throw new WeftError(
          'WEFT_LIMIT',
          `this node has ${count} members, the limit: remove one before adding member '${name}'`,
          { details: { member: name, limit: MAX_MEMBERS } },
        );
      }
      const now = this.store.clock.now();
      this.w.insert.run(name, displayName, now);
      for (const [domain, role] of roles) this.w.upsertRole.run(name, domain, role, now);
      this.audit.recordIn(
        'member.added',
        null,
        { member: name, displayName, roles: Object.fromEntries(roles) },
        true,
      );
    });
    this.rolesChanged(name);
    return this.get(name);
  }

  /**
   * Removes a member with their roles and tokens (their tokens stop working at once); answers
   * the member as they were.
   * @example
   * await members.remove('ada');
   */
  async remove(name: string): Promise<Member> {
    checkName('member', name);
    const removed = await this.store.write(() => {
      const before = this.memberIn(name);
      this.w.deleteTokens.run(name);
      this.w.deleteRoles.run(name);
      this.w.delete.run(name);
      this.audit.recordIn(
        'member.removed',
        null,
        { member: name, roles: before.roles, tokens: before.tokens.length },
        true,
      );
      return before;
    });
    this.rolesChanged(name);
    return removed;
  }

  /**
   * Gives a member a role in a domain, replacing the role they had there.
   * @example
   * await members.grant('ada', 'marketing', 'admin');
   */
  async grant(name: string, domain: string, role: MemberRole): Promise<Member> {
    checkName('member', name);
    checkName('domain', domain);
    checkRole(name, domain, role);
    await this.store.write(() => {
      this.requireMember(name);
      const previous = (this.w.role.get(name, domain) as MemberRole | undefined) ?? null;
      if (previous === role) return;
      if (previous === null && (this.w.roleCount.get(name) as number) >= MAX_ROLES_PER_MEMBER) {
        throw new WeftError(
          'WEFT_LIMIT',
          `member '${name}' holds roles in ${MAX_ROLES_PER_MEMBER} domains, the limit: revoke one before granting '${domain}'`,
          {
            details: { member: name, limit: MAX_ROLES_PER_MEMBER },
          },
        );
      }
      this.w.upsertRole.run(name, domain, role, this.store.clock.now());
      this.audit.recordIn('member.role.granted', null, { member: name, domain, role, previous }, true);
    });
    this.rolesChanged(name);
    return this.get(name);
  }

  /**
   * Takes a member's role in a domain away. A member without a role there is WEFT_NOT_FOUND.
   * @example
   * await members.revoke('ada', 'marketing');
   */
  async revoke(name: string, domain: string): Promise<Member> {
    checkName('member', name);
    checkName('domain', domain);
    await this.store.write(() => {
      this.requireMember(name);
      const role = this.w.role.get(name, domain) as MemberRole | undefined;
      if (role === undefined) {
        throw new WeftError('WEFT_NOT_FOUND', `member '${name}' has no role in domain '${domain}'`, {
          details: { member: name, domain },
        });
      }
      this.w.deleteRole.run(name, domain);
      this.audit.recordIn('member.role.revoked', null, { member: name, domain, role }, true);
    });
    this.rolesChanged(name);
    return this.get(name);
  }

  /**
   * Calls `fn` after each committed change of a member's existence or roles (not tokens), so
   * what depends on roles (the personal pipelines' reach) follows at once. Answers the unsubscribe.
   */
  onRolesChanged(fn: (member: string) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private rolesChanged(member: string): void {
    for (const fn of this.listeners) fn(member);
  }

  /** Every member with roles and tokens, by name. */
  list(): Member[] {
    const r = this.reads;
    const roles = new Map<string, Record<string, MemberRole>>();
    for (const row of r.allRoles.all() as RoleRow[]) {
      const m = roles.get(row.member) ?? {};
      m[row.domain] = row.role;
      roles.set(row.member, m);
    }
    const tokens = new Map<string, MemberTokenInfo[]>();
    for (const row of r.allTokens.all() as TokenRow[]) {
      const t = tokens.get(row.member) ?? [];
      t.push(tokenInfo(row));
      tokens.set(row.member, t);
    }
    return (r.allMembers.all() as MemberRow[]).map((m) =>
      toMember(m, roles.get(m.name) ?? {}, tokens.get(m.name) ?? []),
    );
  }

  /**
   * One member; an unknown name is WEFT_NOT_FOUND.
   * @example
   * members.get('ada').roles; // { marketing: 'admin' }
   */
  get(name: string): Member {
    const m = this.find(name);
    if (!m) throw memberNotFound(name);
    return m;
  }

  /** One member, or undefined when there is none of that name. */
  find(name: string): Member | undefined {
    const r = this.reads;
    const row = r.member.get(name) as MemberRow | undefined;
    return row ? this.assemble(row, r.roles.all(name) as RoleRow[], r.tokens.all(name) as TokenRow[]) : undefined;
  }

  /**
   * A new API token for a member. The answer is the only place the token ever appears: only its
   * SHA-256 digest is stored. A member holding MAX_TOKENS_PER_MEMBER must revoke first.
   * @example
   * const { token } = await members.createToken('ada', 'laptop');
   * // WEFT_TOKEN=<token> weft notifications list --domain marketing
   */
  async createToken(name: string, label?: string): Promise<CreatedToken> {
    checkName('member', name);
    const text = checkLabel('token label', name, label);
    const token = MEMBER_TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const digest = digestOf(token);
    const createdAt = await this.store.write(() => {
      this.requireMember(name);
      const held = this.w.tokenCount.get(name) as number;
      if (held >= MAX_TOKENS_PER_MEMBER) {
        throw new WeftError(
          'WEFT_LIMIT',
          `member '${name}' already holds ${held} API tokens, the limit: revoke the old ones first (weft members revoke-tokens ${name})`,
          { details: { member: name, limit: MAX_TOKENS_PER_MEMBER } },
        );
      }
      const now = this.store.clock.now();
      this.w.insertToken.run(digest, name, text, now);
      this.audit.recordIn(
        'member.token.created',
        null,
        { member: name, tokenId: tokenIdOf(digest), label: text },
        true,
      );
      return now;
    });
    return { token, member: name, id: tokenIdOf(digest), label: text, createdAt, lastUsedAt: null };
  }

  /**
   * Revokes every token of a member; answers how many there were.
   * @example
   * await members.revokeTokens('ada'); // { member: 'ada', revoked: 2 }
   */
  async revokeTokens(name: string): Promise<{ member: string; revoked: number }> {
    checkName('member', name);
    return this.store.write(() => {
      this.requireMember(name);
      const revoked = this.w.deleteTokens.run(name).changes;
      this.audit.recordIn('member.tokens.revoked', null, { member: name, count: revoked }, true);
      return { member: name, revoked };
    });
  }

  /**
   * The member a token belongs to, with their roles as they are now; `undefined` for anything
   * else. Costs one indexed read (none for text that cannot be a member token); notes the use
   * at most once a minute per token, in a write that rides along with the next one.
   * @example
   * const who = members.authenticate(bearer); // { kind: 'member', name: 'ada', roles: {...} } | undefined
   */
  authenticate(token: string): MemberPrincipal | undefined {
    if (token.length !== TOKEN_LENGTH || !token.startsWith(MEMBER_TOKEN_PREFIX)) return undefined;
    const digest = digestOf(token);
    const rows = this.reads.auth.all(digest) as AuthRow[];
    const first = rows[0];
    if (!first) return undefined;
    const roles: Record<string, MemberRole> = {};
    for (const r of rows) if (r.domain !== null && r.role !== null) roles[r.domain] = r.role;
    const now = this.store.clock.now();
    if (
      (first.last_used_at === null || now - first.last_used_at >= TOUCH_EVERY_MS) &&
      !this.touching.has(digest)
    ) {
      this.touching.add(digest);
      // Losing this write in a crash loses only a "last used" time.
      void this.store
        .writeSoon(() => void this.w.touch.run(now, digest, now - TOUCH_EVERY_MS + 1), 1000)
        .finally(() => this.touching.delete(digest));
    }
    return { kind: 'member', name: first.member, roles: Object.freeze(roles) };
  }

  /** Inside a write: the member as stored now (uncommitted changes of this write included). */
  private memberIn(name: string): Member {
    const row = this.w.member.get(name) as MemberRow | undefined;
    if (!row) throw memberNotFound(name);
    return this.assemble(row, this.w.roles.all(name) as RoleRow[], this.w.tokens.all(name) as TokenRow[]);
  }

  private requireMember(name: string): void {
    if (!this.w.member.get(name)) throw memberNotFound(name);
  }

  private assemble(row: MemberRow, roles: RoleRow[], tokens: TokenRow[]): Member {
    const r: Record<string, MemberRole> = {};
    for (const x of roles) r[x.domain] = x.role;
    return toMember(row, r, tokens.map(tokenInfo));
  }
}

function toMember(row: MemberRow, roles: Record<string, MemberRole>, tokens: MemberTokenInfo[]): Member {
  return { name: row.name, displayName: row.display_name, createdAt: row.created_at, roles, tokens };
}

function tokenInfo(row: TokenRow): MemberTokenInfo {
  return {
    id: tokenIdOf(row.digest),
    label: row.label,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
  };
}

function memberNotFound(name: string): WeftError {
  return new NotFoundError('member', `'${name}'`);
}

/** Shown in an error: quoted, and cut short, so a hostile name cannot flood a terminal. */
function shown(v: unknown): string {
  const s = typeof v === 'string' ? v : String(v);
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}

function checkName(what: 'member' | 'domain', v: unknown): asserts v is string {
  if (typeof v !== 'string' || !SCOPE_NAME.test(v)) {
    throw new ValidationError(
      `${what} name ${shown(v)} is not valid: use 1 to 64 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit`,
      { field: what },
    );
  }
  if (what === 'domain' && RESERVED_DOMAINS.has(v)) {
    throw new ValidationError(`'${v}' is one of the node's own event domains, not a domain a member can hold a role in (${[...RESERVED_DOMAINS].join(', ')})`, { field: what });
  }
}

function checkRole(member: string, domain: string, role: unknown): asserts role is MemberRole {
  if (role !== 'admin' && role !== 'member') {
    throw new ValidationError(
      `role ${shown(role)} of member '${member}' in domain '${domain}' is not valid: use admin or member`,
      { field: 'role' },
    );
  }
}

/** A display name or label: trimmed, empty is none; no control characters (they would reach terminals). */
function checkLabel(what: string, member: string, v: string | undefined): string | null {
  if (v === undefined) return null;
  const s = v.trim();
  if (s.length === 0) return null;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses.
  if (s.length > MAX_LABEL_LENGTH || /[\u0000-\u001f\u007f-\u009f]/.test(s)) {
    throw new ValidationError(
      `${what} of member '${member}' must be at most ${MAX_LABEL_LENGTH} characters without control characters`,
      { field: what },
    );
  }
  return s;
}
