import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startDaemonProcess, weft } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { alerting, writeCartridge } from './fixtures.js';

/** A cartridge package directory outside the data dir, as a user would have it. */
function packageDir(root: string, name: string, source: string, emits = ['domains.alert'], dependencies: string[] = []): string {
  const dir = join(root, 'src', name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'manifest.json'),
    JSON.stringify({ name, version: '1.0.0', author: 'test', description: name, entryPoint: 'process', dependencies, consumes: ['*'], emits }),
  );
  writeFileSync(join(dir, 'cartridge.js'), source);
  return dir;
}

async function http(url: string, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

describe('domains in a daemon started as a newcomer would', () => {
  const t = tempDir('weft-domains-daemon-');
  const env = { HOME: t.dir, WEFT_DATA_DIR: join(t.dir, 'data'), WEFT_API_PORT: '0', WEFT_TOKEN: '', WEFT_URL: '' };
  const stops: Array<() => Promise<void>> = [];
  after(async () => {
    for (const s of stops) await s();
    t.cleanup();
  });

  it('init, domains, members and their tokens, installs through the gate, and refusals', async () => {
    const init = weft(['init'], env);
    assert.equal(init.code, 0, init.stderr);
    assert.match(init.stdout, /company\/domains\/<domain>/);
    for (const d of ['company/domains', 'personal', 'helpdesk']) assert.ok(existsSync(join(env.WEFT_DATA_DIR, d, 'README.md')), d);
    for (const d of ['marketing', 'sales']) {
      const r = weft(['domains', 'create', d], env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /no daemon runs here: the next one starts with it/);
    }
    assert.equal(weft(['domains', 'create', 'sales'], env).code, 1, 'a domain is created once');

    const daemon = await startDaemonProcess(env);
    stops.push(async () => {
      daemon.proc.kill('SIGTERM');
      await daemon.exited;
    });
    const add = (args: string[]) => {
      const r = weft(['members', ...args], env);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout;
    };
    add(['add', 'ada', '--role', 'marketing:admin']);
    add(['add', 'bob', '--role', 'sales:member']);

    // A domain created while the daemon runs is there at once: the install the create's own
    // output suggests finds it (it answered "no domain 'support'" until a reload).
    const created = weft(['domains', 'create', 'support'], env);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /the running daemon has it now/);
    const supportInstall = weft(['--json', 'domains', 'install', 'support', packageDir(t.dir, 'helper', alerting('support helper'))], env);
    assert.equal(supportInstall.code, 0, supportInstall.stderr);
    assert.equal((JSON.parse(supportInstall.stdout) as { state: string }).state, 'installed');
    const tokenOf = (m: string) => (JSON.parse(weft(['--json', 'members', 'token', m], env).stdout) as { token: string }).token;
    const ada = tokenOf('ada');
    const bob = tokenOf('bob');

    // An admin's install at the default level (L1) is the approval itself.
    const pkg = packageDir(t.dir, 'digest', alerting('marketing digest'));
    const asAda = { ...env, WEFT_TOKEN: ada };
    const installed = weft(['--json', 'domains', 'install', 'marketing', pkg], asAda);
    assert.equal(installed.code, 0, installed.stderr);
    assert.equal((JSON.parse(installed.stdout) as { state: string }).state, 'installed');

    // A member's submission waits for an admin; the member cannot approve it, the node can.
    const asBob = { ...env, WEFT_TOKEN: bob };
    const submitted = weft(['--json', 'domains', 'install', 'sales', packageDir(t.dir, 'lead', alerting('sales lead'))], asBob);
    assert.equal(submitted.code, 0, submitted.stderr);
    assert.equal((JSON.parse(submitted.stdout) as { state: string }).state, 'submitted');
    const token = readFileSync(join(env.WEFT_DATA_DIR, 'api-token'), 'utf8').trim();
    let pending: Array<{ id: number; eventType: string }> = [];
    for (let i = 0; i < 200 && pending.length === 0; i++) {
      pending = ((await http(daemon.url, bob, 'GET', '/api/notifications?domain=sales')).json.items as typeof pending).filter((n) => n.eventType === 'domains.cartridge.submitted');
      if (pending.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
    const id = pending[0]?.id as number;
    assert.ok(id, 'bob sees the submission in his domain');
    const refused = await http(daemon.url, bob, 'POST', `/api/notifications/${id}/resolve`, { agentId: 'bob', approve: true });
    assert.equal(refused.status, 403, 'a member does not approve submissions');
    const approved = await http(daemon.url, token, 'POST', `/api/notifications/${id}/resolve`, { agentId: 'owner', approve: true });
    assert.equal(approved.status, 200, JSON.stringify(approved.json));

    // A member token is refused on another domain's routes, served on its own.
    assert.equal((await http(daemon.url, bob, 'GET', '/api/domains/marketing')).status, 403);
    assert.equal((await http(daemon.url, bob, 'GET', '/api/notifications?domain=marketing')).status, 403);
    assert.equal((await http(daemon.url, bob, 'POST', '/api/domains/marketing/cartridges', { manifest: {}, source: 'x' })).status, 403);
    assert.equal((await http(daemon.url, bob, 'DELETE', '/api/domains/marketing/cartridges/digest')).status, 403);
    assert.equal((await http(daemon.url, bob, 'GET', '/api/events')).status, 403);
    assert.equal((await http(daemon.url, bob, 'GET', '/api/notifications?domain=personal:bob')).status, 200, "a member reads their own pipeline's notifications");
    assert.equal((await http(daemon.url, bob, 'GET', '/api/notifications?domain=personal:ada')).status, 403, "and nobody else's");
    assert.equal((await http(daemon.url, token, 'PUT', '/api/members/bob/roles/system', { role: 'member' })).status, 400, "the node's own domains are no one's role");
    for (let i = 0; i < 200; i++) {
      const sales = await http(daemon.url, bob, 'GET', '/api/domains/sales');
      if ((sales.json.cartridges as unknown[] | undefined)?.length === 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const sales = await http(daemon.url, bob, 'GET', '/api/domains/sales');
    assert.equal(sales.status, 200);
    assert.deepEqual(sales.json.levels, [['lead']]);

    // Events of a domain reach its pipeline; its admin reads the outcome.
    assert.equal(weft(['emit', 'domain.software-development.planning.todo.created', '--domain', 'marketing', '--payload', '{"slug":"m1","title":"launch"}'], env).code, 0);
    let alerts: Array<{ payload: { title: string } }> = [];
    for (let i = 0; i < 200 && alerts.length === 0; i++) {
      alerts = ((await http(daemon.url, ada, 'GET', '/api/notifications?domain=marketing&type=domains.alert')).json.items ?? []) as typeof alerts;
      if (alerts.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(alerts[0]?.payload.title, 'marketing digest');

    const show = weft(['pipeline', 'show', '--domain', 'marketing'], env);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /level 0:\n\s+digest 1\.0\.0/);
    const valid = weft(['pipeline', 'validate'], env);
    assert.equal(valid.code, 0, valid.stdout + valid.stderr);
    assert.match(valid.stdout, /valid: 3 domain\(s\)/);

    // A live change that does not validate is refused and named; validate says so too.
    writeCartridge(join(env.WEFT_DATA_DIR, 'company', 'domains', 'sales'), 'orphan', alerting('x'), { dependencies: ['missing'], consumes: ['*'] });
    const bad = weft(['pipeline', 'validate'], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /cartridge 'orphan' depends on 'missing'/);
    const reload = weft(['domains', 'reload'], env);
    assert.notEqual(reload.code, 0);
    assert.match(reload.stderr, /orphan/);

    daemon.proc.kill('SIGTERM');
    assert.equal(await daemon.exited, 0);
    stops.pop();
  });

  it('refuses to start on a dependency cycle in a domain, naming the cartridges', async () => {
    const sales = join(env.WEFT_DATA_DIR, 'company', 'domains', 'sales');
    writeCartridge(sales, 'orphan', alerting('x'), { dependencies: ['lead'], consumes: ['*'] });
    writeCartridge(sales, 'lead', alerting('y'), { dependencies: ['orphan'], consumes: ['*'] });
    await assert.rejects(startDaemonProcess(env), (err: Error) => {
      assert.match(err.message, /exited with [1-9]/);
      assert.match(err.message, /domain 'sales': dependency cycle (lead -> orphan -> lead|orphan -> lead -> orphan)/);
      return true;
    });
    // With no daemon to ask, validate checks the folders itself and says the same.
    const v = weft(['pipeline', 'validate'], env);
    assert.equal(v.code, 1);
    assert.match(v.stdout, /dependency cycle/);
    assert.match(v.stderr, /no daemon answers: validated here/);
  });
});

describe('a domain cartridge whose code does not load', () => {
  const t = tempDir('weft-domains-noload-');
  const env = { HOME: t.dir, WEFT_DATA_DIR: join(t.dir, 'data'), WEFT_API_PORT: '0', WEFT_TOKEN: '', WEFT_URL: '' };
  const stops: Array<() => Promise<void>> = [];
  after(async () => {
    for (const s of stops) await s();
    t.cleanup();
  });

  it('should be invalid for weft pipeline validate, with or without a daemon, in the words the daemon refuses it with', async () => {
    assert.equal(weft(['init'], env).code, 0);
    assert.equal(weft(['domains', 'create', 'ops'], env).code, 0);
    const ops = join(env.WEFT_DATA_DIR, 'company', 'domains', 'ops');
    writeCartridge(ops, 'fine', alerting('fine'), { consumes: ['*'] });
    const daemon = await startDaemonProcess(env);
    stops.push(async () => {
      daemon.proc.kill('SIGTERM');
      await daemon.exited;
    });
    // Every manifest check passes; only loading the code shows it.
    writeCartridge(ops, 'boom', 'throw new Error("top-level boom"); function process(e){return e;}', { consumes: ['*'] });
    const live = weft(['pipeline', 'validate'], env);
    assert.equal(live.code, 1, live.stdout + live.stderr);
    assert.match(live.stdout, /invalid: domain 'ops': cartridge 'boom' does not load: .*top-level boom/);
    assert.doesNotMatch(live.stderr, /no daemon answers/, 'the daemon answered');
    const reload = weft(['domains', 'reload'], env);
    assert.notEqual(reload.code, 0, 'the daemon refuses it too');
    daemon.proc.kill('SIGTERM');
    await daemon.exited;
    stops.pop();

    let refusal = '';
    await assert.rejects(startDaemonProcess(env), (err: Error) => {
      refusal = /domain 'ops': cartridge 'boom' does not load: [^\n]*/.exec(err.message)?.[0] ?? '';
      return refusal !== '';
    });
    const offline = weft(['pipeline', 'validate'], env);
    assert.equal(offline.code, 1, offline.stdout);
    assert.match(offline.stderr, /no daemon answers: validated here/);
    assert.ok(offline.stdout.includes(refusal), `the daemon's line ${JSON.stringify(refusal)} in ${JSON.stringify(offline.stdout)}`);
  });
});

describe("a domain named like one of the node's own event domains", () => {
  const t = tempDir('weft-domains-reserved-');
  const env = { HOME: t.dir, WEFT_DATA_DIR: join(t.dir, 'data'), WEFT_API_PORT: '0', WEFT_TOKEN: '', WEFT_URL: '' };
  after(() => t.cleanup());

  it('is refused by create before anything is written, and a folder made by hand is named in the refusal', async () => {
    assert.equal(weft(['init'], env).code, 0);
    for (const name of ['signal', 'system', 'domains']) {
      const r = weft(['domains', 'create', name], env);
      assert.equal(r.code, 2, `${name}: a usage error (${r.stderr})`);
      assert.match(r.stderr, new RegExp(`'${name}' is one of the node's own event domains`));
      assert.ok(!existsSync(join(env.WEFT_DATA_DIR, 'company', 'domains', name)), `${name}: nothing written`);
    }
    // One made by hand (or by an older weft): the start says which folder to remove.
    const folder = join(env.WEFT_DATA_DIR, 'company', 'domains', 'signal');
    mkdirSync(join(folder, 'cartridges'), { recursive: true });
    writeFileSync(join(folder, 'domain.toml'), '');
    await assert.rejects(startDaemonProcess(env), (err: Error) => {
      assert.match(err.message, /exited with 1/);
      assert.ok(err.message.includes(`remove the folder ${folder}`), err.message);
      return true;
    });
    const v = weft(['pipeline', 'validate'], env);
    assert.equal(v.code, 1);
    assert.ok(v.stdout.includes(`remove the folder ${folder}`), v.stdout);
  });
});

describe('a suspended domain cartridge is visible', () => {
  const t = tempDir('weft-domains-suspended-');
  const env = { HOME: t.dir, WEFT_DATA_DIR: join(t.dir, 'data'), WEFT_API_PORT: '0', WEFT_TOKEN: '', WEFT_URL: '' };
  const stops: Array<() => Promise<void>> = [];
  after(async () => {
    for (const s of stops) await s();
    t.cleanup();
  });

  it('in pipeline show, domains list, weft status and its own notification, with the dependents it stops, until a reload', async () => {
    assert.equal(weft(['init'], env).code, 0);
    const ops = join(env.WEFT_DATA_DIR, 'company', 'domains', 'ops');
    mkdirSync(ops, { recursive: true });
    writeFileSync(join(ops, 'domain.toml'), '[subscribe]\ndomains = []\nevents = ["domain.software-development.*"]\n');
    writeCartridge(ops, 'thrower', `function process(e) { throw new Error('kaput ' + e.payload.slug); }`, { outputs: ['x'] });
    writeCartridge(ops, 'after', alerting('after'), { dependencies: ['thrower'] });
    const daemon = await startDaemonProcess(env);
    stops.push(async () => {
      daemon.proc.kill('SIGTERM');
      await daemon.exited;
    });
    assert.equal(weft(['status'], env).code, 0, 'nothing wrong yet');
    for (let i = 1; i <= 5; i++) assert.equal(weft(['emit', 'domain.software-development.planning.todo.created', '--payload', JSON.stringify({ slug: `t${i}`, title: `todo ${i}` })], env).code, 0);
    const suspension = () =>
      (JSON.parse(weft(['--json', 'notifications', 'list', '--type', 'system.cartridge.failed', '--limit', '50'], env).stdout) as { items: Array<{ description: string; payload: Record<string, unknown> }> }).items.find((n) => n.payload.suspended === true);
    for (let i = 0; i < 200 && !suspension(); i++) await new Promise((r) => setTimeout(r, 50));
    const note = suspension();
    assert.ok(note, 'the suspension is a notification');
    assert.match(note.description, /domain ops: cartridge 'thrower' suspended after 5 failures in a row \(last: .*kaput t5\); it and what depends on it \(after\) skip every event until weft domains reload/);
    // Each failure left a dead letter the user can read: the stage, the error, the event.
    const dead = weft(['deadletters', 'list', '--cartridge', 'domain:ops/thrower'], env);
    assert.equal(dead.code, 0, dead.stderr);
    assert.match(dead.stdout, /domain:ops\/thrower .*domain\.software-development\.planning\.todo\.created .*kaput t5/);
    assert.match(dead.stdout, /^5 kept \(at most 10000\)$/m);
    const deadJson = JSON.parse(weft(['--json', 'deadletters', 'list', '--limit', '1'], env).stdout) as { items: Array<{ id: number }>; nextCursor: number };
    const shown = JSON.parse(weft(['--json', 'deadletters', 'show', String(deadJson.items[0]?.id)], env).stdout) as { envelope: { payload: { slug: string } } };
    assert.equal(shown.envelope.payload.slug, 't5');
    // One more event while suspended: skipped by both, and counted.
    assert.equal(weft(['emit', 'domain.software-development.planning.todo.created', '--payload', '{"slug":"t6","title":"todo 6"}'], env).code, 0);
    let lane: { suspended: Array<{ cartridge: string; blocks: string[]; skipped: number; reason: string }> } | undefined;
    for (let i = 0; i < 200; i++) {
      lane = (JSON.parse(weft(['--json', 'pipeline', 'show', '--domain', 'ops'], env).stdout) as { lane: typeof lane }).lane;
      if ((lane?.suspended[0]?.skipped ?? 0) >= 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(lane?.suspended.length, 1);
    assert.deepEqual({ cartridge: lane?.suspended[0]?.cartridge, blocks: lane?.suspended[0]?.blocks, skipped: lane?.suspended[0]?.skipped }, { cartridge: 'thrower', blocks: ['after'], skipped: 1 });
    const show = weft(['pipeline', 'show', '--domain', 'ops'], env);
    assert.match(show.stdout, /thrower 1\.0\.0 .*SUSPENDED since .*kaput t5.*1 event\(s\) skipped; weft domains reload brings it back/);
    assert.match(show.stdout, /after 1\.0\.0 ← thrower .*NOT RUNNING: 'thrower' it depends on is suspended/);
    assert.match(weft(['domains', 'list'], env).stdout, /ops .*running, suspended: thrower/);
    const status = weft(['status'], env);
    assert.equal(status.code, 3, 'a problem');
    assert.match(status.stdout, /domain ops: cartridge 'thrower' suspended since .* after repeated failures \(.*kaput t5\); 'after' depends on it and does not run either; 1 event\(s\) skipped; weft domains reload brings it back/);

    assert.equal(weft(['domains', 'reload'], env).code, 0);
    assert.equal(weft(['status'], env).code, 0, 'a reload brings it back: no problem left');
    assert.doesNotMatch(weft(['pipeline', 'show', '--domain', 'ops'], env).stdout, /SUSPENDED|NOT RUNNING/);
  });
});

describe('a personal pipeline left out', () => {
  const t = tempDir('weft-domains-left-out-');
  const env = { HOME: t.dir, WEFT_DATA_DIR: join(t.dir, 'data'), WEFT_API_PORT: '0', WEFT_TOKEN: '', WEFT_URL: '' };
  const stops: Array<() => Promise<void>> = [];
  after(async () => {
    for (const s of stops) await s();
    t.cleanup();
  });

  it('is listed with its reason by reload (exit 1), domains list and personal show; fixed, it runs', async () => {
    assert.equal(weft(['init'], env).code, 0);
    assert.equal(weft(['domains', 'create', 'engineering'], env).code, 0);
    const daemon = await startDaemonProcess(env);
    stops.push(async () => {
      daemon.proc.kill('SIGTERM');
      await daemon.exited;
    });
    assert.equal(weft(['members', 'add', 'ada', '--role', 'engineering:member'], env).code, 0);
    const me = join(env.WEFT_DATA_DIR, 'personal', 'ada');
    mkdirSync(me, { recursive: true });
    writeFileSync(join(me, 'subscriptions.toml'), 'domians = ["engineering"]\n');
    writeCartridge(me, 'mine', alerting('mine'));

    const reload = weft(['domains', 'reload'], env);
    assert.equal(reload.code, 1, 'something in the folders does not run');
    assert.match(reload.stdout, /reloaded: 1 domain\(s\), 0 personal pipeline\(s\)\n1 pipeline\(s\) left out .*\n {2}personal:ada: .*domians/);
    const json = JSON.parse(weft(['--json', 'domains', 'reload'], env).stdout) as { refused: Array<{ scope: string; message: string }> };
    assert.equal(json.refused[0]?.scope, 'personal:ada');
    assert.match(weft(['domains', 'list'], env).stdout, /left out[^\n]*\n {2}personal:ada: .*domians/);
    const show = weft(['personal', 'show', 'ada'], env);
    assert.notEqual(show.code, 0);
    assert.match(show.stderr, /the personal pipeline of 'ada' is left out: .*domians/);
    assert.doesNotMatch(show.stderr, /needs cartridges/, 'she has them');

    writeFileSync(join(me, 'subscriptions.toml'), 'domains = ["engineering"]\n');
    const fixed = weft(['domains', 'reload'], env);
    assert.equal(fixed.code, 0, fixed.stdout);
    assert.match(fixed.stdout, /reloaded: 1 domain\(s\), 1 personal pipeline\(s\)$/m);
    assert.equal(weft(['personal', 'show', 'ada'], env).code, 0);
  });
});

describe('expected refusals are answers, not internal errors', () => {
  const t = tempDir('weft-domains-refusals-');
  const env = { HOME: t.dir, WEFT_DATA_DIR: join(t.dir, 'data'), WEFT_API_PORT: '0', WEFT_TOKEN: '', WEFT_URL: '' };
  const stops: Array<() => Promise<void>> = [];
  after(async () => {
    for (const s of stops) await s();
    t.cleanup();
  });

  it('a guardian refusal is 422 and a broken domain.toml on reload 409: no reference to the log, no stack trace at error level', async () => {
    assert.equal(weft(['init'], env).code, 0);
    for (const d of ['ops', 'judged']) assert.equal(weft(['domains', 'create', d], env).code, 0);
    const judged = join(env.WEFT_DATA_DIR, 'company', 'domains', 'judged', 'domain.toml');
    writeFileSync(judged, '[guardian]\nrules = false\ncommand = "/nonexistent/weft-judge --strict"\n');
    const daemon = await startDaemonProcess(env);
    stops.push(async () => {
      daemon.proc.kill('SIGTERM');
      await daemon.exited;
    });
    const token = readFileSync(join(env.WEFT_DATA_DIR, 'api-token'), 'utf8').trim();
    const evil = packageDir(t.dir, 'evil', 'function process(e) { return eval("e"); }');
    const byRules = await http(daemon.url, token, 'POST', '/api/domains/ops/cartridges', { path: evil });
    assert.equal(byRules.status, 422, JSON.stringify(byRules.json));
    const err = byRules.json.error as { code: string; message: string };
    assert.equal(err.code, 'WEFT_CARTRIDGE_REFUSED');
    assert.match(err.message, /guardian \(rules\) refused 'evil': uses eval\(/);
    assert.doesNotMatch(err.message, /ref .* in the node's log/);
    const cli = weft(['domains', 'install', 'ops', evil], env);
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, /^weft: domain 'ops' guardian \(rules\) refused 'evil'/);
    // A guardian command that cannot start refuses too: the domain's own setting, not a node failure.
    const unjudged = await http(daemon.url, token, 'POST', '/api/domains/judged/cartridges', { path: packageDir(t.dir, 'fine', alerting('fine')) });
    assert.equal(unjudged.status, 422, JSON.stringify(unjudged.json));
    assert.match((unjudged.json.error as { message: string }).message, /guardian \(command\) refused 'fine': guardian failed: .*weft-judge/);

    writeFileSync(join(env.WEFT_DATA_DIR, 'company', 'domains', 'ops', 'domain.toml'), 'timeout_ms = "soon"\n[subscribe\n');
    const reload = await http(daemon.url, token, 'POST', '/api/pipeline/reload');
    assert.equal(reload.status, 409, JSON.stringify(reload.json));
    const bad = reload.json.error as { code: string; message: string };
    assert.equal(bad.code, 'WEFT_CONFIG');
    assert.match(bad.message, /domain\.toml is not valid TOML/);
    assert.doesNotMatch(bad.message, /ref .* in the node's log/);
    assert.equal(weft(['domains', 'reload'], env).code, 2, 'a file to fix: the config exit code');

    const log = readFileSync(join(env.WEFT_DATA_DIR, 'logs', 'weft.log'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { level: number; msg: string; stack?: string });
    const errors = log.filter((l) => l.level >= 50);
    assert.deepEqual(errors.map((l) => l.msg), [], 'nothing at error level, no stack trace');
  });
});
