/**
 * An approved cartridge as a pipeline stage: each event it consumes goes to the sandbox, its
 * result comes back as the event (provenance pinned), the events it emitted and one
 * `cartridge.invoked`. The time budget that suspends a stage holding up the pipeline lives here too.
 */
import { CARTRIDGE_EVENTS, type Catalog } from '../catalog/index.js';
import { type EmitInput, type Envelope, envelopeValidator, payloadProblem } from '../envelope/index.js';
import type { Cartridge, CartridgeContext } from '../pipeline/index.js';
import type { NodeStore } from '../store/index.js';
import type { Logger } from '../util/index.js';
import { type CartridgeManifest, consumesEventType } from './package.js';
import { type EventValidator, SANDBOX_EVENT_ERRORS as E, type Sandbox, type SandboxEventResult } from './sandbox/index.js';

/** Source of events a cartridge emits (and of its `cartridge.invoked` events). */
export function cartridgeSource(name: string): string {
  return `cartridge:${name}`;
}

/** Whether an event came from a cartridge (its source is `cartridge:<name>`). */
export function isCartridgeSource(source: string): boolean {
  return source.startsWith('cartridge:');
}

/** The types among `types` that only the node itself may produce (control types of its catalog). */
export function controlTypes(catalog: Pick<Catalog, 'isControl'>, types: readonly string[]): string[] {
  return types.filter((t) => catalog.isControl(t));
}

/** Why a cartridge that emits control types is refused, naming them. */
export function controlTypesProblem(name: string, types: readonly string[]): string {
  return `cartridge '${name}' emits ${types.map((t) => `'${t}'`).join(', ')}: the node's own control types (cartridge.*, system.*, mesh, transport and domain reports...) are only the node's to produce, never a cartridge's; remove them from the manifest's emits`;
}

/** Code of the dead letter when a running cartridge emits a control type. */
export const EMIT_CONTROL = 'WEFT_CARTRIDGE_EMIT_CONTROL';

/** Pipeline stage name of an active cartridge; kept apart from the name so stage counters do not mix with runs. */
export function cartridgeStageName(name: string): string {
  return `cartridge:${name}`;
}

/** Per-event failures that are not the cartridge's doing: the event passes on, no dead letter. */
export const PASSIVE_FAILURES: ReadonlySet<string> = new Set([E.STOPPED, E.SUSPENDED, E.NOT_LOADED, E.OVERLOADED]);

/** Provenance a cartridge may not rewrite on the event it returns. */
const PINNED_FIELDS = ['id', 'origin', 'sourceComputer', 'hops'] as const;

/**
 * What the approved sandbox checks on each event a cartridge returns: the envelope's schema and
 * the payload limits every entrance applies (`PAYLOAD_LIMITS`: depth 32, 64 KiB as JSON), since
 * the returned event goes on to the domain pipelines as if it had entered. A failure is that
 * cartridge's, for that event (a dead letter; the original passes on).
 */
export const envelopeCheck: EventValidator = (event) => {
  const e = envelopeValidator.firstError(event);
  if (e) return `${e.path}: ${e.message}`;
  const p = payloadProblem(event.payload);
  return p ? `${p.code}: ${p.message}` : null;
};

/** Whether `event` goes to cartridge `name`: its type is consumed, and it is not meta or the cartridge's own output. */
export function cartridgeWants(name: string, manifest: CartridgeManifest, event: Envelope): boolean {
  return event.event !== CARTRIDGE_EVENTS.invoked && event.source !== cartridgeSource(name) && consumesEventType(manifest, event.event);
}

/** The `cartridge.invoked` event recording one run, caused by the event it ran on. */
export function invokedInput(name: string, version: string, mode: 'active' | 'alpha', event: Envelope, emitted: number): EmitInput {
  return {
    event: CARTRIDGE_EVENTS.invoked,
    source: cartridgeSource(name),
    visibility: 'local',
    level: 0,
    causationId: event.id,
    correlationId: event.correlationId ?? event.id,
    payload: { cartridge: name, version, mode, eventId: event.id, eventType: event.event, emitted },
  };
}

/** What one approved stage needs from the runtime. */
export interface CartridgeStageDeps {
  /** The approved sandbox while this cartridge is loaded in it; null passes events unchanged. */
  sandbox(): Sandbox | null;
  ns: Pick<NodeStore, 'deadLetters' | 'stats' | 'failures'>;
  logger: Logger;
  /** Called with each event the cartridge failed on (after its dead letter), for the rate-limited notice. */
  onFailed(event: Envelope, error: string): void;
  /** Called with each event before it is run (names the event when the cartridge is suspended). */
  onRun(event: Envelope): void;
  /** Called with the time one event took in the sandbox. */
  onTimed(ms: number): void;
}

