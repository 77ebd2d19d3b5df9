/**
 * Fuzzed ingress, CI size: 20,000 hostile frames and envelopes into a running daemon's Redis
 * inbox (the million is `npm run chaos -- --fuzz`). See fuzz.ts for what is generated.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runFuzz } from './fuzz.js';
import { randomSeed } from './prng.js';

for (const via of ['redis', 'tls'] as const) {
  test(`over ${via}: a node refuses every one of 20,000 mutated frames and envelopes, stays up and keeps serving a well-behaved peer`, async () => {
    const seed = process.env.WEFT_FUZZ_SEED ? Number(process.env.WEFT_FUZZ_SEED) : randomSeed();
    const lines: string[] = [];
    const r = await runFuzz({ via, count: Number(process.env.WEFT_FUZZ_COUNT ?? 20_000), seed, log: (s) => lines.push(s) });
    assert.ok(r.ok, `${r.failure}\nreplay: WEFT_FUZZ_SEED=${seed}\n${lines.join('\n')}`);
    assert.ok(r.friendDelivered > 0 && r.friendDelivered === r.friendEvents);
  });
}
