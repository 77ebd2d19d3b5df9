/**
 * The handlers every node serves: `node.health` (who it is, its version and uptime, its
 * links, how much it processed), `query.events` (its own recent events a peer could have
 * received by visibility and the sharing policy anyway; never raw-class), `invoke.forward`
 * (calls onward with the budgets reduced and the chain of callers grown: how a two-hop call
 * happens; served only when `federation.invoke_forward` is on) and `invoke.list` (the
 * handlers it serves).
 */
import type { Envelope } from '../envelope/index.js';
import { WeftError } from '../errors/index.js';
import type { KnownPeer } from '../mesh/index.js';
import { VERSION } from '../version.js';
import { BUDGET_LIMITS, type BudgetRefusal, onwardBudgets } from './budgets.js';
import type { CallOptions, InvokeCall, InvokeContext, InvokeHandler, InvokeResult } from './invoke.js';
import { handlerNamePattern } from './invoke-wire.js';
import type { EgressCheck } from './mirror-source.js';
import type { OrganDeps } from './ports.js';

export interface BuiltinDeps {
  deps: OrganDeps;
  startedAt(): number;
  stats(): Record<string, unknown>;
  call(c: InvokeCall, opts: CallOptions): Promise<InvokeResult>;
  handlers(): string[];
  /** The sharing policy's egress check, when the node installed one (asked per event and peer). */
  egress(): EgressCheck | undefined;
  /** Records invoke.forward's refusal to call onward (sec.limit.hit here) and answers the error to throw. */
  onwardSpent(ctx: InvokeContext, r: BudgetRefusal): Error;
}

/** Events `query.events` answers with at most, per call. */
export const QUERY_EVENTS_MAX = 1000;
/** Rows `query.events` reads at most looking for matches (a rare type must not scan the whole log). */
const QUERY_SCAN_MAX = 20_000;
/** JSON bytes of events `query.events` puts in one answer at most; the rest is a next page. */
const QUERY_BYTES_MAX = 768 * 1024;

type Row = { seq: number; body: string };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `build.*` matches `build.failed` and `build.step.failed`; `*` matches every type; a middle `*` one segment. */
export function typeMatches(pattern: string, type: string): boolean {
  const parts = pattern.split('.');
  const segs = type.split('.');
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (p === '*' && i === parts.length - 1) return segs.length >= parts.length;
    if (i >= segs.length || (p !== '*' && p !== segs[i])) return false;
  }
  return segs.length === parts.length;
}