/**
 * The pipeline stage of an active cartridge. A failure that is the cartridge's own doing
 * leaves a dead letter and is counted (`cartridge_failures`, `onFailed`); the event always
 * passes on (unchanged) rather than being lost.
 * @example
 * const stage = cartridgeStage('tagger', manifest, { sandbox: () => approved, ns, logger, onRun, onTimed, onFailed });
 */
export function cartridgeStage(name: string, manifest: CartridgeManifest, deps: CartridgeStageDeps): Cartridge {
  const source = cartridgeSource(name);
  const stageName = cartridgeStageName(name);
  return {
    name: stageName,
    // One sandbox call per event, in another process: never made twice for a batch run again.
    noRerun: true,
    process: async (event: Envelope, ctx: CartridgeContext): Promise<Envelope | null> => {
      if (!cartridgeWants(name, manifest, event)) return event;
      // Its own failure on this event: the event passes on unchanged, the dead letter keeps the evidence, and it is counted.
      const failed = (error: string): Envelope => {
        deps.ns.deadLetters.add(event, stageName, error);
        deps.ns.failures.add(name, 1, ctx.now, error);
        deps.onFailed(event, error);
        return event;
      };
      const sandbox = deps.sandbox();
      if (!sandbox) return event;
      deps.onRun(event);
      let result: SandboxEventResult | undefined;
      const t0 = performance.now();
      try {
        [result] = await sandbox.process(name, [event]);
        deps.onTimed(performance.now() - t0);
      } catch (err) {
        deps.logger.warn({ cartridge: name, err: (err as Error).message }, 'sandbox unavailable; event passes unchanged');
        return event;
      }
      if (!result) return event;
      if (!result.ok) {
        return PASSIVE_FAILURES.has(result.error.code) ? event : failed(`${result.error.code}: ${result.error.message}`);
      }
      // Never as the node: a control type emitted (a manifest installed before the rule) fails the event, nothing is emitted.
      const control = controlTypes(ctx.catalog, result.emitted.map((e) => e.type));
      if (control.length > 0) return failed(`${EMIT_CONTROL}: ${controlTypesProblem(name, [...new Set(control)])}`);
      let emitted = 0;
      for (const e of result.emitted) {
        try {
          ctx.emit({ event: e.type, payload: e.payload, source });
          emitted++;
        } catch (err) {
          deps.logger.warn({ cartridge: name, type: e.type, err: (err as Error).message }, 'event emitted by a cartridge was refused');
        }
      }
      try {
        ctx.emit(invokedInput(name, manifest.version, 'active', event, emitted));
      } catch (err) {
        deps.logger.debug({ cartridge: name, err: (err as Error).message }, 'cartridge.invoked not emitted');
      }
      deps.ns.stats.add(name, 1, ctx.now);
      if (result.event === null) return null;
      const out = { ...result.event } as Record<string, unknown>;
      for (const field of PINNED_FIELDS) {
        if (event[field] === undefined) delete out[field];
        else out[field] = event[field];
      }
      return out as Envelope;
    },
  };
}

/** How long an approved cartridge may take per event, on average over its recent events. */
export interface TimeBudgetInit {
  meanMs: number;
  window: number;
  minSamples: number;
}

/**
 * Keeps each cartridge's recent per-event times (at most `window` each) and says when one is
 * over its budget.
 * @example
 * const budget = new TimeBudget({ meanMs: 25, window: 50, minSamples: 20 });
 * const over = budget.record('slow', 80); // null until 20 samples, then { meanMs, samples }
 */
export class TimeBudget {
  private readonly timings = new Map<string, number[]>();

  constructor(readonly limit: TimeBudgetInit = { meanMs: 25, window: 50, minSamples: 20 }) {}

  /** Records one time; answers the mean and sample count once the cartridge is over budget (and starts over). */
  record(name: string, ms: number): { meanMs: number; samples: number } | null {
    const b = this.limit;
    const list = this.timings.get(name) ?? [];
    list.push(ms);
    if (list.length > b.window) list.shift();
    this.timings.set(name, list);
    if (list.length < b.minSamples) return null;
    const mean = list.reduce((a, x) => a + x, 0) / list.length;
    if (mean <= b.meanMs) return null;
    this.timings.delete(name);
    return { meanMs: mean, samples: list.length };
  }

  forget(name: string): void {
    this.timings.delete(name);
  }
}
