/**
 * The weft command of an upgraded installation beside a daemon still running the Weft it
 * replaced (the daemon restarts later, or a service manager has not restarted it yet). The older
 * daemon's answers were recorded from real daemons of c124b10 (2026-12-02) and 33698a0
 * (2026-12-06) with curl (GET /api/quarantine of c124b10: no `held`), and are served here over a
 * real socket: old builds are not built in tests.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { weftAsync } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const TOKEN = 'older-daemon-token';

/** GET /api/health and /api/mesh/status as each older daemon answered them. */
const RECORDED: Record<string, { health: unknown; mesh: unknown }> = {
  'c124b10 (2026-12-02)': {
    health: {
      ok: true,
      version: '0.1.0',
      computer: 'm124',
      cluster: 'home',
      bus: 'sqlite',
      pid: 15254,
      uptimeSeconds: 727,
      pipeline: ['trust', 'dedup', 'enrichment', 'correlation', 'classification', 'notification-projection', 'mesh-publisher', 'promotion-tracker', 'sovereignty-gate'],
      processor: { batches: 35, processed: 35, passed: 35, dropped: 0, failed: 0, rejected: 0, duplicates: 0, batchErrors: 0 },
      subscribers: 0,
      delivery: null,
      nodeId: 'weft:ed25519:7c11eoVzDTeTKotHSqgyd6+UdQ9IH0usPvNMW+7GZ+E=',
      mesh: 'tls',
    },
    mesh: {
      enabled: true,
      provider: 'tls',
      peers: [{ computer: 'mnew', cluster: 'home', trustLevel: 'peer', origin: 'static', wire: 'weft', state: 'connected', negotiatedCaps: ['crc32c'], rttMs: 1, outbox: 0 }],
    },
  },
  '33698a0 (2026-12-06)': {
    health: {
      ok: true,
      version: '0.1.0',
      computer: 'm33',
      cluster: 'home',
      bus: 'sqlite',
      pid: 15212,
      uptimeSeconds: 729,
      pipeline: ['trust', 'dedup', 'enrichment', 'correlation', 'classification', 'notification-projection', 'session-lineage', 'mesh-publisher', 'privacy-projection', 'promotion-tracker', 'sovereignty-gate', 'domain-router'],
      processor: { batches: 36, processed: 36, passed: 36, dropped: 0, failed: 0, rejected: 0, duplicates: 0, batchErrors: 0 },
      subscribers: 0,
      delivery: null,
      nodeId: 'weft:ed25519:uQPJ5AyPEgP0Suo2DH0IV+dRx7DC9aiNd+hVWgIOseU=',
      mesh: 'tls',
    },
    mesh: {
      enabled: true,
      provider: 'tls',
      peers: [{ computer: 'mnew', cluster: 'home', trustLevel: 'peer', origin: 'static', wire: 'weft', state: 'connected', negotiatedCaps: ['crc32c', 'json-envelopes'], rttMs: 1, outbox: 0 }],
    },
  },
};

async function serve(answers: { health: unknown; mesh: unknown }): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const body =
      req.headers.authorization !== `Bearer ${TOKEN}`
        ? { status: 401, json: { error: { code: 'WEFT_UNAUTHORIZED', message: 'missing or wrong bearer token' } } }
        : path === '/api/health'
          ? { status: 200, json: answers.health }
          : path === '/api/mesh/status'
            ? { status: 200, json: answers.mesh }
            : path === '/api/quarantine'
              ? { status: 200, json: { items: [], totals: { flag: 0, quarantine: 0, reject: 0 } } }
            : // What every older daemon answers for a route it does not have.
              { status: 404, json: { error: { code: 'WEFT_NOT_FOUND', message: `no route ${req.method} ${path} (GET /openapi.json lists them)` } } };
    res.writeHead(body.status, { 'content-type': 'application/json' }).end(JSON.stringify(body.json));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('the weft command beside a daemon of an older Weft', () => {
  for (const [build, answers] of Object.entries(RECORDED)) {
    it(`weft status names the older daemon as the problem (${build})`, async () => {
      const t = tempDir('weft-older-daemon-');
      const s = await serve(answers);
      try {
        const env = { HOME: t.dir, WEFT_DATA_DIR: t.dir, WEFT_URL: s.url, WEFT_TOKEN: TOKEN };
        const r = await weftAsync(['status'], env);
        // Before: "weft: Cannot read properties of undefined (reading 'length')", exit 1.
        assert.doesNotMatch(r.stderr, /Cannot read properties/);
        assert.equal(r.code, 3, r.stdout + r.stderr);
        assert.match(r.stdout, /^node 'm\d+' \(cluster home\)/);
        assert.match(r.stdout, /problems \(1\):\n {2}- the daemon \(pid \d+, up \d+ min\) runs an older Weft than this weft command/);
        const j = await weftAsync(['status', '--json'], env);
        assert.equal(j.code, 3);
        assert.match((JSON.parse(j.stdout) as { problems: string[] }).problems[0] as string, /runs an older Weft/);
        // Its quarantine answer had no count of held events: not "undefined held in all".
        const q = await weftAsync(['quarantine', 'list'], env);
        assert.equal(q.code, 0, q.stderr);
        assert.doesNotMatch(q.stdout, /undefined/);
        // A command whose route the older daemon lacks says why, not only "no route".
        const rec = await weftAsync(['recovery', 'status'], env);
        assert.equal(rec.code, 1);
        assert.match(rec.stderr, /no route GET \/api\/recovery\/status .*runs an older Weft than this client; restart it/);
      } finally {
        s.server.close();
        t.cleanup();
      }
    });
  }
});
