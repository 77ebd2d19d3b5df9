/**
 * A person finds out what was not delivered, and why, with a real `weft daemon` whose webhook
 * (configured through its config file, as the README shows) refuses every message: `weft
 * deliveries list --status failed` names the rows and the refusal, and no surface (the list,
 * `weft status`, `weft config show`, /api/health, the log) shows the URL's tokens.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { WeftClient } from '../../src/client/index.js';
import { readToken } from '../../src/config/index.js';
import { startDaemonProcess, weft } from '../helpers/cli.js';
import { eventually } from '../helpers/cluster.js';
import { tempDir } from '../helpers/tmp.js';

test('deliveries: should list what a refusing webhook gave up on, and why, without its secrets', async () => {
  const t = tempDir('weft-deliveries-cli-');
  let requests = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      requests++;
      res.writeHead(401, { 'content-type': 'application/json' });
      // Echoes what it was asked, as many servers do.
      res.end(JSON.stringify({ error: `unauthorized for ${req.url}` }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const secrets = ['Hunter2pass', 'topicSecret42', 'qTok3nSecret'];
  const config = join(t.dir, 'config.toml');
  writeFileSync(
    config,
    `data_dir = "${join(t.dir, 'data')}"
[computer]
name = "deliverybox"
[api]
port = 0
[webhook]
url = "http://me:Hunter2pass@127.0.0.1:${port}/topicSecret42?auth=qTok3nSecret"
format = "json"
`,
  );
  const env = { HOME: t.dir, WEFT_CONFIG: config };
  const d = await startDaemonProcess(env);
  try {
    const api = new WeftClient({ url: d.url, token: readToken(join(t.dir, 'data')) as string });
    for (const worker of ['one', 'two']) {
      await api.emit({
        event: 'system.worker.crashed',
        level: 2,
        payload: { worker, error: 'down', restarts: 1 },
      });
    }
    await eventually(async () => requests >= 2, 30_000, 'two refused tries');
    let failed = { items: [] as Array<{ channel: string; lastError: string }> };
    await eventually(
      async () => {
        const r = weft(['--json', 'deliveries', 'list', '--status', 'failed'], env);
        failed = JSON.parse(r.stdout) as typeof failed;
        return failed.items.length >= 2;
      },
      30_000,
      'two failed rows listed',
    );
    assert.ok(failed.items.every((i) => i.channel === 'webhook'));
    assert.match(failed.items[0]?.lastError ?? '', /^webhook refused: 401 unauthorized for <token>/);
    const text = weft(['deliveries', 'list', '--status', 'failed'], env);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /webhook\s+failed/);
    assert.match(text.stdout, /webhook: 0 sent, 0 waiting, 2 failed/);
    const shown = [
      JSON.stringify(failed),
      text.stdout,
      weft(['status'], env).stdout,
      weft(['config', 'show'], env).stdout,
      JSON.stringify(await api.health()),
      readFileSync(join(t.dir, 'data', 'logs', 'weft.log'), 'utf8'),
      d.output(),
    ];
    for (const out of shown)
      for (const s of secrets) assert.ok(!out.includes(s), `${s} shown in: ${out.slice(0, 2000)}`);
  } finally {
    d.proc.kill('SIGTERM');
    await d.exited;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    t.cleanup();
  }
});

test('config: should refuse a Discord webhook name that Discord refuses every message under', () => {
  const t = tempDir('weft-discord-name-');
  try {
    const env = {
      HOME: t.dir,
      WEFT_DATA_DIR: join(t.dir, 'data'),
      WEFT_DISCORD_WEBHOOK_URL: 'https://discord.com/api/webhooks/1/hookTok123',
      WEFT_DISCORD_USERNAME: 'Discord Alerts',
    };
    const r = weft(['config', 'show'], env);
    assert.equal(r.code, 2, r.stdout);
    assert.match(
      r.stderr,
      /config key discord\.username \(WEFT_DISCORD_USERNAME\): "Discord Alerts" is not allowed; expected a name without 'discord' or 'clyde'/,
    );
    assert.ok(!`${r.stdout}${r.stderr}`.includes('hookTok123'), 'the webhook token is not shown');
    assert.equal(weft(['config', 'show'], { ...env, WEFT_DISCORD_USERNAME: 'Weft' }).code, 0);
  } finally {
    t.cleanup();
  }
});