/** The built-in handlers, by name. */
export function builtinHandlers(b: BuiltinDeps): Record<string, InvokeHandler> {
  const { deps } = b;
  const { node, mesh } = deps;
  let maxSeq: { get(): unknown } | undefined;
  const processed = (): number => {
    maxSeq ??= node.ns.store.reader.prepare('SELECT COALESCE(MAX(seq), 0) FROM events').pluck();
    return Number(maxSeq.get());
  };

  const health: InvokeHandler = () => {
    const now = deps.clock.now();
    const status = mesh.status() as { peers?: Array<{ computer: string; state: string; rttMs: number | null }> };
    return {
      computer: node.self.computer,
      cluster: node.self.cluster ?? null,
      nodeId: mesh.identity.nodeId,
      fingerprint: mesh.identity.fingerprint,
      version: VERSION,
      startedAt: new Date(b.startedAt()).toISOString(),
      uptimeMs: now - b.startedAt(),
      provider: mesh.provider.name,
      peers: (status.peers ?? []).map((p) => ({ computer: p.computer, state: p.state, rttMs: p.rttMs })),
      processed: processed(),
      invoke: b.stats(),
    };
  };

  const queryEvents: InvokeHandler = (payload, ctx) => {
    const q = isRecord(payload) ? payload : payload === null ? {} : undefined;
    if (!q) throw new WeftError('WEFT_VALIDATION', 'query.events takes an object: { type?: "build.*", limit?: 50, beforeSeq?: n }');
    const type = q.type;
    if (type !== undefined && (typeof type !== 'string' || !/^(\*|[A-Za-z0-9_-]+(\.([A-Za-z0-9_-]+|\*))*)$/.test(type) || type.length > 128)) {
      throw new WeftError('WEFT_VALIDATION', 'query.events: type must be an event type or a pattern such as "build.*"');
    }
    const limit = q.limit ?? 50;
    if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > QUERY_EVENTS_MAX) {
      throw new WeftError('WEFT_VALIDATION', `query.events: limit must be a whole number from 1 to ${QUERY_EVENTS_MAX}`);
    }
    const before = q.beforeSeq;
    if (before !== undefined && (typeof before !== 'number' || !Number.isInteger(before) || before < 1)) {
      throw new WeftError('WEFT_VALIDATION', 'query.events: beforeSeq must be a positive whole number');
    }
    const self = node.self;
    // Whoever receives the answer: the caller, and every node it forwarded the call for (each
    // as this node knows it; one it does not know gets public events only).
    const caller = deps.peers.get(ctx.callerNodeId) ?? deps.peers.byName(ctx.caller);
    if (!caller) throw new WeftError('WEFT_FORBIDDEN', `query.events: ${ctx.caller} is not a known peer here`);
    const chain = ctx.chain.map((l) => deps.peers.get(l.nodeId));
    const readers: KnownPeer[] = [caller, ...chain.filter((p): p is KnownPeer => p !== undefined)];
    // They see what visibility would have sent them: cluster events only inside our cluster.
    const sameCluster = self.cluster !== undefined && chain.every((p) => p !== undefined) && readers.every((p) => p.cluster === self.cluster);
    // And what the sharing policy lets out to each of them (the publisher's and the mirror's check).
    const egress = b.egress();
    const shared = (e: Envelope) => readers.every((p) => p.trustLevel !== 'untrusted' && (!egress || egress(e, p)));
    const where: string[] = [];
    const params: unknown[] = [];
    const pattern = typeof type === 'string' ? type : '*';
    if (pattern !== '*') {
      const star = pattern.indexOf('*');
      if (star < 0) {
        where.push('event = ?');
        params.push(pattern);
      } else {
        where.push("event LIKE ? ESCAPE '\\'");
        params.push(`${pattern.slice(0, star).replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
      }
    }
    const stmt = node.ns.store.reader.prepare(`SELECT seq, body FROM events WHERE ${[...where, 'seq < ?'].join(' AND ')} ORDER BY seq DESC LIMIT 500`);
    const items: Array<{ seq: number; envelope: Envelope }> = [];
    let cursor = typeof before === 'number' ? before : Number.MAX_SAFE_INTEGER;
    let scanned = 0;
    let bytes = 0;
    let full = false;
    while (!full && items.length < limit && scanned < QUERY_SCAN_MAX) {
      ctx.signal.throwIfAborted();
      const rows = stmt.all(...params, cursor) as Row[];
      if (rows.length === 0) break;
      for (const r of rows) {
        scanned++;
        cursor = r.seq;
        const e = JSON.parse(r.body) as Envelope;
        if (!typeMatches(pattern, e.event)) continue;
        if (e.visibility !== 'public' && !(e.visibility === 'cluster' && sameCluster)) continue;
        // Raw-class data never leaves its node, whatever its visibility says.
        if (node.catalog.get(e.event)?.dataClass === 'raw') continue;
        // This node's own events only: what it received from others is theirs to share.
        if ((e.sourceComputer !== undefined && e.sourceComputer !== self.computer) || (e.hops ?? 0) > 0) continue;
        if (!shared(e)) continue;
        if (bytes + r.body.length > QUERY_BYTES_MAX) {
          full = true;
          cursor = r.seq + 1;
          break;
        }
        bytes += r.body.length;
        items.push({ seq: r.seq, envelope: e });
        if (items.length >= limit) break;
      }
    }
    const more = full || items.length >= limit || scanned >= QUERY_SCAN_MAX;
    return { computer: self.computer, items, nextBeforeSeq: more && cursor > 1 ? cursor : null, scanned };
  };

  const forward: InvokeHandler = async (payload, ctx: InvokeContext) => {
    if (!isRecord(payload) || typeof payload.peer !== 'string' || typeof payload.handler !== 'string' || !handlerNamePattern.test(payload.handler)) {
      throw new WeftError('WEFT_VALIDATION', 'invoke.forward takes { peer: "<computer>", handler: "<name>", payload?: ... }');
    }
    const now = deps.clock.now();
    const remaining = ctx.deadlineAt - now;
    // Too little of the deadline to call onward: refused here, visibly (sec.limit.hit), never
    // sent on as a token deadline to fail in transit.
    if (!(remaining >= BUDGET_LIMITS.minDeadlineMs)) {
      throw b.onwardSpent(ctx, {
        budget: 'deadline',
        remaining: Math.max(0, Math.round(remaining)),
        needed: BUDGET_LIMITS.minDeadlineMs,
        reason: `the deadline has ${Math.max(0, Math.round(remaining))} ms left: too little to call ${payload.handler} on ${payload.peer.slice(0, 200)} (at least ${BUDGET_LIMITS.minDeadlineMs} ms)`,
      });
    }
    const budgets = onwardBudgets(ctx.budgets, { elapsedMs: now - ctx.receivedAt, receivedBytes: ctx.payloadBytes });
    const pipeline = ctx.pipeline ? { ...ctx.pipeline, hop_index: (ctx.pipeline.hop_index ?? 0) + 1 } : undefined;
    const r = await b.call(
      {
        peer: payload.peer,
        handler: payload.handler,
        payload: payload.payload ?? null,
        deadlineMs: remaining,
        budgets,
        ...(pipeline ? { pipeline } : {}),
      },
      // The next hop judges the callers too: the chain grows by the caller this node verified.
      { signal: ctx.signal, hop: ctx.hop + 1, chain: [...ctx.chain, { nodeId: ctx.callerNodeId, computer: ctx.caller, enclave: ctx.enclave }] },
    );
    return { via: node.self.computer, peer: r.peer, handler: r.handler, callId: r.callId, elapsedMs: r.elapsedMs, result: r.result };
  };

  const list: InvokeHandler = () => ({ computer: node.self.computer, handlers: b.handlers() });

  return { 'node.health': health, 'query.events': queryEvents, 'invoke.forward': forward, 'invoke.list': list };
}
