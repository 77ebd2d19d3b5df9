/**
 * The sandbox child process. It owns one isolated-vm isolate per cartridge (its own heap and
 * memory limit) and runs events through them on request from the host. It has no other job:
 * it opens no files or sockets, and it dies with its parent. Never imported by library code;
 * the host starts it with `child_process.fork`.
 */
import ivm from 'isolated-vm';
import { PRELUDE } from './prelude.js';
import { type ChildMessage, type HostMessage, SANDBOX_EVENT_ERRORS as E } from './protocol.js';

interface Cartridge {
  readonly name: string;
  readonly source: string;
  readonly entryPoint: string;
  readonly emits: string[];
  readonly memoryLimitMb: number;
  readonly timeoutMs: number;
  isolate?: ivm.Isolate;
  run?: ivm.Reference<(json: string, maxChars: number, maxEmits: number) => string>;
}

const cartridges = new Map<string, Cartridge>();

function send(msg: ChildMessage): void {
  process.send?.(msg);
}

function rss(): number {
  return process.memoryUsage.rss();
}

function fail(code: string, message: string): string {
  return JSON.stringify({ x: code, m: message });
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function dispose(c: Cartridge): void {
  c.run?.release();
  if (c.isolate && !c.isolate.isDisposed) c.isolate.dispose();
  c.run = undefined;
  c.isolate = undefined;
}

/** Builds the cartridge's isolate: prelude, then source, then binds the entry point. */
function build(c: Cartridge): void {
  const isolate = new ivm.Isolate({ memoryLimit: c.memoryLimitMb });
  try {
    const context = isolate.createContextSync();
    const bind = context.evalSync(PRELUDE, { reference: true, timeout: c.timeoutMs }) as ivm.Reference;
    context.evalSync(c.source, { timeout: c.timeoutMs, filename: `cartridge:${c.name}` });
    const entry = context.evalSync(`typeof ${c.entryPoint} === 'function' ? ${c.entryPoint} : undefined`, {
      reference: true,
      timeout: c.timeoutMs,
    }) as ivm.Reference;
    if (entry.typeof !== 'function') {
      throw new Error(`entry point '${c.entryPoint}' is not a function defined by the source`);
    }
    const run = bind.applySync(undefined, [entry.derefInto(), JSON.stringify(c.emits)], {
      result: { reference: true },
      timeout: c.timeoutMs,
    }) as Cartridge['run'];
    bind.release();
    entry.release();
    c.isolate = isolate;
    c.run = run;
  } catch (err) {
    if (!isolate.isDisposed) isolate.dispose();
    if (isolate.isDisposed && /memory limit/.test(errorMessage(err))) {
      throw new Error(`memory limit of ${c.memoryLimitMb} MB exceeded while loading`);
    }
    throw err;
  }
}

function runOne(c: Cartridge, event: string, msg: Extract<HostMessage, { t: 'run' }>): string {
  if (!c.run || !c.isolate || c.isolate.isDisposed) {
    try {
      build(c);
    } catch (err) {
      return fail(E.NOT_LOADED, `cartridge could not be rebuilt after a reset: ${errorMessage(err)}`);
    }
  }
  const isolate = c.isolate as ivm.Isolate;
  try {
    const out = (c.run as NonNullable<Cartridge['run']>).applySync(
      undefined,
      [event, msg.maxResultChars, msg.maxEmits],
      {
        timeout: msg.timeoutMs,
      },
    );
    if (typeof out !== 'string') return fail(E.BAD_RESULT, 'the cartridge runner answered no text');
    if (out.length > msg.maxResultChars + 1024) {
      return fail(E.RESULT_TOO_LARGE, `result exceeds ${msg.maxResultChars} characters`);
    }
    return out;
  } catch (err) {
    const message = errorMessage(err);
    if (isolate.isDisposed) {
      dispose(c);
      return fail(
        E.MEMORY,
        `cartridge passed its memory limit of ${c.memoryLimitMb} MB; its engine was reset`,
      );
    }
    if (/timed out/i.test(message)) {
      return fail(E.TIMEOUT, `cartridge ran longer than its budget of ${msg.timeoutMs} ms`);
    }
    return fail(E.THREW, message);
  }
}

function handle(msg: HostMessage): void {
  switch (msg.t) {
    case 'load': {
      const old = cartridges.get(msg.name);
      if (old) dispose(old);
      cartridges.delete(msg.name);
      const c: Cartridge = {
        name: msg.name,
        source: msg.source,
        entryPoint: msg.entryPoint,
        emits: msg.emits,
        memoryLimitMb: msg.memoryLimitMb,
        timeoutMs: msg.timeoutMs,
      };
      try {
        build(c);
        cartridges.set(c.name, c);
        send({ t: 'loaded', seq: msg.seq });
      } catch (err) {
        send({ t: 'loaded', seq: msg.seq, error: errorMessage(err) });
      }
      return;
    }
    case 'unload': {
      const c = cartridges.get(msg.name);
      if (c) dispose(c);
      cartridges.delete(msg.name);
      send({ t: 'unloaded', seq: msg.seq });
      return;
    }
    case 'run': {
      const c = cartridges.get(msg.name);
      const results = new Array<string>(msg.events.length);
      const limit = msg.stopAfterFailures ?? Number.POSITIVE_INFINITY;
      let inRow = 0;
      for (let i = 0; i < msg.events.length; i++) {
        if (!c) {
          results[i] = fail(E.NOT_LOADED, `cartridge '${msg.name}' is not loaded in the sandbox`);
          continue;
        }
        if (inRow >= limit) {
          results[i] = fail(E.SUSPENDED, `not run: cartridge '${msg.name}' failed ${inRow} times in a row and is suspended`);
          continue;
        }
        const out = runOne(c, msg.events[i] as string, msg);
        results[i] = out;
        inRow = out.startsWith('{"x":') ? inRow + 1 : 0;
      }
      send({ t: 'ran', seq: msg.seq, results, rss: rss() });
      return;
    }
  }
}

process.on('message', (msg: HostMessage) => handle(msg));
// Without a parent there is nobody to serve: leave at once.
process.on('disconnect', () => process.exit(0));
// Resident memory for hosts without /proc; the host prefers reading /proc/<pid>/status.
setInterval(() => send({ t: 'rss', rss: rss() }), 250);
send({ t: 'ready', rss: rss() });
