/**
 * The chaos checker: from what each origin emitted (and whether its API acknowledged it),
 * computes the exact set of events every node is entitled to and compares it with what the
 * node applied (its `mesh.test.ping` notifications and its event log).
 */
import type { WeftClient } from '../../src/client/index.js';
import type { SubMesh } from './fleet.js';

export type Visibility = 'local' | 'cluster' | 'public';

export interface EmittedEvent {
  origin: string;
  n: number;
  visibility: Visibility;
  /** ok: the API answered 2xx; uncertain: the request failed (node killed mid-request). */
  status: 'ok' | 'uncertain';
}

export interface NodeView {
  computer: string;
  cluster: string;
  mesh: SubMesh;
  skewed: boolean;
}

export interface Applied {
  /** `${origin}#${n}` → how many times it shows up. */
  notifications: Map<string, number>;
  log: Map<string, number>;
  rejections: Array<{ code: string; senderComputer: string; reason?: string }>;
  /** Events the trust evaluator holds in quarantine (not applied, releasable by a human). */
  quarantined: number;
}

export const keyOf = (origin: string, n: number): string => `${origin}#${n}`;

/** Whether node `to` is entitled to an event emitted by `from` with this visibility. */
export function entitled(from: NodeView, to: NodeView, vis: Visibility): boolean {
  if (from.computer === to.computer) return true;
  if (vis === 'local') return false;
  if (from.mesh !== to.mesh) return false; // two sub-meshes: no provider links them
  if (from.skewed || to.skewed) return false; // refused by the replay guard (REPLAY_TOO_OLD / TOO_NEW)
  return vis === 'public' || from.cluster === to.cluster;
}

async function pages<T>(fetchPage: (cursor?: number) => Promise<{ items: T[]; nextCursor: number | null }>): Promise<T[]> {
  const out: T[] = [];
  let cursor: number | undefined;
  for (;;) {
    const p = await fetchPage(cursor);
    out.push(...p.items);
    if (!p.nextCursor) return out;
    cursor = p.nextCursor;
  }
}

export async function readApplied(api: WeftClient): Promise<Applied> {
  const notifications = new Map<string, number>();
  const log = new Map<string, number>();
  const ns = await pages((cursor) => api.notifications.list({ type: 'mesh.test.ping', limit: 1000, ...(cursor ? { cursor } : {}) }));
  for (const x of ns) {
    const k = keyOf(String(x.payload.note), Number(x.payload.n));
    notifications.set(k, (notifications.get(k) ?? 0) + 1);
  }
  const evs = await pages((cursor) => api.events.list({ type: 'mesh.test.ping', limit: 1000, ...(cursor ? { cursor } : {}) }));
  for (const x of evs) {
    const p = x.envelope.payload as { n: number; note: string };
    const k = keyOf(String(p.note), Number(p.n));
    log.set(k, (log.get(k) ?? 0) + 1);
  }
  const rj = await pages((cursor) => api.notifications.list({ type: 'mesh.event.rejected', limit: 1000, ...(cursor ? { cursor } : {}) }));
  // A read that fails fails the check: it must not pass as "nothing quarantined".
  const q = await api.request<{ items?: unknown[] } | unknown[]>('GET', '/api/quarantine?limit=1000');
  const quarantined = Array.isArray(q) ? q.length : (q.items?.length ?? 0);
  return { notifications, log, rejections: rj.map((x) => x.payload as { code: string; senderComputer: string; reason?: string }), quarantined };
}

export interface NodeVerdict {
  node: NodeView;
  expected: number;
  applied: number;
  missing: string[];
  duplicated: string[];
  leaked: string[];
  rejectedCodes: Record<string, number>;
  quarantined: number;
}

export interface CheckResult {
  ok: boolean;
  verdicts: NodeVerdict[];
  /** The first counter-example, in words. */
  firstFailure?: string;
  uncertainResolved: { applied: number; dropped: number };
}

/**
 * Per node: every acknowledged event it is entitled to shows up exactly once, in the
 * notifications and in the event log; an event whose emit was cut off (uncertain) counts as
 * emitted iff its origin applied it; nothing else shows up.
 */
