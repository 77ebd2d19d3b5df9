/**
 * The dashboard in a real browser (Debian's Chromium driven by playwright-core), against two
 * real daemons linked over TLS with the shipped defaults: logging in through the one-time link,
 * an event from the CLI appearing live in the inbox, claim and resolve, approving a cartridge a
 * second daemon published and activating it, a killed peer shown as disconnected, a read-only
 * login that cannot act, and requests with a forged Origin or Host refused; a live arrival that
 * leaves the selection and what is typed alone, a phone-width window, and a daemon restart the
 * open page says it cannot follow. A failing step
 * leaves a screenshot under test-results/. With WEFT_SCREENSHOTS=<dir> it also saves the inbox
 * and mesh pages there (the README's pictures come from such a run).
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { writePackageDir } from '../../src/sovereignty/index.js';
import { chromiumSkip, launchChromium, screenshotSteps } from '../helpers/browser.js';
import { weft } from '../helpers/cli.js';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';
import { freePort } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

const skip = chromiumSkip;

describe('the dashboard in Chromium', { skip }, () => {
  const t = tempDir('weft-web-');
  let home: ClusterNode;
  let pub: ClusterNode;
  let stopAll: () => Promise<void>;
  let browser: Browser;
  let admin: BrowserContext;
  let page: Page;
  /** The dashboard's origin (from the first login link). */
  let base = '';

  const link = (role: 'admin' | 'read') => {
    const r = weft(['--json', 'dashboard', '--role', role], home.env);
    assert.equal(r.code, 0, r.stderr);
    const url = (JSON.parse(r.stdout) as { url: string }).url;
    base = new URL(url).origin;
    return url;
  };
  /** Runs a step; on failure saves what the page showed. */
  const step = screenshotSteps('dashboard');
  const shot = async (p: Page, name: string) => {
    const dir = process.env.WEFT_SCREENSHOTS;
    if (!dir) return;
    mkdirSync(dir, { recursive: true });
    await p.screenshot({ path: join(dir, `dashboard-${name}.png`) });
  };

  before(async () => {
    await writePackageDir(join(t.dir, 'pkg', 'greeter'), {
      manifest: {
        name: 'greeter',
        version: '1.0.0',
        author: 'pub',
        description: 'greets pings',
        entryPoint: 'process',
        dependencies: [],
        consumes: ['mesh.test.ping'],
        emits: [],
      },
      source: '// answers nothing, counts pings\nfunction process(event, ctx) { return event; }',
    });
    // home keeps its API port across a restart (the last test), as a daemon with a configured port does.
    const c = await startCluster(
      t.dir,
      [
        { computer: 'home', cluster: 'team', env: { WEFT_API_PORT: String(await freePort()) } },
        { computer: 'pub', cluster: 'team' },
      ],
      { provider: 'tls' },
    );
    home = c.nodes.home as ClusterNode;
    pub = c.nodes.pub as ClusterNode;
    stopAll = c.stopAll;
    browser = await launchChromium();
    admin = await browser.newContext({ viewport: { width: 1360, height: 820 } });
    page = await admin.newPage();
    await page.goto(link('admin'));
  });

  after(async () => {
    await browser?.close();
    await stopAll?.();
    t.cleanup();
  });

  test('logs in through the one-time link, which then no longer works', async () => {
    await step('login', page, async () => {
      const url = link('admin');
      await page.goto(url);
      assert.equal(new URL(page.url()).pathname, '/', 'the link redirects to the dashboard');
      await page.waitForSelector('#who:has-text("admin")');
      const cookies = await admin.cookies();
      const c = cookies.find((x) => x.name === 'weft_session');
      assert.ok(c?.httpOnly, 'the session cookie is HttpOnly');
      assert.equal(c?.sameSite, 'Strict');
      const html = await page.content();
      const token = home.env.WEFT_DATA_DIR
        ? (await import('../../src/config/index.js')).readToken(home.dataDir)
        : undefined;
      assert.ok(token && !html.includes(token), 'the API token is not in the page');
      const again = await (await browser.newContext()).newPage();
      const res = await again.goto(url);
      assert.equal(res?.status(), 401, 'a used link is refused');
    });
  });

  test('an event emitted by the CLI appears in the inbox without a reload, and is claimed and resolved', async () => {
    await step('inbox', page, async () => {
      await page.goto(`${base}/#/inbox`);
      await page.waitForSelector('#inbox-list');
      await page.evaluate('window.marker = 42');
      await eventually(
        async () => (await page.getAttribute('body', 'data-live')) === 'yes',
        10_000,
        'the live connection',
      );
      // A few ordinary notifications around it, as an inbox has.
      await home.api.emit({
        event: 'domain.software-development.planning.todo.created',
        payload: { slug: 'signup', title: 'Sign-up form' },
      });
      await home.api.emit({
        event: 'system.worker.crashed',
        payload: { worker: 'indexer', error: 'disk full', restarts: 1 },
      });
      const e = weft(['emit', 'mesh.test.ping', '--payload', '{"n":7,"note":"from the CLI"}'], home.env);
      assert.equal(e.code, 0, e.stderr);
      const row = page.locator('#inbox-list tbody tr', { hasText: 'mesh.test.ping' }).first();
      await row.waitFor({ timeout: 5000 });
      assert.equal(await page.evaluate('window.marker'), 42, 'no reload happened');
      await row.click();
      await page.waitForSelector('#detail pre:has-text("from the CLI")');
      await shot(page, 'inbox');
      const id = Number(await page.locator('#inbox-list tbody tr.sel').getAttribute('data-id'));
      await page.click('#btn-claim');
      await page.waitForSelector(`#inbox-list tbody tr.sel[data-id="${id}"]:has-text("claimed")`);
      await page.click('#btn-resolve');
      // Resolved notifications leave the default (open) view.
      await page
        .locator(`#inbox-list tbody tr[data-id="${id}"]`)
        .waitFor({ state: 'detached', timeout: 10_000 });
      const n = await home.api.notifications.get(id);
      assert.equal(n.agentStatus, 'resolved');
      assert.match(n.agentId ?? '', /^dashboard@home$/);
    });
  });

  test('a notification arriving live leaves the selection and what is typed alone; Resolve acts on the selected one; the r key types nothing', async () => {
    await step('live-selection', page, async () => {
      const notificationOf = async (slug: string) => {
        let id = 0;
        await eventually(
          async () => {
            const page = await home.api.notifications.list({
              type: 'domain.software-development.planning.todo.dor_assessed',
              limit: 100,
            });
            id = page.items.find((n) => n.payload.slug === slug)?.id ?? 0;
            return id > 0;
          },
          10_000,
          `the notification of ${slug}`,
        );
        return id;
      };
      await home.api.emit({
        event: 'domain.software-development.planning.todo.dor_assessed',
        payload: { slug: 'live-sel', score: 6, verdict: 'needs_work' },
      });
      const id = await notificationOf('live-sel');
      await page.goto(`${base}/#/inbox`);
      await page.reload();
      await page.locator(`#inbox-list tbody tr[data-id="${id}"]`).click();
      await page.waitForSelector(`#detail[data-id="${id}"] #resolve-form`);
      await page.keyboard.press('r');
      await page.keyboard.type('ready after');
      // Three more arrive above it while the answer is being typed.
      const before = await page.locator('#inbox-list tbody tr').count();
      for (const slug of ['live-a', 'live-b', 'live-c']) {
        await home.api.emit({
          event: 'domain.software-development.planning.todo.dor_assessed',
          payload: { slug, score: 5, verdict: 'needs_work' },
        });
      }
      await eventually(
        async () => (await page.locator('#inbox-list tbody tr').count()) === before + 3,
        10_000,
        'three rows arrive live',
      );
      assert.equal(
        await page.locator('#inbox-list tbody tr.sel').getAttribute('data-id'),
        String(id),
        'the selection stays on the same notification',
      );
      assert.equal(
        await page.locator('#detail').getAttribute('data-id'),
        String(id),
        'so does the detail panel',
      );
      assert.equal(
        await page.locator('#resolve-form [name="outcome"]').inputValue(),
        'ready after',
        'what was typed is kept, without the r',
      );
      assert.equal(
        await page.evaluate('document.activeElement && document.activeElement.name'),
        'outcome',
        'and so is the focus',
      );
      await page.keyboard.type(' review');
      await page.keyboard.press('Enter');
      await eventually(
        async () => (await home.api.notifications.get(id)).agentStatus === 'resolved',
        10_000,
        'the selected one resolved',
      );
      const n = await home.api.notifications.get(id);
      assert.deepEqual(n.resolution, { outcome: 'ready after review' });
      assert.equal(
        n.agentId,
        'dashboard@home',
        'a type that wants a claim is claimed by the login, then resolved',
      );
      for (const slug of ['live-a', 'live-b', 'live-c'])
        assert.equal(
          (await home.api.notifications.get(await notificationOf(slug))).agentStatus,
          'none',
          `${slug} untouched`,
        );
    });
  });

  test('a claim another agent holds: Resolve is off, and Free the claim gives it back so the login can resolve it', async () => {
    await step('free-claim', page, async () => {
      await home.api.emit({ event: 'system.worker.crashed', payload: { worker: 'held', error: 'stuck', restarts: 2 } });
      let id = 0;
      await eventually(
        async () => {
          const items = (await home.api.notifications.list({ type: 'system.worker.crashed', limit: 100 })).items;
          id = items.find((n) => n.payload.worker === 'held')?.id ?? 0;
          return id > 0;
        },
        10_000,
        'the notification',
      );
      await home.api.notifications.claim(id, 'agent-gone');
      await page.goto(`${base}/#/inbox`);
      await page.reload();
      await page.locator(`#inbox-list tbody tr[data-id="${id}"]`).click();
      await page.waitForSelector(`#detail[data-id="${id}"] #btn-release`);
      assert.equal(await page.locator('#btn-resolve').isDisabled(), true, 'resolve is off while agent-gone holds it');
      await page.click('#btn-release');
      await eventually(async () => (await home.api.notifications.get(id)).agentStatus === 'none', 10_000, 'the claim is freed');
      await page.waitForSelector(`#detail[data-id="${id}"] #btn-resolve:not([disabled])`);
      await page.click('#btn-resolve');
      await eventually(async () => (await home.api.notifications.get(id)).agentStatus === 'resolved', 10_000, 'resolved by the login');
      assert.equal((await home.api.notifications.get(id)).agentId, 'dashboard@home');
    });
  });

  test('the causation tree of a root event, a cut-off login link, and every page at phone width', async () => {
    await step('small-things', page, async () => {
      await page.goto(`${base}/#/events`);
      await page.reload();
      await page.locator('#events tbody tr', { hasText: 'system.worker.crashed' }).first().click();
      await page.waitForSelector('#trace h3');
      assert.doesNotMatch((await page.locator('#trace').textContent()) ?? '', /null/, 'no stray "null" under the tree');
      for (const path of ['/login?code=abc', '/login']) {
        const r = await fetch(`${base}${path}`, { redirect: 'manual' });
        assert.equal(r.status, 401, path);
        assert.match(r.headers.get('content-type') ?? '', /text\/html/);
        assert.match(await r.text(), /weft dashboard/);
      }
      // The team view says why an aggregate is withheld in the words the CLI uses: how many of
      // the nodes that answered had counts, not "fewer nodes contributed" when every node answered.
      await page.goto(`${base}/#/privacy`);
      await page.waitForSelector('#team h3:has-text("tool-usage")');
      const team = (await page.locator('#team').textContent()) ?? '';
      assert.match(team, /suppressed: \d+ of the nodes that answered had counts, fewer than min_contributors 3/);
      assert.doesNotMatch(team, /nodes contributed/);
      const phone = await admin.newPage();
      await phone.setViewportSize({ width: 375, height: 740 });
      for (const pg of ['inbox', 'approvals', 'mesh', 'privacy', 'events']) {
        await phone.goto(`${base}/#/${pg}`);
        await phone.waitForSelector(`body[data-page="${pg}"]`);
        const width = (await phone.evaluate('document.documentElement.scrollWidth')) as number;
        assert.ok(width <= 375, `${pg} is ${width} px wide in a 375 px window`);
      }
      await phone.close();
    });
  });

  test('a cartridge published by the second daemon is approved, installed and activated from the Approvals page', async () => {
    await step('approvals', page, async () => {
      const r = weft(['cartridges', 'publish', join(t.dir, 'pkg', 'greeter')], pub.env);
      assert.equal(r.code, 0, r.stderr);
      await page.goto(`${base}/#/approvals`);
      const card = page.locator('.approval[data-cartridge="greeter"]');
      await eventually(
        async () => {
          await page.goto(`${base}/#/approvals`);
          await page.reload();
          return (await card.count()) === 1;
        },
        30_000,
        'the install_pending card',
      );
      await card.locator('pre.code:has-text("function process")').waitFor();
      assert.ok((await card.locator('pre.code .kw').count()) > 0, 'the source is highlighted');
      await card.locator('button.approve').click();
      await page.locator('#cartridges tr[data-cartridge="greeter"]').waitFor({ timeout: 10_000 });
      await page.locator('#cartridges tr[data-cartridge="greeter"] button').click();
      await page
        .locator('#cartridges tr[data-cartridge="greeter"] .status:has-text("active")')
        .waitFor({ timeout: 10_000 });
    });
  });

  test('the mesh page shows the peer, and shows it disconnected once it is killed, without a reload', async () => {
    await step('mesh', page, async () => {
      await page.goto(`${base}/#/mesh`);
      await page.reload();
      await page.locator('tr[data-peer="pub"]').waitFor();
      await page.click('#btn-verify');
      await page.locator('#audit-result:has-text("intact")').waitFor();
      await shot(page, 'mesh');
      await page.evaluate('window.marker = 43');
      await pub.kill();
      await eventually(
        async () => (await page.locator('tr[data-peer="pub"] .state').textContent()) === 'disconnected',
        30_000,
        'pub shown disconnected',
      );
      assert.equal(await page.evaluate('window.marker'), 43, 'no reload happened');
    });
  });

  test('a read-only login sees the inbox but cannot claim or resolve, in the page or by a forged request', async () => {
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    await step('read-only', p, async () => {
      await p.goto(link('read'));
      await p.waitForSelector('#who:has-text("read-only")');
      await p.locator('#inbox-list tbody tr').first().click();
      await p.waitForSelector('#detail');
      assert.equal(await p.locator('#btn-resolve').count(), 0, 'no resolve form');
      assert.equal(await p.locator('#btn-claim').isDisabled(), true);
      const status = await p.evaluate(`(async () => {
        const s = await (await fetch('/api/session')).json();
        const id = document.querySelector('#inbox-list tbody tr').getAttribute('data-id');
        const r = await fetch('/api/notifications/' + id + '/claim', { method: 'POST', headers: { 'content-type': 'application/json', 'x-weft-csrf': s.csrf }, body: JSON.stringify({ agentId: 'x' }) });
        return r.status;
      })()`);
      assert.equal(status, 403);
    });
    await ctx.close();
  });

  test('a request with a forged Origin, a foreign Host or no CSRF token is refused', async () => {
    const cookie = (await admin.cookies()).find((c) => c.name === 'weft_session');
    assert.ok(cookie);
    const url = new URL(page.url());
    const send = (path: string, method: string, headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const req = request(
          {
            host: url.hostname,
            port: url.port,
            path,
            method,
            headers: { cookie: `weft_session=${cookie.value}`, ...headers },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end(method === 'POST' ? '{}' : undefined);
      });
    const csrf = ((await page.evaluate(async () => (await fetch('/api/session')).json())) as { csrf: string })
      .csrf;
    assert.equal(await send('/api/notifications', 'GET', {}), 200, 'the cookie alone reads');
    assert.equal(
      await send('/api/notifications', 'GET', { origin: 'http://evil.example' }),
      403,
      'a forged Origin is refused',
    );
    assert.equal(
      await send('/api/notifications', 'GET', { host: `evil.example:${url.port}` }),
      403,
      'a rebinding Host is refused',
    );
    assert.equal(await send('/', 'GET', { host: `evil.example:${url.port}` }), 403, 'even the page itself');
    assert.equal(
      await send('/api/session/logout', 'POST', { 'content-type': 'application/json' }),
      403,
      'a write without the CSRF token is refused',
    );
    assert.equal(
      await send('/api/session/logout', 'POST', {
        'content-type': 'application/json',
        'x-weft-csrf': csrf,
        origin: 'http://evil.example',
      }),
      403,
      'and with it from another origin',
    );
    assert.equal(
      await send('/api/dashboard/login-link', 'POST', {
        'content-type': 'application/json',
        'x-weft-csrf': csrf,
      }),
      403,
      'a session cannot mint login links',
    );
  });

  test('an open page says so when the daemon stops answering, and that it is logged out once the daemon restarted', async () => {
    await step('restart', page, async () => {
      await page.goto(`${base}/#/inbox`);
      await page.reload();
      await eventually(
        async () => (await page.getAttribute('body', 'data-live')) === 'yes',
        10_000,
        'the live connection',
      );
      assert.equal(await page.locator('#banner').isVisible(), false);
      await home.stop();
      await page.locator('#banner:has-text("does not answer")').waitFor({ timeout: 15_000 });
      await home.start();
      await page.locator('#banner:has-text("Logged out")').waitFor({ timeout: 30_000 });
      assert.match((await page.locator('#banner').textContent()) ?? '', /weft dashboard/);
      assert.equal(await page.getAttribute('body', 'data-live'), 'no');
    });
  });
});
