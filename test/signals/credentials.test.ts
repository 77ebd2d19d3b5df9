/**
 * A feed URL with a user, password and token in it (`https://user:pass@host/feed?token=…`):
 * the daemon fetches it with an Authorization header (sent to that host only, never where it
 * redirects), and neither `weft config show`, `weft signals sources` nor the daemon's log
 * repeats the credentials.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDaemonProcess, weftAsync } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const RSS =
  '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item><title>A private item</title><link>http://x.example/private-1</link></item></channel></rss>';
const BASIC = `Basic ${Buffer.from('feeduser:hunter2secret').toString('base64')}`;

async function listen(
  handler: Parameters<typeof createServer>[1],
): Promise<{ server: Server; base: string }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, base: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('a feed URL with credentials in it', () => {
  const t = tempDir('weft-signals-creds-');
  const servers: Server[] = [];
  const elsewhere: IncomingHttpHeaders[] = [];
  let env: NodeJS.ProcessEnv = {};
  let output: () => string = () => '';
  let stop: () => Promise<void> = async () => undefined;
  before(async () => {
    const other = await listen((req, res) => {
      elsewhere.push(req.headers);
      res.setHeader('content-type', 'application/rss+xml');
      res.end(RSS.replace('private-1', 'moved-1'));
    });
    const feed = await listen((req, res) => {
      if (req.url?.startsWith('/moved.xml')) {
        res.writeHead(302, { location: `http://${other.base}/elsewhere.xml` });
        res.end();
        return;
      }
      if (req.headers.authorization !== BASIC || req.url !== '/auth.xml?token=SECRET123') {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="feeds"' });
        res.end();
        return;
      }
      res.setHeader('content-type', 'application/rss+xml');
      res.end(RSS);
    });
    servers.push(other.server, feed.server);
    const sources =
      `[signals]\ncluster_interval = 86400\n` +
      `[[signals.sources]]\ntype = "rss"\nlabel = "private"\nurl = "http://feeduser:hunter2secret@${feed.base}/auth.xml?token=SECRET123"\n` +
      `[[signals.sources]]\ntype = "rss"\nlabel = "moved"\nurl = "http://feeduser:hunter2secret@${feed.base}/moved.xml?token=SECRET123"\n`;
    const config = join(t.dir, 'config.toml');
    writeFileSync(config, sources);
    // A Redis password next to them, to show both are masked alike (the daemon runs without Redis).
    writeFileSync(
      join(t.dir, 'with-redis.toml'),
      `[redis]\nurl = "redis://:redispass99@127.0.0.1:29999"\n${sources}`,
    );
    env = {
      HOME: t.dir,
      WEFT_CONFIG: config,
      WEFT_DATA_DIR: join(t.dir, 'data'),
      WEFT_API_PORT: '0',
      WEFT_TOKEN: '',
      WEFT_URL: '',
    };
  });
  after(async () => {
    await stop();
    for (const s of servers) await new Promise((r) => s.close(r));
    t.cleanup();
  });

  it('should not print the password or the token in weft config show', async () => {
    const r = await weftAsync(['config', 'show'], { ...env, WEFT_CONFIG: join(t.dir, 'with-redis.toml') });
    assert.doesNotMatch(r.stdout + r.stderr, /hunter2secret|SECRET123|feeduser|redispass99/);
    assert.match(r.stdout, /http:\/\/\*\*\*@127\.0\.0\.1:\d+\/auth\.xml\?token=\*\*\*/);
  });

  it('should fetch the feed with the credentials as a Basic header to its own host only, and never show them', async () => {
    const noRedis = env;
    const d = await startDaemonProcess(noRedis);
    output = d.output;
    stop = async () => {
      d.proc.kill('SIGTERM');
      await d.exited;
    };
    type Sources = {
      sources: Array<{ id: string; url: string; lastStatus: string | null; itemsSeen: number }>;
    };
    let s: Sources = { sources: [] };
    for (let i = 0; i < 200; i++) {
      s = JSON.parse((await weftAsync(['--json', 'signals', 'sources'], noRedis)).stdout) as Sources;
      if (s.sources.length === 2 && s.sources.every((x) => x.lastStatus !== null)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const priv = s.sources.find((x) => x.id === 'private');
    assert.equal(priv?.itemsSeen, 1, `the feed answered with its item: ${JSON.stringify(priv)}`);
    assert.equal(s.sources.find((x) => x.id === 'moved')?.itemsSeen, 1, 'the redirect was followed');
    assert.equal(elsewhere.length, 1);
    assert.equal(elsewhere[0]?.authorization, undefined, 'the credentials stay with the feed host');
    const text = await weftAsync(['signals', 'sources'], noRedis);
    for (const shown of [JSON.stringify(s), text.stdout, text.stderr, output()])
      assert.doesNotMatch(shown, /hunter2secret|SECRET123/);
    assert.match(priv?.url ?? '', /^http:\/\/\*\*\*@127\.0\.0\.1:\d+\/auth\.xml\?token=\*\*\*$/);
  });
});