export function check(views: NodeView[], emitted: EmittedEvent[], applied: Map<string, Applied>): CheckResult {
  const byName = new Map(views.map((v) => [v.computer, v]));
  const real: EmittedEvent[] = [];
  const uncertainResolved = { applied: 0, dropped: 0 };
  for (const e of emitted) {
    if (e.status === 'ok') real.push(e);
    else if (applied.get(e.origin)?.notifications.has(keyOf(e.origin, e.n))) {
      real.push(e);
      uncertainResolved.applied++;
    } else uncertainResolved.dropped++;
  }
  const verdicts: NodeVerdict[] = [];
  let firstFailure: string | undefined;
  for (const to of views) {
    const got = applied.get(to.computer) as Applied;
    const expected = new Set<string>();
    const why = new Map<string, string>();
    for (const e of real) {
      const from = byName.get(e.origin) as NodeView;
      if (entitled(from, to, e.visibility)) expected.add(keyOf(e.origin, e.n));
      why.set(keyOf(e.origin, e.n), `${e.visibility} event ${e.n} from ${e.origin} (${from.mesh}, cluster ${from.cluster}${from.skewed ? ', skewed clock' : ''}, emit ${e.status})`);
    }
    const missing: string[] = [];
    const duplicated: string[] = [];
    const leaked: string[] = [];
    for (const k of expected) {
      if (!got.notifications.has(k) || !got.log.has(k)) missing.push(k);
    }
    for (const [k, c] of got.notifications) {
      if (!expected.has(k)) leaked.push(k);
      else if (c > 1 || (got.log.get(k) ?? 0) > 1) duplicated.push(k);
    }
    for (const [k, c] of got.log) {
      if (!expected.has(k) && !leaked.includes(k)) leaked.push(k);
      else if (c > 1 && !duplicated.includes(k)) duplicated.push(k);
    }
    const rejectedCodes: Record<string, number> = {};
    for (const r of got.rejections) rejectedCodes[r.code] = (rejectedCodes[r.code] ?? 0) + 1;
    verdicts.push({ node: to, expected: expected.size, applied: got.notifications.size, missing, duplicated, leaked, rejectedCodes, quarantined: got.quarantined });
    if (!firstFailure) {
      const where = `${to.computer} (${to.mesh}, cluster ${to.cluster}${to.skewed ? ', skewed clock' : ''})`;
      const m = missing[0];
      const d = duplicated[0];
      const l = leaked[0];
      const trust = got.rejections.filter((r) => r.code.startsWith('TRUST_')).map((r) => r.reason);
      if (m)
        firstFailure = `LOST: ${where} never applied ${why.get(m)} [${got.notifications.has(m) ? 'in notifications, not in the event log' : got.log.has(m) ? 'in the event log, no notification' : 'nowhere'}]${got.quarantined ? `; ${got.quarantined} events held in its quarantine` : ''}${trust.length ? `; trust verdicts: ${trust.join(' | ')}` : ''}`;
      else if (d) firstFailure = `DUPLICATED: ${where} applied ${why.get(d) ?? d} ${Math.max(got.notifications.get(d) ?? 0, got.log.get(d) ?? 0)} times`;
      else if (l) firstFailure = `LEAKED: ${where} applied ${why.get(l) ?? `${l}, which no node emitted (garbage got through?)`}, which it is not entitled to`;
    }
  }
  return { ok: !firstFailure, verdicts, ...(firstFailure ? { firstFailure } : {}), uncertainResolved };
}

/** Whether every node already has every acknowledged event it is entitled to (for waiting). */
export function converged(views: NodeView[], emitted: EmittedEvent[], applied: Map<string, Applied>): boolean {
  const r = check(views, emitted, applied);
  return r.verdicts.every((v) => v.missing.length === 0);
}

export function table(r: CheckResult): string {
  const head = ['node', 'mesh', 'cluster', 'expected', 'applied', 'missing', 'dup', 'leaked', 'quarantined', 'mesh.event.rejected codes'];
  const rows = r.verdicts.map((v) => [
    v.node.computer + (v.node.skewed ? ' (clock -6m)' : ''),
    v.node.mesh,
    v.node.cluster,
    String(v.expected),
    String(v.applied),
    String(v.missing.length),
    String(v.duplicated.length),
    String(v.leaked.length),
    String(v.quarantined),
    Object.entries(v.rejectedCodes)
      .map(([c, n]) => `${c}×${n}`)
      .join(' ') || '-',
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i] as number)).join('  ');
  return [line(head), line(w.map((n) => '-'.repeat(n))), ...rows.map(line)].join('\n');
}
