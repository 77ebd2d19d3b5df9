import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { linkedSignal } from '../../src/util/index.js';

/** The set in which Node keeps the signals `AbortSignal.any` made from this one (undefined if it has none). */
function dependants(signal: AbortSignal): Set<unknown> | undefined {
  const sym = Object.getOwnPropertySymbols(signal).find((s) => s.description === 'kDependantSignals');
  return sym ? ((signal as unknown as Record<symbol, Set<unknown>>)[sym] ?? undefined) : undefined;
}

test('a linked signal aborts with its source reason, or with a TimeoutError after its time', async () => {
  const stop = new AbortController();
  const a = linkedSignal([stop.signal], 60_000);
  stop.abort(new Error('stopping'));
  assert.equal(a.signal.aborted, true);
  assert.equal((a.signal.reason as Error).message, 'stopping');

  const b = linkedSignal([new AbortController().signal], 20);
  // Its timer does not hold the process open (as AbortSignal.timeout's does not): this one does.
  const hold = setTimeout(() => undefined, 5000);
  await new Promise((r) => b.signal.addEventListener('abort', r, { once: true }));
  clearTimeout(hold);
  assert.equal((b.signal.reason as Error).name, 'TimeoutError');

  const gone = new AbortController();
  gone.abort(new Error('already'));
  const c = linkedSignal([new AbortController().signal, gone.signal], 60_000);
  assert.equal(c.signal.aborted, true);
  assert.equal((c.signal.reason as Error).message, 'already');
});

test("a node's stop signal keeps nothing of the operations that linked to it and finished", () => {
  // Node 20's AbortSignal.any kept every signal it made from a long-lived one (one per XACK,
  // per delivery request, per feed fetch): a daemon's memory grew for as long as it ran.
  const stop = new AbortController();
  for (let i = 0; i < 20_000; i++) {
    const op = linkedSignal([stop.signal, AbortSignal.timeout(60_000)]);
    op.release();
  }
  assert.equal(getEventListeners(stop.signal, 'abort').length, 0);
  assert.equal(dependants(stop.signal)?.size ?? 0, 0);
  const late = linkedSignal([stop.signal]);
  late.release();
  stop.abort();
  assert.equal(late.signal.aborted, false, 'a released signal no longer follows its source');
});

test('no source file combines signals with AbortSignal.any (it keeps what it makes from a long-lived signal)', () => {
  const src = fileURLToPath(new URL('../../../src', import.meta.url));
  const offenders: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts')) {
        readFileSync(p, 'utf8')
          .split('\n')
          .forEach((line, i) => {
            if (/AbortSignal\.any\(/.test(line) && !/^\s*(\*|\/\/)/.test(line)) offenders.push(`${p}:${i + 1}`);
          });
      }
    }
  };
  walk(src);
  assert.deepEqual(offenders, []);
});
