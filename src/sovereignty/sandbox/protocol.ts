/**
 * The messages between the host and the sandbox child process, and the per-event error codes.
 * Events cross as JSON text, so the child never holds a host object and the host never holds
 * an engine object.
 */

/** Codes of per-event failures returned by `Sandbox.process`. Stable once shipped. */
export const SANDBOX_EVENT_ERRORS = {
  /** The cartridge ran past its per-event time budget and was interrupted inside the engine. */
  TIMEOUT: 'WEFT_SANDBOX_TIMEOUT',
  /** The cartridge's engine passed its memory limit; its isolate was discarded and is rebuilt. */
  MEMORY: 'WEFT_SANDBOX_MEMORY',
  /** The host killed the sandbox process (deadline or resident-memory cap) while the event was in flight. */
  KILLED: 'WEFT_SANDBOX_KILLED',
  /** The sandbox process died on its own while the event was in flight. */
  CRASHED: 'WEFT_SANDBOX_CRASHED',
  /** The sandbox process could not be started. */
  UNAVAILABLE: 'WEFT_SANDBOX_UNAVAILABLE',
  /** The sandbox was stopped before the event ran. */
  STOPPED: 'WEFT_SANDBOX_STOPPED',
  /** Too many events are waiting for the sandbox. */
  OVERLOADED: 'WEFT_SANDBOX_OVERLOADED',
  /** The input event could not be serialised as JSON. */
  BAD_INPUT: 'WEFT_SANDBOX_BAD_INPUT',
  /** The cartridge threw. */
  THREW: 'WEFT_CARTRIDGE_THREW',
  /** The cartridge returned something that is not an event object, null or undefined. */
  BAD_RESULT: 'WEFT_CARTRIDGE_BAD_RESULT',
  /** The cartridge's result or emitted events exceed the size limit. */
  RESULT_TOO_LARGE: 'WEFT_CARTRIDGE_RESULT_TOO_LARGE',
  /** The cartridge called `ctx.emit` for a type its manifest does not declare. */
  EMIT_UNDECLARED: 'WEFT_CARTRIDGE_EMIT_UNDECLARED',
  /** The cartridge is suspended after repeated failures and was not run. */
  SUSPENDED: 'WEFT_CARTRIDGE_SUSPENDED',
  /** The cartridge is not loaded (never loaded, unloaded, or failed to reload after a restart). */
  NOT_LOADED: 'WEFT_CARTRIDGE_NOT_LOADED',
} as const;

/** One per-event error code. */
export type SandboxEventErrorCode = (typeof SANDBOX_EVENT_ERRORS)[keyof typeof SANDBOX_EVENT_ERRORS];

/** Host → child. */
export type HostMessage =
  | {
      t: 'load';
      seq: number;
      name: string;
      source: string;
      entryPoint: string;
      emits: string[];
      memoryLimitMb: number;
      timeoutMs: number;
    }
  | { t: 'unload'; seq: number; name: string }
  | {
      t: 'run';
      seq: number;
      name: string;
      /** Each event as JSON text. */
      events: string[];
      timeoutMs: number;
      maxResultChars: number;
      maxEmits: number;
      /**
       * Failures in a row after which the rest of this batch is not run (answered
       * `WEFT_CARTRIDGE_SUSPENDED`): the host suspends the cartridge at that count, and a batch
       * of an endless loop must not spend its whole per-event budget on every event first.
       */
      stopAfterFailures?: number;
    };

/**
 * One event's outcome as JSON text, produced in the child: either
 * `{"r": <event|null>, "e": [{"type", "payload"}...]}` or `{"x": <code>, "m": <message>}`.
 */
export type WireOutcome = string;

/** Child → host. */
export type ChildMessage =
  | { t: 'ready'; rss: number }
  | { t: 'loaded'; seq: number; error?: string }
  | { t: 'unloaded'; seq: number }
  /** One outcome per event, in order; parsed one by one so a bad one fails only its event. */
  | { t: 'ran'; seq: number; results: WireOutcome[]; rss: number }
  | { t: 'rss'; rss: number };
