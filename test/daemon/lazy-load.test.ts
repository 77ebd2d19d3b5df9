/**
 * An embedded daemon (the newcomer's `weft daemon`) loads nothing it does not use: no Redis
 * client, no msgpack (frames), no sandbox, no NATS client, no WebSocket library until a client
 * subscribes, and no HTTP framework (the API is on `node:http`, src/api/http.ts). Each one costs
 * memory on every idle node (docs/performance.md).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { WeftClient } from '../../src/client/index.js';
import { readToken } from '../../src/config/index.js';
import { CLI, startDaemonProcess } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const RECORDER = fileURLToPath(new URL('../fixtures/loaded-modules.js', import.meta.url));
const NOT_LOADED = ['ioredis', 'msgpackr', 'isolated-vm', 'nats', 'ws', 'fastify', 'ajv'];

/** Packages named in loaded module paths. */
function packagesOf(paths: string[]): Set<string> {
  const out = new Set<string>();
  for (const p of paths) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(p);
    if (m) out.add(m[1] as string);
  }
  return out;
}

test('an embedded daemon that took an emit and a list has loaded no Redis client, msgpack, sandbox, NATS client, WebSocket library or HTTP framework', { skip: CLI.endsWith('.ts') ? 'needs the compiled fixture (npm test)' : false }, async () => {
  const t = tempDir('weft-lazy-');
  const loaded = join(t.dir, 'loaded.txt');
  const env = { HOME: t.dir, WEFT_DATA_DIR: join(t.dir, 'data'), WEFT_API_PORT: '0', WEFT_TEST_LOADED_MODULES: loaded };
  try {
    const d = await startDaemonProcess(env, ['--import', RECORDER, CLI, 'daemon']);
    const api = new WeftClient({ url: d.url, token: readToken(env.WEFT_DATA_DIR) as string });
    await api.emit({ event: 'system.worker.crashed', payload: { worker: 'lazy', error: 'test', restarts: 0 } });
    assert.ok((await api.notifications.list({ limit: 10 })).items.length >= 1);
    // A query with a bad field still gets its clear 400 (the validator is TypeBox's).
    await assert.rejects(api.request('GET', '/api/notifications?limit=abc'), /limit/);
    d.proc.kill('SIGTERM');
    assert.equal(await d.exited, 0, d.output());
    assert.ok(existsSync(loaded) && existsSync(`${loaded}.cjs`), 'the recorder wrote both lists');
    const paths = [...readFileSync(loaded, 'utf8').split('\n'), ...readFileSync(`${loaded}.cjs`, 'utf8').split('\n')].filter(Boolean);
    const packages = packagesOf(paths);
    assert.ok(packages.has('pino') && packages.has('better-sqlite3'), `the recorder saw the daemon's modules: ${[...packages].join(', ')}`);
    const unwanted = NOT_LOADED.filter((p) => packages.has(p));
    assert.deepEqual(unwanted, [], `loaded without being used: ${unwanted.join(', ')}`);
  } finally {
    t.cleanup();
  }
});
