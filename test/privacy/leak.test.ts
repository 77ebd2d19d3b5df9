/**
 * The leak test: five nodes observe 10,000 commands, each node's command line and working
 * directory carrying that node's canary. Summaries are generated and shared, every node runs
 * every query type, and then every frame every provider sent (decoded, before TLS encrypts
 * it), every stream entry on the shared Redis, every summary, every query answer and every API
 * answer of the other nodes is searched for the canary: not one match. Run over the in-memory
 * network, a real Redis and real TLS sockets.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { QUERY_TYPES } from '../../src/catalog/index.js';
import { decodeFrame } from '../../src/transport/index.js';
import { TRANSPORTS } from '../helpers/mesh-pair.js';
import { privacyMesh, until, writeSpool } from '../helpers/privacy-mesh.js';

const NAMES = ['n1', 'n2', 'n3', 'n4', 'n5'];
const PER_NODE = 2000;
const canary = (name: string) => `cnry${name}x7q`;

/** GET routes whose answers a peer's user could read. */
const GETS = [
  '/api/events?limit=1000',
  '/api/notifications?limit=1000',
  '/api/privacy/summaries?limit=1000',
  '/api/privacy/peer-summaries?limit=1000',
  '/api/privacy/summaries/preview?period=day',
  '/api/privacy/summaries/preview?period=week',
  '/api/privacy/trust',
  '/api/privacy/policy',
  '/api/privacy/observe',
  '/api/audit/export',
  '/api/rejections?limit=1000',
  '/api/quarantine?status=all&limit=1000',
  '/api/mesh/status',
  '/api/peers',
  '/api/pipeline',
  '/metrics',
];

for (const transport of TRANSPORTS) {
  test(`over ${transport}: no trace of a node's observed commands leaves it, in any frame, summary, query answer or API answer`, async () => {
    const m = await privacyMesh(transport, NAMES, { policy: () => ({ shareSummaries: true, minContributors: 3 }) });
    try {
      const now = Date.now();
      for (const h of m.nodes) {
        const c = canary(h.name);
        const records = Array.from({ length: PER_NODE }, (_, i) => ({
          command: i % 2 === 0 ? `git commit -m "${c} ${i}"` : `curl https://${c}.example.test/${i} | grep ${c}`,
          cwd: `/home/me/${c}/project-${i % 7}`,
          ts: now - 3_600_000 + i * 1000,
          exit: i % 5 === 0 ? 1 : 0,
        }));
        writeSpool(h.spoolDir, 'bash-4242-1.spool', records);
      }
      for (const h of m.nodes) {
        await h.node.privacy.observer?.scan();
        assert.ok(await h.node.node.idle(30_000), `${h.name} applied its commands`);
        const n = (h.node.node.ns.store.reader.prepare('SELECT COUNT(*) AS n FROM terminal_commands').get() as { n: number }).n;
        assert.equal(n, PER_NODE, `${h.name} observed every command`);
      }
      // Summaries of every granularity (every peer is trusted 'peer'): the hour before this one has
      // ended and is shared; the periods still running are kept on their node and searched in its API.
      const summaries: unknown[] = [];
      for (const h of m.nodes) {
        for (const g of ['hourly', 'daily', 'weekly'] as const) {
          summaries.push(await h.node.privacy.generate(g, now - 3_600_000));
          summaries.push(await h.node.privacy.generate(g, now));
        }
      }
      await until('every node holds every other node\'s summaries', () =>
        m.nodes.every((h) => h.node.privacy.store.peerSummaries({ limit: 1000 }).length >= NAMES.length - 1),
      60_000);
      // Every query type from every node, over the API.
      const answers: string[] = [];
      for (const h of m.nodes) {
        for (const type of QUERY_TYPES) {
          const res = await h.app.inject({ method: 'POST', url: '/api/privacy/query', headers: { authorization: `Bearer ${h.token}` }, payload: { type, ...(type === 'node_health' ? {} : { range: '1d' }) } });
          assert.equal(res.statusCode, 200, res.body);
          const body = JSON.parse(res.body) as { answered: number };
          assert.equal(body.answered, NAMES.length, `${h.name} ${type}: every node answered`);
          answers.push(res.body);
        }
      }
      await until('every outbox drained', () =>
        m.nodes.every((h) => ((h.node.mesh as NonNullable<typeof h.node.mesh>).status() as { peers: Array<{ outbox: number }> }).peers.every((p) => p.outbox === 0)),
      60_000);

      const leaks: string[] = [];
      const find = (where: string, text: string, except?: string) => {
        for (const name of NAMES) if (name !== except && text.includes(canary(name))) leaks.push(`${where}: ${name}'s canary`);
      };
      // Frames, before encryption: raw bytes and the decoded body.
      let frames = 0;
      for (const h of m.nodes) {
        for (const bytes of h.sent) {
          frames++;
          find(`a frame ${h.name} sent (bytes)`, Buffer.from(bytes).toString('latin1'));
          // Over Redis frames are sealed for their peer (aead by default): try each link key.
          const keys = NAMES.filter((n) => n !== h.name).map((n) => h.node.mesh?.linkKey(n));
          const open = (key?: Uint8Array) => decodeFrame(bytes, { lookupKey: () => h.identity.publicKey, ...(key ? { aeadKey: key } : {}) });
          let d = open();
          for (const k of keys) if (!d.ok && k) d = open(k);
          assert.ok(d.ok, `${h.name} sends only frames that decode`);
          find(`a frame ${h.name} sent (decoded)`, JSON.stringify(d.frame.body));
        }
      }
      assert.ok(frames > 0);
      if (transport === 'redis') {
        // Everything on the shared Redis, as bytes.
        const url = m.redisUrl;
        assert.ok(url);
        {
          const r = new Redis(url);
          try {
            let cursor = '0';
            do {
              const [next, keys] = await r.scan(cursor, 'COUNT', 500);
              cursor = next;
              for (const key of keys) {
                if ((await r.type(key)) !== 'stream') continue;
                for (const [, fields] of await r.xrangeBuffer(key, '-', '+')) find(`stream ${key}`, Buffer.concat(fields as Buffer[]).toString('latin1'));
              }
            } while (cursor !== '0');
          } finally {
            r.disconnect();
          }
        }
      }
      find('a summary', JSON.stringify(summaries));
      find('a query answer', answers.join('\n'));
      for (const h of m.nodes) {
        for (const url of GETS) {
          const res = await h.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${h.token}` } });
          assert.equal(res.statusCode, 200, `${h.name} ${url}: ${res.body.slice(0, 200)}`);
          // A node's own log holds its own commands (redacted); nobody else's may appear anywhere.
          find(`${h.name} GET ${url}`, res.body, url.startsWith('/api/events') ? h.name : undefined);
        }
        // And nothing raw arrived: no terminal.command from anyone else in its log.
        const foreign = h.node.node.ns.store.reader.prepare("SELECT COUNT(*) AS n FROM events WHERE event = 'terminal.command' AND body NOT LIKE ?").get(`%${canary(h.name)}%`) as { n: number };
        assert.equal(foreign.n, 0, `${h.name} holds only its own commands`);
      }
      assert.deepEqual(leaks, []);
    } finally {
      await m.cleanup();
    }
  });
}
