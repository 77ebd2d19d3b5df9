import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { writePackageDir } from '../../src/sovereignty/index.js';
import { startDaemonProcess, weft } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const TODO = 'domain.software-development.planning.todo.created';

interface Listed {
  items: Array<{ name: string; status: string; origin: string; invocationCount: number; lastInvokedAt: string | null }>;
}

async function poll<T>(fn: () => T | undefined, what: string): Promise<T> {
  for (let i = 0; i < 400; i++) {
    const v = fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('cartridges installed and activated through the CLI transform events in the daemon and count their runs', async () => {
  const t = tempDir('weft-cartridges-cli-');
  const env = { HOME: t.dir, WEFT_DATA_DIR: join(t.dir, 'data'), WEFT_API_PORT: '0', WEFT_COMPUTER_NAME: 'cartbox' };
  const base = { version: '1.0.0', author: 'ada', entryPoint: 'process', consumes: [TODO] };
  // tagger changes the event; echoer runs after it (declared dependency) and reports what it saw
  await writePackageDir(join(t.dir, 'pkg', 'tagger'), {
    manifest: { ...base, name: 'tagger', description: 'tags todos', dependencies: [], emits: [] },
    source: "function process(e) { e.payload.tag = 'tagged-by-cartridge'; return e; }",
  });
  await writePackageDir(join(t.dir, 'pkg', 'echoer'), {
    manifest: { ...base, name: 'echoer', description: 'echoes todos', dependencies: ['tagger'], emits: [TODO] },
    source: `function process(e, ctx) {
      ctx.emit('${TODO}', { slug: 'echo-' + e.payload.slug, title: String(e.payload.tag || 'untagged') });
      return e;
    }`,
  });
  const list = (): Listed => {
    const r = weft(['cartridges', 'list', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Listed;
  };
  const count = (name: string) => list().items.find((c) => c.name === name)?.invocationCount ?? 0;
  try {
    const d = await startDaemonProcess(env);
    try {
      // echoer needs tagger active first: activation is refused with a message naming the dependency
      for (const name of ['echoer', 'tagger']) {
        const r = weft(['cartridges', 'install', join(t.dir, 'pkg', name)], env);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`installed ${name} 1.0.0 \\(pending_activation\\)`));
      }
      assert.deepEqual(
        list().items.map((c) => [c.name, c.status, c.origin]),
        [
          ['echoer', 'pending_activation', 'local'],
          ['tagger', 'pending_activation', 'local'],
        ],
      );
      const early = weft(['cartridges', 'activate', 'echoer'], env);
      assert.equal(early.code, 1);
      assert.match(early.stderr, /depends on 'tagger'/);

      assert.equal(weft(['cartridges', 'activate', 'tagger'], env).code, 0);
      const act = weft(['cartridges', 'activate', 'echoer'], env);
      assert.equal(act.code, 0, act.stderr);
      assert.match(act.stdout, /cartridge echoer 1.0.0 is active/);

      const e = weft(['emit', TODO, '--payload', JSON.stringify({ slug: 'e2e', title: 'E2E' })], env);
      assert.equal(e.code, 0, e.stderr);
      const echoed = await poll(() => {
        const r = weft(['notifications', 'list', '--json', '--type', TODO], env);
        assert.equal(r.code, 0, r.stderr);
        const items = (JSON.parse(r.stdout) as { items: Array<{ payload: Record<string, unknown> }> }).items;
        return items.find((n) => n.payload.slug === 'echo-e2e');
      }, 'the echoed todo');
      assert.equal(echoed.payload.title, 'tagged-by-cartridge', 'echoer saw the event as tagger changed it');

      const before = await poll(() => (count('tagger') > 0 ? count('tagger') : undefined), 'tagger invocations');
      assert.equal(weft(['emit', TODO, '--payload', JSON.stringify({ slug: 'e2e-2', title: 'again' })], env).code, 0);
      await poll(() => (count('tagger') > before ? true : undefined), 'the invocation count to grow');
      const tagger = list().items.find((c) => c.name === 'tagger');
      assert.ok(tagger?.lastInvokedAt, 'last invocation recorded');

      const human = weft(['cartridges', 'list'], env);
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout, /NAME\s+VERSION\s+AUTHOR\s+STATUS\s+ORIGIN\s+INVOCATIONS\s+LAST INVOKED\s+FAILURES/);
      assert.match(human.stdout, /tagger\s+1\.0\.0\s+ada\s+active\s+local\s+\d+\s+\S+\s+0/);

      // a file changed behind the node's back: installing the same package again restores it
      const file = join(t.dir, 'data', 'cartridges', 'active', 'tagger.js');
      writeFileSync(file, 'function process(e) { return null; }');
      const repair = weft(['cartridges', 'install', join(t.dir, 'pkg', 'tagger')], env);
      assert.equal(repair.code, 0, repair.stderr);
      assert.match(repair.stdout, /tagger 1\.0\.0 is installed \(active\); its files did not match the installed source and were written again/);
      assert.equal(readFileSync(file, 'utf8'), "function process(e) { e.payload.tag = 'tagged-by-cartridge'; return e; }");

      // cartridge.invoked is recorded but never becomes a notification
      const inv = weft(['notifications', 'list', '--json', '--type', 'cartridge.invoked'], env);
      assert.equal((JSON.parse(inv.stdout) as { items: unknown[] }).items.length, 0);

      // rejecting tagger while echoer depends on it is refused; echoer then tagger works
      assert.equal(weft(['cartridges', 'reject', 'tagger'], env).code, 1);
      assert.equal(weft(['cartridges', 'reject', 'echoer'], env).code, 0);
      const rej = weft(['cartridges', 'reject', 'tagger', '--json'], env);
      assert.equal(rej.code, 0, rej.stderr);
      assert.equal((JSON.parse(rej.stdout) as { status: string }).status, 'rejected');
      const again = weft(['cartridges', 'reject', 'tagger'], env);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /it is rejected/);
    } finally {
      d.proc.kill('SIGTERM');
      assert.equal(await d.exited, 0, d.output());
    }
  } finally {
    t.cleanup();
  }
});
