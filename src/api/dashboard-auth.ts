/**
 * Dashboard sessions. The browser never holds the API token: `weft dashboard` (a token holder)
 * asks for a one-time login link; opening it sets an HttpOnly, SameSite=Strict session cookie
 * and forgets the code. A session has a role (`admin` or `read`) and a CSRF token that every
 * state-changing request must carry in `x-weft-csrf`. Everything is bounded and expires.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { WeftError } from '../errors/index.js';

export type DashboardRole = 'admin' | 'read';

export interface DashboardSession {
  id: string;
  role: DashboardRole;
  csrf: string;
  createdAt: number;
  expiresAt: number;
}

export interface DashboardAuthInit {
  /** How long a login link works, ms (default 120 s). */
  linkTtlMs?: number;
  /** How long a session lasts, ms (default 12 h). */
  sessionTtlMs?: number;
  /** Unused links kept at once (default 64; the oldest is dropped). */
  maxLinks?: number;
  /** Sessions kept at once (default 256; the oldest is dropped). */
  maxSessions?: number;
}

export const SESSION_COOKIE = 'weft_session';
export const CSRF_HEADER = 'x-weft-csrf';

const token = () => randomBytes(24).toString('base64url');
const digest = (s: string) => createHash('sha256').update(s).digest('hex');

/** One-time login links and the sessions they open; see the module comment. */
export class DashboardAuth {
  private readonly links = new Map<string, { role: DashboardRole; expiresAt: number }>();
  /** By the digest of the session id, so a timing probe learns nothing about stored ids. */
  private readonly sessions = new Map<string, DashboardSession>();
  private readonly linkTtl: number;
  private readonly sessionTtl: number;
  private readonly maxLinks: number;
  private readonly maxSessions: number;
  /** Told of every session that ends before its time (logged out, or pushed out by a newer one). */
  private readonly endListeners: Array<(s: DashboardSession) => void> = [];

  constructor(
    init: DashboardAuthInit = {},
    private readonly now: () => number = Date.now,
  ) {
    this.linkTtl = init.linkTtlMs ?? 120_000;
    this.sessionTtl = init.sessionTtlMs ?? 12 * 3_600_000;
    this.maxLinks = init.maxLinks ?? 64;
    this.maxSessions = init.maxSessions ?? 256;
  }

  /**
   * A one-time code for a login link.
   * @example
   * const code = auth.createLink('read'); // open http://127.0.0.1:9237/login?code=<code>
   */
  createLink(role: DashboardRole): { code: string; expiresAt: number } {
    this.sweep();
    if (this.links.size >= this.maxLinks) this.links.delete(this.links.keys().next().value as string);
    const code = token();
    const expiresAt = this.now() + this.linkTtl;
    this.links.set(digest(code), { role, expiresAt });
    return { code, expiresAt };
  }

  /** Trades a code for a session (once); a used, unknown or expired code is refused. */
  redeem(code: string): DashboardSession {
    const key = digest(code);
    const link = this.links.get(key);
    this.links.delete(key);
    if (!link || link.expiresAt < this.now()) {
      throw new WeftError('WEFT_UNAUTHORIZED', 'this login link is used up or expired: run `weft dashboard` again for a new one');
    }
    this.sweep();
    if (this.sessions.size >= this.maxSessions) {
      const [oldest, pushedOut] = this.sessions.entries().next().value as [string, DashboardSession];
      this.sessions.delete(oldest);
      this.ended(pushedOut);
    }
    const s: DashboardSession = { id: token(), role: link.role, csrf: token(), createdAt: this.now(), expiresAt: this.now() + this.sessionTtl };
    this.sessions.set(digest(s.id), s);
    return s;
  }

  /** The live session a Cookie header names, if any. */
  sessionOf(cookieHeader: string | undefined): DashboardSession | undefined {
    const id = cookieValue(cookieHeader, SESSION_COOKIE);
    if (!id) return undefined;
    const s = this.sessions.get(digest(id));
    if (!s) return undefined;
    if (s.expiresAt < this.now()) {
      this.sessions.delete(digest(id));
      return undefined;
    }
    return s;
  }

  /** Whether a request's CSRF header matches its session's token. */
  csrfOk(s: DashboardSession, header: string | string[] | undefined): boolean {
    const given = typeof header === 'string' ? header : undefined;
    if (!given) return false;
    return timingSafeEqual(Buffer.from(digest(given)), Buffer.from(digest(s.csrf)));
  }

  logout(s: DashboardSession): void {
    this.sessions.delete(digest(s.id));
    this.ended(s);
  }

  /**
   * Calls `fn` with each session that ends before its expiry (what holds a connection open for it
   * closes it); a session's expiry is its own `expiresAt`.
   */
  onEnd(fn: (s: DashboardSession) => void): void {
    this.endListeners.push(fn);
  }

  private ended(s: DashboardSession): void {
    for (const fn of this.endListeners) fn(s);
  }

  get size(): number {
    return this.sessions.size;
  }

  private sweep(): void {
    const now = this.now();
    for (const [k, l] of this.links) if (l.expiresAt < now) this.links.delete(k);
    for (const [k, s] of this.sessions) if (s.expiresAt < now) this.sessions.delete(k);
  }
}

/** The `Set-Cookie` value of a session. */
export function sessionCookie(s: DashboardSession): string {
  const maxAge = Math.max(0, Math.floor((s.expiresAt - s.createdAt) / 1000));
  return `${SESSION_COOKIE}=${s.id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAge}`;
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}
