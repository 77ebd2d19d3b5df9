/**
 * TeleClaude's producers (InstruktAI/TeleClaude, `teleclaude_events/`) speak a few of our
 * types under their own names and payload shapes. Each alias below maps one of them, so an
 * event TeleClaude's `EventProducer` XADDs to `teleclaude:events` becomes the same
 * notification a Weft producer's would. docs/teleclaude.md lists them.
 */
import type { Catalog } from '../catalog.js';

const TODO = 'domain.software-development.planning.todo';
const FROM = 'teleclaude';

/** TeleClaude's DOR verdicts (`prepare_quality.py`) → ours. */
const VERDICTS: Record<string, string> = { pass: 'ready', needs_work: 'needs_work', needs_decision: 'blocked' };

function without(p: Record<string, unknown>, ...keys: string[]): Record<string, unknown> {
  const out = { ...p };
  for (const k of keys) delete out[k];
  return out;
}

/** Ours → TeleClaude's DOR verdicts (blocked was needs_decision there). */
const VERDICTS_BACK: Record<string, string> = { ready: 'pass', needs_work: 'needs_work', blocked: 'needs_decision' };

/**
 * The other way, for what a node sends a TeleClaude peer: our type under TeleClaude's name and
 * with the fields its consumers read (ours kept beside them), for the types TeleClaude names
 * otherwise. Other types go as they are.
 */
export function toTeleClaudeEvent(event: string, payload: Record<string, unknown>): { event: string; payload: Record<string, unknown> } {
  switch (event) {
    case `${TODO}.dor_assessed`:
      return { event: 'domain.software-development.planning.dor_assessed', payload: { ...payload, verdict: VERDICTS_BACK[String(payload.verdict)] ?? payload.verdict } };
    case `${TODO}.created`:
      return { event: 'domain.software-development.planning.todo_created', payload };
    case 'system.worker.crashed':
      return { event, payload: { ...payload, worker_name: payload.worker, ...(typeof payload.crashedAt === 'string' ? { timestamp: payload.crashedAt } : {}) } };
    default:
      return { event, payload };
  }
}

export function registerTeleClaudeAliases(catalog: Catalog): void {
  catalog.alias({
    name: 'domain.software-development.planning.dor_assessed',
    type: `${TODO}.dor_assessed`,
    from: FROM,
    // {slug, score 1..10, verdict pass|needs_work|needs_decision, assessed_commit}
    payload: (p, at) => ({
      ...p,
      verdict: VERDICTS[String(p.verdict)] ?? p.verdict,
      ...(p.assessor === undefined && at.source ? { assessor: at.source } : {}),
    }),
  });
  catalog.alias({
    name: 'domain.software-development.planning.todo_created',
    type: `${TODO}.created`,
    from: FROM,
    // {slug, title?}: our notification needs a title; the slug stands in for a missing one.
    payload: (p) => ({ ...p, title: typeof p.title === 'string' && p.title !== '' ? p.title : String(p.slug ?? '') }),
  });
  catalog.alias({
    name: 'system.worker.crashed',
    type: 'system.worker.crashed',
    from: FROM,
    // {worker_name, timestamp} (TeleClaude's tests and enrichment) → {worker, error, restarts}
    matches: (p) => typeof p.worker_name === 'string' && p.worker === undefined,
    payload: (p) => ({
      ...without(p, 'worker_name', 'timestamp'),
      worker: p.worker_name,
      error: typeof p.error === 'string' ? p.error : 'crashed',
      restarts: typeof p.restarts === 'number' ? p.restarts : 0,
      ...(typeof p.timestamp === 'string' ? { crashedAt: p.timestamp } : {}),
    }),
  });
  catalog.alias({
    name: 'system.daemon.restarted',
    type: 'system.daemon.restarted',
    from: FROM,
    // {computer, pid} (TeleClaude's daemon) → ours also says which version started, and when.
    matches: (p) => p.version === undefined || p.startedAt === undefined,
    payload: (p, at) => ({
      ...p,
      version: typeof p.version === 'string' ? p.version : 'teleclaude',
      startedAt: typeof p.startedAt === 'string' ? p.startedAt : at.timestamp,
    }),
  });
}
