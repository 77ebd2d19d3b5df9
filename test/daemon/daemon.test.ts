import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { WeftClient } from '../../src/client/index.js';
import { readToken } from '../../src/config/index.js';
import { freePort } from '../helpers/redis.js';
import { startDaemonProcess, weft } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const TODO = 'domain.software-development.planning.todo';

test('the daemon, driven only through the CLI and the HTTP API', async () => {
  const t = tempDir('weft-daemon-');
  const env = { HOME: t.dir, WEFT_DATA_DIR: join(t.dir, 'data'), WEFT_API_PORT: '0', WEFT_COMPUTER_NAME: 'testbox' };
  try {
    const d = await startDaemonProcess(env);
    const token = readToken(env.WEFT_DATA_DIR) as string;
    const api = new WeftClient({ url: d.url, token });

    // a WebSocket subscriber sees changes as they commit
    const sub = api.subscribe({ eventType: `${TODO}.dor_assessed` });
    await sub.ready;
    const pushed: string[] = [];
    const reading = (async () => {
      for await (const p of sub) {
        pushed.push(`${p.change.kind}:${p.notification.agentStatus}`);
        if (pushed.length === 3) break;
      }
    })();

    // emit → notification visible in `weft notifications list --json`
    const e = weft(['emit', `${TODO}.dor_assessed`, '--payload', JSON.stringify({ slug: 'cli', score: 7, verdict: 'needs_work' })], env);
    assert.equal(e.code, 0, e.stderr);
    let list: { items: Array<{ id: number; eventType: string; humanStatus: string }> } = { items: [] };
    for (let i = 0; i < 200; i++) {
      const l = weft(['notifications', 'list', '--json', '--type', `${TODO}.dor_assessed`], env);
      assert.equal(l.code, 0, l.stderr);
      list = JSON.parse(l.stdout);
      if (list.items.length > 0) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    const n = list.items[0];
    assert.ok(n, 'notification listed');
    assert.equal(n.humanStatus, 'unseen');

    // The same assessment again is stored and dropped as a duplicate, and the CLI says so. Only
    // an emit the pipeline applies at once knows (one queued behind other events does not), so
    // a few tries on this idle daemon; with --json stdout is the API's answer, envelope and outcome.
    const same = JSON.stringify({ slug: 'cli', score: 7, verdict: 'needs_work' });
    let dup = weft(['emit', `${TODO}.dor_assessed`, '--payload', same], env);
    for (let i = 0; i < 20 && !dup.stdout.includes('duplicate'); i++) dup = weft(['emit', `${TODO}.dor_assessed`, '--payload', same], env);
    assert.equal(dup.code, 0, dup.stderr);
    assert.match(dup.stdout, /^emitted \S+ \S+, but it was dropped as a duplicate: an event with idempotency key '[^']*cli[^']*' was processed before/);
    let dupJson = weft(['emit', `${TODO}.dor_assessed`, '--payload', same, '--json'], env);
    for (let i = 0; i < 20 && !dupJson.stderr.includes('duplicate'); i++) dupJson = weft(['emit', `${TODO}.dor_assessed`, '--payload', same, '--json'], env);
    assert.equal(dupJson.code, 0, dupJson.stderr);
    assert.match(dupJson.stderr, /^weft: note: it was dropped as a duplicate/);
    const answer = JSON.parse(dupJson.stdout) as { envelope: { id: string; event: string }; outcome: { state: string; by?: string } };
    assert.equal(answer.envelope.event, `${TODO}.dor_assessed`);
    assert.equal(answer.outcome.state, 'dropped');
    assert.equal(answer.outcome.by, 'dedup');

    // seen / claim / resolve through the CLI
    assert.equal(weft(['notifications', 'seen', String(n.id)], env).code, 0);
    assert.equal(weft(['notifications', 'claim', String(n.id), '--agent', 'agent-7'], env).code, 0);
    const r = weft(['notifications', 'resolve', String(n.id), '--agent', 'agent-7', '--resolution', '{"outcome":"refined"}', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).agentStatus, 'resolved');
    await reading;
    assert.deepEqual(pushed, ['created:none', 'seen:none', 'claimed:claimed']);

    // 409 on an illegal transition, with the JSON error shape; exit 1 from the CLI
    const again = await fetch(`${d.url}/api/notifications/${n.id}/claim`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ agentId: 'x' }),
    });
    assert.equal(again.status, 409);
    assert.equal(((await again.json()) as { error: { code: string } }).error.code, 'WEFT_ILLEGAL_TRANSITION');
    const cliAgain = weft(['notifications', 'claim', String(n.id), '--agent', 'x'], env);
    assert.equal(cliAgain.code, 1);
    assert.match(cliAgain.stderr, /^weft: notification \d+ is resolved: cannot claim/);

    // 401 without or with a wrong token, on every kind of route
    for (const path of ['/api/notifications', '/api/health', '/metrics', '/openapi.json']) {
      assert.equal((await fetch(d.url + path)).status, 401, path);
      assert.equal((await fetch(d.url + path, { headers: { authorization: 'Bearer nope' } })).status, 401, path);
    }

    // metrics in Prometheus text format
    const m = await fetch(`${d.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(m.status, 200);
    const text = await m.text();
    assert.match(text, /^# TYPE weft_pipeline_batches_total counter$/m);
    assert.match(text, /^weft_notifications\{human_status="seen",agent_status="resolved"\} 1$/m);

    // a second daemon on the same dir is refused
    const second = weft(['daemon'], env);
    assert.equal(second.code, 1);
    assert.match(second.stderr, /another weft daemon \(pid \d+\) is already running/);

    // SIGTERM drains and exits 0
    const before = (await api.notifications.list({ limit: 100 })).items.length;
    d.proc.kill('SIGTERM');
    assert.equal(await d.exited, 0, d.output());
    const down = weft(['notifications', 'list'], env);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /^weft: no weft daemon runs on .*start one with 'weft daemon'/);
    assert.equal(down.stderr.trim().split('\n').length, 1, 'one clear line, not a stack trace');

    // a restart keeps every notification (plus its own daemon.restarted)
    const d2 = await startDaemonProcess(env);
    const api2 = new WeftClient({ url: d2.url, token });
    let after = 0;
    for (let i = 0; i < 100 && after <= before; i++) {
      after = (await api2.notifications.list({ limit: 100 })).items.length;
      await new Promise((res) => setTimeout(res, 20));
    }
    assert.equal(after, before + 1);
    const kept = await api2.notifications.get(n.id);
    assert.equal(kept.agentStatus, 'resolved');
    d2.proc.kill('SIGTERM');
    assert.equal(await d2.exited, 0);
  } finally {
    t.cleanup();
  }
});

test('bad config fails fast with one clear line', async () => {
  const t = tempDir('weft-badcfg-');
  try {
    const base = { HOME: t.dir, WEFT_DATA_DIR: join(t.dir, 'data'), WEFT_API_PORT: '0' };
    const cfgFile = join(t.dir, 'config.toml');
    writeFileSync(cfgFile, '[api]\nprot = 1\n');
    let r = weft(['--config', cfgFile, 'config', 'show'], base);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^weft: config file .* unknown key api\.prot \(did you mean api\.port\?\)$/m);
    writeFileSync(cfgFile, '[api]\nport = "high"\n');
    r = weft(['--config', cfgFile, 'daemon'], base);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^weft: config key api\.port: "high" is not allowed; expected an integer 0\.\.65535/);
    r = weft(['daemon'], { ...base, WEFT_API_PORT: 'abc' });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /config key api\.port \(WEFT_API_PORT\): "abc" is not allowed/);
    r = weft(['daemon'], { ...base, WEFT_AUTONOMY_CARTRIDGE_INSTALL: 'L9' });
    assert.match(r.stderr, /expected one of L1, L2, L3/);
    const port = await freePort();
    r = weft(['daemon'], { ...base, WEFT_REDIS_URL: `redis://127.0.0.1:${port}` });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^weft: cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  } finally {
    t.cleanup();
  }
});

