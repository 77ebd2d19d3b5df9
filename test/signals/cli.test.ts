/**
 * `weft signals poll` against a real daemon and real feed servers on 127.0.0.1: an unknown
 * source is an error, a named poll that fails exits 1, and a source held back because its host
 * asked to wait says until when and why.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDaemonProcess, weftAsync } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const RSS =
  '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item><title>An item</title><link>http://x.example/1</link></item></channel></rss>';

async function listen(
  handler: Parameters<typeof createServer>[1],
): Promise<{ server: Server; base: string }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('weft signals poll says what happened, in its output and its exit code', () => {
  const t = tempDir('weft-signals-cli-');
  const servers: Server[] = [];
  let env: NodeJS.ProcessEnv = {};
  let stop: () => Promise<void> = async () => undefined;
  before(async () => {
    const plain = await listen((req, res) => {
      res.setHeader('content-type', 'application/rss+xml');
      res.end(req.url === '/broken.xml' ? '<rss><channel><item><title>never closed' : RSS);
    });
    // One host that asks to wait on one feed: its other feed waits too.
    const busy = await listen((req, res) => {
      if (req.url === '/a.xml') {
        res.writeHead(429, { 'retry-after': '600' });
        res.end();
        return;
      }
      res.setHeader('content-type', 'application/rss+xml');
      res.end(RSS);
    });
    servers.push(plain.server, busy.server);
    const config = join(t.dir, 'config.toml');
    const source = (label: string, url: string) =>
      `[[signals.sources]]\ntype = "rss"\nurl = "${url}"\nlabel = "${label}"\n`;
    writeFileSync(
      config,
      `[signals]\nmax_parse_errors = 1\ncluster_interval = 86400\n${source('fine', `${plain.base}/fine.xml`)}${source('broken', `${plain.base}/broken.xml`)}${source('a-limited', `${busy.base}/a.xml`)}${source('b-same-host', `${busy.base}/b.xml`)}`,
    );
    env = {
      HOME: t.dir,
      WEFT_CONFIG: config,
      WEFT_DATA_DIR: join(t.dir, 'data'),
      WEFT_API_PORT: '0',
      WEFT_TOKEN: '',
      WEFT_URL: '',
    };
    const d = await startDaemonProcess(env);
    stop = async () => {
      d.proc.kill('SIGTERM');
      await d.exited;
    };
    // The start's own first poll: broken is given up on, a-limited is told to wait.
    for (let i = 0; i < 200; i++) {
      const s = JSON.parse((await weftAsync(['--json', 'signals', 'sources'], env)).stdout) as {
        sources: Array<{ id: string; lastStatus: string | null }>;
      };
      if (s.sources.every((x) => x.lastStatus !== null || x.id === 'b-same-host')) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  after(async () => {
    await stop();
    for (const s of servers) await new Promise((r) => s.close(r));
    t.cleanup();
  });

  it('an unknown source is an error naming the sources there are', async () => {
    const r = await weftAsync(['signals', 'poll', 'nosuch'], env);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /no signal source 'nosuch' \(the sources: .*broken.*fine/);
    assert.equal(r.stdout, '');
  });

  it('a named poll that fails exits 1 and says why in full; one that works exits 0', async () => {
    const disabled = await weftAsync(['signals', 'poll', 'broken'], env);
    assert.equal(disabled.code, 1, disabled.stdout);
    assert.match(disabled.stdout, /broken {2}failed/);
    assert.match(
      disabled.stdout,
      /failed:\n {2}broken: signal source broken is disabled .*weft signals enable broken/,
    );
    const fine = await weftAsync(['signals', 'poll', 'fine'], env);
    assert.equal(fine.code, 0, fine.stdout);
  });

  it('a source held back by its host says until when and why, and its next poll is that time', async () => {
    const r = await weftAsync(['signals', 'poll', 'b-same-host'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /b-same-host +deferred +0 +0 +held until \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ/);
    assert.match(
      r.stdout,
      /held \(no request before the time\):\n {2}b-same-host: until .*: host 127\.0\.0\.1:\d+ asked to wait \(another of its sources got HTTP 429 or 503\)/,
    );
    const a = await weftAsync(['signals', 'poll', 'a-limited'], env);
    assert.match(a.stdout, /a-limited: until .*: HTTP 429, Retry-After until /);
    const s = JSON.parse((await weftAsync(['--json', 'signals', 'sources'], env)).stdout) as {
      sources: Array<{ id: string; nextPollAt: string; lastStatus: string }>;
    };
    const b = s.sources.find((x) => x.id === 'b-same-host');
    assert.ok(
      Date.parse(b?.nextPollAt ?? '') > Date.now() + 500_000,
      `next poll when the host is free: ${b?.nextPollAt}`,
    );
    assert.match(b?.lastStatus ?? '', /^deferred: host .* asked to wait/);
  });
});
