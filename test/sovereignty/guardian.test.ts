import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  chainGuardians,
  commandGuardian,
  GuardianError,
  guardianRequest,
  ruleGuardian,
} from '../../src/sovereignty/index.js';
import { tempDir } from '../helpers/tmp.js';
import { cartridge } from './fixtures.js';

const clean = cartridge('tagger', "function process(event, ctx) { ctx.emit('build.tagged', { id: event.id }); return event; }", {
  emits: ['build.tagged'],
  dependencies: ['dedup'],
});
const req = (pkg = clean) => guardianRequest(pkg, { origin: 'weft:ed25519:peer', sourceComputer: 'beta' });
const rules = ruleGuardian({ maxSourceBytes: 2048 })({
  hasDependency: (n) => n === 'dedup',
  knowsEventType: (t) => t === 'build.tagged',
});

describe('rule guardian', () => {
  test('approves a small cartridge whose dependencies and emitted types exist', async () => {
    const v = await rules.judge(req());
    assert.equal(v.approve, true, v.reason);
    assert.equal(v.guardian, 'rules');
  });

  test('a function named process is allowed, the process object is not', async () => {
    for (const [source, construct] of [
      ['function process(e) { return process.env.SECRET ? e : null; }', 'process'],
      ["function process(e) { return eval('e'); }", 'eval('],
      ["function process(e) { return new Function('return 1')() ? e : e; }", 'Function('],
      ["function process(e) { import('node:fs'); return e; }", 'import('],
      ["function process(e) { const fs = require('fs'); return e; }", 'require'],
      ['function process(e) { return globalThis.x ? e : e; }', 'globalThis'],
    ] as const) {
      const v = await rules.judge(req(cartridge('bad', source)));
      assert.equal(v.approve, false, source);
      assert.ok(v.reason.includes(construct), `${v.reason} names ${construct}`);
    }
  });

  test("refuses a cartridge that emits the node's control types, naming them", async () => {
    const guarded = ruleGuardian()({ hasDependency: () => true, knowsEventType: () => true, isControlType: (t) => t.startsWith('cartridge.') });
    const v = await guarded.judge(req(cartridge('pub', 'function process(e) { return e; }', { emits: ['build.tagged', 'cartridge.published'] })));
    assert.equal(v.approve, false);
    assert.match(v.reason, /emits the node's own control types 'cartridge\.published', which only the node may produce/);
  });

  test('refuses an oversized source, a missing dependency and an unknown emitted type, naming each', async () => {
    const v = await rules.judge(
      req(cartridge('big', `function process(e) { return e; } // ${'x'.repeat(3000)}`, { dependencies: ['tagger2'], emits: ['nope.type'] })),
    );
    assert.equal(v.approve, false);
    assert.match(v.reason, /more than 2048/);
    assert.match(v.reason, /depends on 'tagger2'/);
    assert.match(v.reason, /unknown event types 'nope.type'/);
  });
});

describe('command guardian', () => {
  const t = tempDir('weft-guardian-');
  after(() => t.cleanup());
  const script = (name: string, body: string) => {
    const path = join(t.dir, name);
    writeFileSync(path, body);
    return `"${process.execPath}" "${path}"`;
  };
  const readStdin = "let s = ''; process.stdin.on('data', (d) => (s += d)); process.stdin.on('end', () => { const c = JSON.parse(s); ";

  test('reads the cartridge as JSON on stdin and approves', async () => {
    const g = commandGuardian({
      command: script('approve.cjs', `${readStdin} console.log('thinking...'); console.log(JSON.stringify({ approve: c.name === 'tagger' && c.source.includes('build.tagged'), reason: 'read ' + c.name + ' from ' + c.sourceComputer })); });`),
    });
    const v = await g.judge(req());
    assert.deepEqual(v, { approve: true, reason: 'read tagger from beta', guardian: 'command' });
  });

  test("gets a minimal environment, not the daemon's (which may hold secrets)", async () => {
    process.env.WEFT_TELEGRAM_BOT_TOKEN = 'secret-123';
    try {
      const g = commandGuardian({
        command: script('env.cjs', `${readStdin} console.log(JSON.stringify({ approve: true, reason: Object.keys(process.env).sort().join(',') })); });`),
      });
      const v = await g.judge(req());
      assert.doesNotMatch(v.reason, /WEFT_TELEGRAM_BOT_TOKEN/);
      assert.match(v.reason, /PATH/);
    } finally {
      delete process.env.WEFT_TELEGRAM_BOT_TOKEN;
    }
  });

  test('refuses with its reason', async () => {
    const g = commandGuardian({ command: script('refuse.cjs', `${readStdin} console.log(JSON.stringify({ approve: false, reason: 'no network code' })); });`) });
    assert.deepEqual(await g.judge(req()), { approve: false, reason: 'no network code', guardian: 'command' });
  });

  test('bad JSON is a clear error', async () => {
    const g = commandGuardian({ command: script('bad.cjs', "console.log('sure, looks good');") });
    await assert.rejects(g.judge(req()), (err: unknown) => err instanceof GuardianError && /printed no JSON answer.*sure, looks good/.test(err.message));
    const h = commandGuardian({ command: script('bad2.cjs', "console.log(JSON.stringify({ approve: 'yes' }));") });
    await assert.rejects(h.judge(req()), /without a boolean "approve"/);
  });

  test('a command that does not answer in time is killed and refused', async () => {
    const g = commandGuardian({ command: script('slow.cjs', 'setTimeout(() => {}, 60_000);'), timeoutMs: 300 });
    await assert.rejects(g.judge(req()), /gave no answer within 300 ms; it was killed/);
  });

  test('a non-zero exit is an error naming the status and stderr', async () => {
    const g = commandGuardian({ command: script('crash.cjs', "console.error('model unavailable'); process.exit(3);") });
    await assert.rejects(g.judge(req()), /exited with status 3: model unavailable/);
  });

  test('in a chain, a failing guardian is a refusal that says why, and rules run first', async () => {
    const crash = commandGuardian({ command: script('crash2.cjs', 'process.exit(1);') });
    const v = await chainGuardians([rules, crash]).judge(req());
    assert.equal(v.approve, false);
    assert.match(v.reason, /^guardian failed: .*exited with status 1/);
    const ok = commandGuardian({ command: script('ok.cjs', `${readStdin} console.log(JSON.stringify({ approve: true, reason: 'fine' })); });`) });
    const bad = await chainGuardians([rules, ok]).judge(req(cartridge('bad', "function process(e) { return eval('e'); }")));
    assert.equal(bad.guardian, 'rules');
    assert.equal(bad.approve, false);
    const good = await chainGuardians([rules, ok]).judge(req());
    assert.equal(good.approve, true);
    assert.equal(good.guardian, 'rules+command');
  });
});