test('the default trust rate: a local source sending 30,000 events at once gets its burst through and the excess quarantined, with one notice', async () => {
  const t = tempDir('weft-rate-');
  const env = { HOME: t.dir, WEFT_DATA_DIR: join(t.dir, 'data'), WEFT_API_PORT: '0', WEFT_COMPUTER_NAME: 'ratebox' };
  const d = await startDaemonProcess(env);
  try {
    const api = new WeftClient({ url: d.url, token: readToken(env.WEFT_DATA_DIR) as string });
    for (let i = 0; i < 30_000; i += 5000) {
      await api.emitMany(Array.from({ length: 5000 }, (_, k) => ({ event: 'mesh.test.ping', source: 'flooder', payload: { n: i + k } })));
    }
    let q = { items: [] as unknown[], totals: { quarantine: 0 } };
    for (let i = 0; i < 400 && q.totals.quarantine === 0; i++) {
      q = await api.request('GET', '/api/quarantine?limit=1');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(q.totals.quarantine > 0, 'the excess over the default burst (10,000) is quarantined');
    const passed = (await api.notifications.list({ type: 'mesh.test.ping', limit: 1 })).items.length;
    assert.ok(passed > 0, 'the burst got through');
    const throttled = await api.notifications.list({ type: 'system.trust.throttled' });
    assert.ok(throttled.items.length >= 1 && throttled.items.length <= 3, `${throttled.items.length} throttle notices`);
  } finally {
    d.proc.kill('SIGTERM');
    await d.exited;
    t.cleanup();
  }
});

test("a flood from the node's own source (emits without one): the throttle notice is a notification, not quarantined with the flood, and weft status names the throttled source until it stops", async () => {
  const t = tempDir('weft-rate-own-');
  // A small allowance, so the throttling lasts long enough to look at: 1/s, bursts of 20.
  const env = { HOME: t.dir, WEFT_DATA_DIR: join(t.dir, 'data'), WEFT_API_PORT: '0', WEFT_COMPUTER_NAME: 'ratebox', WEFT_TRUST_RATE_PER_SECOND: '1', WEFT_TRUST_RATE_BURST: '20' };
  const d = await startDaemonProcess(env);
  try {
    const api = new WeftClient({ url: d.url, token: readToken(env.WEFT_DATA_DIR) as string });
    await api.emitMany(Array.from({ length: 200 }, (_, n) => ({ event: 'mesh.test.ping', payload: { n } })));
    const problems = async () => (await api.request<{ problems: string[] }>('GET', '/api/health')).problems;
    let p: string[] = [];
    for (let i = 0; i < 200 && !p.some((x) => x.startsWith('trust: ')); i++) {
      p = await problems();
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.ok(
      p.some((x) => /^trust: source weft@ratebox sends more than 1\/s: \d+ events quarantined in \d+ s \('weft quarantine list' shows them\)$/.test(x)),
      p.join('\n'),
    );
    const r = weft(['status'], env);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    const notices = (await api.notifications.list({ type: 'system.trust.throttled' })).items;
    assert.ok(notices.some((n) => n.payload.subject === 'local:weft@ratebox'), JSON.stringify(notices.map((n) => n.payload)));
    const held = await api.request<{ items: Array<{ envelope: { event: string } }> }>('GET', '/api/quarantine?limit=1000');
    assert.equal(held.items.filter((q) => q.envelope.event === 'system.trust.throttled').length, 0, 'the notice is not held with the flood');
    // The held flood pages by cursor, and is released in one command (it was one id at a time).
    const page = (cursor?: number) => weft(['--json', 'quarantine', 'list', '--type', 'mesh.test.ping', '--limit', '100', ...(cursor ? ['--cursor', String(cursor)] : [])], env);
    const p1 = JSON.parse(page().stdout) as { items: Array<{ id: number }>; nextCursor: number | null; held: number };
    assert.equal(p1.items.length, 100);
    assert.ok(p1.nextCursor);
    const p2 = JSON.parse(page(p1.nextCursor ?? 0).stdout) as { items: Array<{ id: number }> };
    const ids = new Set([...p1.items, ...p2.items].map((q) => q.id));
    assert.equal(ids.size, p1.items.length + p2.items.length, 'the pages do not overlap');
    const rel = weft(['quarantine', 'release', '--type', 'mesh.test.ping'], env);
    assert.equal(rel.code, 0, rel.stderr);
    const released = Number(/^released (\d+) quarantined events$/m.exec(rel.stdout)?.[1]);
    assert.equal(released, p1.items.length + p2.items.length, rel.stdout);
    const pings = (await api.notifications.list({ type: 'mesh.test.ping', limit: 1000 })).items.length;
    assert.equal(pings, 200, 'the burst and every released event are notifications');
    assert.equal(weft(['quarantine', 'release'], env).code, 2, 'release without an id or a filter is a usage error');
    // Once the bucket has refilled past half its burst (10 s at 1/s), the source is no longer listed.
    for (let i = 0; i < 120 && (await problems()).some((x) => x.startsWith('trust: ')); i++) await new Promise((r) => setTimeout(r, 250));
    assert.deepEqual((await problems()).filter((x) => x.startsWith('trust: ')), []);
  } finally {
    d.proc.kill('SIGTERM');
    await d.exited;
    t.cleanup();
  }
});
