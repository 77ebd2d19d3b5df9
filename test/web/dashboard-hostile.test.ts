/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core) against one real
 * daemon, with hostile or awkward data flowing through it: text that is one 4,000-character
 * word, text with a right-to-left override or zero-width spaces in it, a thousand notifications
 * arriving at once while the inbox is open, and an inbox whose newest notifications are all
 * resolved. A failing step leaves a screenshot under test-results/.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { chromiumSkip, launchChromium, screenshotSteps } from '../helpers/browser.js';
import { weft } from '../helpers/cli.js';
import { type ClusterNode, eventually, startCluster } from '../helpers/cluster.js';
import { tempDir } from '../helpers/tmp.js';

const skip = chromiumSkip;

describe('the dashboard with hostile and awkward data', { skip }, () => {
  const t = tempDir('weft-web-hostile-');
  let node: ClusterNode;
  let stopAll: () => Promise<void>;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;
  let base = '';

  const login = async (p: Page, role: 'admin' | 'read' = 'admin') => {
    const r = weft(['--json', 'dashboard', '--no-open', '--role', role], node.env);
    assert.equal(r.code, 0, r.stderr);
    const url = (JSON.parse(r.stdout) as { url: string }).url;
    base = new URL(url).origin;
    await p.goto(url);
    await p.waitForSelector('#who:has-text("home")');
  };
  const step = screenshotSteps('dashboard-hostile');
  /** The id of the notification of the ping numbered `n`. */
  const pingId = async (n: number) => {
    let id = 0;
    await eventually(
      async () => {
        const items = (await node.api.notifications.list({ type: 'mesh.test.ping', limit: 1000 })).items;
        id = items.find((x) => x.payload.n === n)?.id ?? 0;
        return id > 0;
      },
      10_000,
      `the notification of ping ${n}`,
    );
    return id;
  };
  /** Opens the inbox fresh with the notification `id` selected. */
  const openDetail = async (id: number) => {
    await page.goto(`${base}/#/inbox`);
    await page.reload();
    await page.locator(`#inbox-list tbody tr[data-id="${id}"]`).click();
    await page.waitForSelector(`#detail[data-id="${id}"]`);
  };

  before(async () => {
    const c = await startCluster(t.dir, [{ computer: 'home', env: { WEFT_TRUST_RATE_BURST: '3000' } }], {
      provider: 'tls',
    });
    node = c.nodes.home as ClusterNode;
    stopAll = c.stopAll;
    browser = await launchChromium();
    ctx = await browser.newContext({ viewport: { width: 1360, height: 820 } });
    page = await ctx.newPage();
    await login(page);
  });

  after(async () => {
    await browser?.close();
    await stopAll?.();
    t.cleanup();
  });

  test('a 4,000-character word in a description, a source and a domain wraps inside the list and the detail panel; the page does not widen', async () => {
    await step('long-word', page, async () => {
      await node.api.emit({
        event: 'mesh.test.ping',
        payload: { n: 101, note: 'N'.repeat(1000) },
        description: 'W'.repeat(4000),
        source: 'S'.repeat(200),
        domain: 'D'.repeat(200),
      });
      const id = await pingId(101);
      await openDetail(id);
      const m = (await page.evaluate(`(() => {
        const list = document.getElementById('inbox-left').getBoundingClientRect();
        const detail = document.getElementById('detail');
        const d = detail.getBoundingClientRect();
        const inside = [...detail.querySelectorAll('p, h3')].every((el) => el.getBoundingClientRect().right <= d.right + 1);
        return { page: document.documentElement.scrollWidth, window: innerWidth, listRight: list.right, tableRight: document.getElementById('inbox-list').getBoundingClientRect().right, detailLeft: d.left, inside };
      })()`)) as {
        page: number;
        window: number;
        listRight: number;
        tableRight: number;
        detailLeft: number;
        inside: boolean;
      };
      assert.ok(m.page <= m.window, `the page is ${m.page} px wide in a ${m.window} px window`);
      assert.ok(
        m.tableRight <= m.detailLeft,
        `the list (to ${m.tableRight} px) runs under the detail panel (from ${m.detailLeft} px)`,
      );
      assert.ok(m.inside, 'the description and the from-line stay inside the detail panel');
      const row = await page.locator(`#inbox-list tbody tr[data-id="${id}"]`).boundingBox();
      assert.ok(
        row && row.height < 200,
        `the row of a long description is ${row?.height} px tall, not a page of W`,
      );
      await page.goto(`${base}/#/events`);
      await page.waitForSelector('#events');
      const width = (await page.evaluate('document.documentElement.scrollWidth')) as number;
      assert.ok(width <= 1360, `the events page is ${width} px wide`);
    });
  });

  test('a right-to-left override in a source or a description reorders nothing around it, and hidden characters show where they are', async () => {
    await step('bidi', page, async () => {
      await node.api.emit({
        event: 'mesh.test.ping',
        payload: { n: 102, note: 'pay\u200bpal \u202eabc' },
        description: 'Invoice \u202efdp.exe then the rest',
        source: 'evil\u202e source',
        domain: 'mesh',
      });
      const id = await pingId(102);
      await openDetail(id);
      // Where each piece of text lands on screen (left edge of the first character).
      const xOf = async (selector: string, piece: string) =>
        (await page.evaluate(`(() => {
          const walker = document.createTreeWalker(document.querySelector(${JSON.stringify(selector)}), NodeFilter.SHOW_TEXT);
          for (let n = walker.nextNode(); n; n = walker.nextNode()) {
            const i = n.textContent.indexOf(${JSON.stringify(piece)});
            if (i < 0) continue;
            const r = document.createRange();
            r.setStart(n, i);
            r.setEnd(n, i + 1);
            return r.getBoundingClientRect().left;
          }
          return NaN;
        })()`)) as number;
      // The from-line reads in order: source, computer, domain, visibility, time.
      const meta = '#detail p.meta';
      const [home, mesh, local] = [
        await xOf(meta, 'home'),
        await xOf(meta, 'mesh'),
        await xOf(meta, 'local'),
      ];
      assert.ok(
        home < mesh && mesh < local,
        `the from-line reads 'home', 'mesh', 'local' left to right (at ${home}, ${mesh}, ${local})`,
      );
      // The description reads as written: 'fdp.exe', not 'exe.pdf', and the override is shown.
      const desc = '#detail p.description';
      assert.ok(
        (await xOf(desc, 'fdp')) < (await xOf(desc, 'then')),
        "'fdp.exe' is shown as written, before 'then the rest'",
      );
      assert.match((await page.locator(desc).textContent()) ?? '', /U\+202E/);
      assert.match(
        (await page.locator(`#inbox-list tbody tr[data-id="${id}"]`).textContent()) ?? '',
        /Invoice U\+202Efdp\.exe/,
      );
      assert.match((await page.locator(meta).textContent()) ?? '', /evilU\+202E source/);
      // The payload shows the characters escaped, as JSON may write them.
      const pre = (await page.locator('#detail pre').first().textContent()) ?? '';
      assert.ok(pre.includes('pay\\u200bpal \\u202eabc'), pre);
    });
  });

  test('a thousand notifications arriving at once are drawn in a few redraws, not one per arrival, and the list shows the newest 500 once each, newest first', async () => {
    await step('flood', page, async () => {
      await page.goto(`${base}/#/inbox`);
      await page.reload();
      await page.waitForSelector('#inbox-list');
      await eventually(
        async () => (await page.getAttribute('body', 'data-live')) === 'yes',
        10_000,
        'the live connection',
      );
      // Counts how often the list is drawn anew (a new table put in its place).
      await page.evaluate(`(() => {
        window.redraws = 0;
        new MutationObserver((records) => {
          for (const r of records) for (const n of r.addedNodes) if (n.nodeName === 'TABLE') window.redraws++;
        }).observe(document.getElementById('inbox-left'), { childList: true });
      })()`);
      await node.api.emitMany(
        Array.from({ length: 1000 }, (_, i) => ({ event: 'mesh.test.ping', payload: { n: 1000 + i } })),
      );
      const last = await pingId(1999);
      await page.locator(`#inbox-list tbody tr[data-id="${last}"]`).waitFor({ timeout: 30_000 });
      const expected = (await node.api.notifications.list({ limit: 500 })).items.map((n) => n.id);
      await eventually(
        async () =>
          JSON.stringify(
            await page.evaluate(
              `[...document.querySelectorAll('#inbox-list tbody tr')].map((r) => Number(r.dataset.id))`,
            ),
          ) === JSON.stringify(expected),
        30_000,
        'the newest 500, newest first, each once',
      );
      // Drawn once per arrival, it was 1,001 times; together, a handful (a slow machine spreads the arrivals, so some margin).
      const redraws = (await page.evaluate('window.redraws')) as number;
      assert.ok(redraws < 250, `the list was drawn ${redraws} times for 1,000 arrivals`);
    });
  });

  test('the open inbox shows the open notifications when the newest hundred are resolved, and Show older pages down through the rest', async () => {
    await step('open-and-older', page, async () => {
      await node.api.emitMany(
        Array.from({ length: 120 }, (_, i) => ({ event: 'mesh.test.ping', payload: { n: 5000 + i } })),
      );
      const last = await pingId(5119);
      const done = (await node.api.notifications.list({ limit: 120 })).items;
      assert.equal(done[0]?.id, last);
      for (const n of done) await node.api.notifications.resolve(n.id, { agentId: 'agent-7' });
      const open = (await node.api.notifications.list({ agentStatus: 'none', limit: 200 })).items.map(
        (n) => n.id,
      );
      assert.equal(open.length, 200, 'older open notifications exist');
      const rows = () =>
        page.evaluate(
          `[...document.querySelectorAll('#inbox-list tbody tr')].map((r) => Number(r.dataset.id))`,
        ) as Promise<number[]>;
      await page.goto(`${base}/#/inbox`);
      await page.reload();
      await page.waitForSelector('#inbox-list');
      assert.deepEqual(await rows(), open.slice(0, 100), 'the newest 100 open ones, not an empty inbox');
      await page.click('#btn-older');
      await eventually(async () => (await rows()).length === 200, 10_000, 'a second page');
      assert.deepEqual(await rows(), open, 'the next 100 open ones below, each once, newest first');
    });
  });

  test('a page the daemon refuses live updates (too many subscribers) says why, not that the daemon does not answer, and catches up once let in', async () => {
    const { WebSocket } = await import('ws');
    const { readToken } = await import('../../src/config/index.js');
    const wsUrl = `${base.replace(/^http/, 'ws')}/ws?token=${encodeURIComponent(readToken(node.dataDir) as string)}`;
    // Other subscribers (agents, tabs) up to the daemon's bound.
    const others: InstanceType<typeof WebSocket>[] = [];
    const p = await ctx.newPage();
    try {
      await step('refused', p, async () => {
        // Subscribers until the daemon refuses one: it is full (the inbox page above holds one too).
        for (let full = false; !full; ) {
          const ws = new WebSocket(wsUrl);
          full = await new Promise<boolean>((resolve, reject) => {
            ws.once('open', () => ws.send(JSON.stringify({ type: 'subscribe' })));
            ws.once('message', () => resolve(false));
            ws.once('close', (code) =>
              code === 1013 ? resolve(true) : reject(new Error(`closed with ${code}`)),
            );
            ws.once('error', reject);
          });
          if (!full) others.push(ws);
          assert.ok(others.length <= 256, 'the daemon bounds its subscribers');
        }
        await p.goto(`${base}/#/inbox`);
        await p.waitForSelector('#inbox-list');
        await p.locator('#banner').waitFor({ state: 'visible', timeout: 15_000 });
        const text = (await p.locator('#banner').textContent()) ?? '';
        assert.match(text, /too many subscribers/, text);
        assert.doesNotMatch(text, /does not answer/);
        // Something arrives while the page is shut out; then one subscriber leaves.
        await node.api.emit({ event: 'mesh.test.ping', payload: { n: 6001 } });
        const id = await pingId(6001);
        others.pop()?.close();
        await eventually(
          async () => (await p.getAttribute('body', 'data-live')) === 'yes',
          30_000,
          'the page let in',
        );
        await p.locator(`#inbox-list tbody tr[data-id="${id}"]`).waitFor({ timeout: 10_000 });
        assert.equal(await p.locator('#banner').isVisible(), false, 'the line is gone once live again');
      });
    } finally {
      for (const ws of others) ws.close();
      await p.close();
    }
  });

  test('logging out in one tab ends the page in both tabs: both say so and neither shows what arrives afterwards', async () => {
    const two = await browser.newContext({ viewport: { width: 1360, height: 820 } });
    const a = await two.newPage();
    const b = await two.newPage();
    try {
      await step('logout', a, async () => {
        await login(a);
        for (const p of [a, b, page]) {
          await p.goto(`${base}/#/inbox`);
          await p.reload();
          await eventually(
            async () => (await p.getAttribute('body', 'data-live')) === 'yes',
            10_000,
            'the live connection',
          );
        }
        await a.click('#logout');
        for (const p of [a, b]) {
          await p.locator('#banner:has-text("Logged out")').waitFor({ timeout: 10_000 });
          assert.equal(await p.getAttribute('body', 'data-live'), 'no');
        }
        assert.equal(
          (await a.evaluate(`fetch('/api/session').then((r) => r.status)`)) as number,
          401,
          'the session is gone at the daemon',
        );
        // Something arrives: a page still logged in shows it; the logged-out tab does not.
        await node.api.emit({ event: 'mesh.test.ping', payload: { n: 7001 } });
        const id = await pingId(7001);
        await page.locator(`#inbox-list tbody tr[data-id="${id}"]`).waitFor({ timeout: 10_000 });
        assert.equal(
          await b.locator(`#inbox-list tbody tr[data-id="${id}"]`).count(),
          0,
          'the logged-out tab still changes',
        );
      });
    } finally {
      await two.close();
    }
  });

  test('moving on before the detail of the previous row has loaded: the panel shows the form and actions of the row now selected', async () => {
    await step('quick-select', page, async () => {
      await node.api.emit({
        event: 'domain.software-development.planning.todo.dor_assessed',
        payload: { slug: 'slow-one', score: 4, verdict: 'needs_work' },
      });
      await node.api.emit({ event: 'mesh.test.ping', payload: { n: 8001 } });
      const dor = (
        await node.api.notifications.list({
          type: 'domain.software-development.planning.todo.dor_assessed',
          limit: 10,
        })
      ).items.find((n) => n.payload.slug === 'slow-one');
      assert.ok(dor);
      const ping = await pingId(8001);
      await page.goto(`${base}/#/inbox`);
      await page.reload();
      await page.waitForSelector(`#inbox-list tbody tr[data-id="${dor.id}"]`);
      // The first row's event is slow to come (a busy daemon): its answer is held until the second row is shown.
      let release = () => undefined as void;
      const held = new Promise<void>((r) => (release = r));
      await page.route(`**/api/events/${dor.eventId}`, async (route) => {
        await held;
        await route.continue();
      });
      try {
        await page.locator(`#inbox-list tbody tr[data-id="${dor.id}"]`).click();
        await page.locator(`#inbox-list tbody tr[data-id="${ping}"]`).click();
        await page.waitForSelector(`#detail[data-id="${ping}"] #btn-resolve`);
        const late = page.waitForResponse((r) => r.url().endsWith(`/api/events/${dor.eventId}`));
        release();
        await late;
        // The late answer has been handled once the page has run its tasks queued behind it.
        await page.evaluate('new Promise((r) => setTimeout(r, 50))');
        assert.equal(await page.locator('#detail').getAttribute('data-id'), String(ping));
        assert.equal(
          await page.locator('#resolve-form [name="outcome"]').count(),
          0,
          "the ping's panel has the todo's resolution form",
        );
        assert.equal(await page.locator('#btn-resolve').textContent(), 'Resolve');
      } finally {
        await page.unroute(`**/api/events/${dor.eventId}`);
      }
    });
  });

  test('a source over its rate: the Approvals page counts every event the daemon holds, not the page of them it shows', async () => {
    await step('quarantine-count', page, async () => {
      await node.api.emitMany(
        Array.from({ length: 3600 }, (_, i) => ({
          event: 'mesh.test.ping',
          source: 'flooder',
          payload: { n: 9000 + i },
        })),
      );
      // The pipeline runs in order: once this one is in, the flood has been through the trust stage.
      await node.api.emit({ event: 'mesh.test.ping', payload: { n: 9999 } });
      await pingId(9999);
      const q = (await (
        await fetch(`${base}/api/quarantine?status=held&limit=1`, {
          headers: {
            authorization: `Bearer ${(await import('../../src/config/index.js')).readToken(node.dataDir)}`,
          },
        })
      ).json()) as { held: number };
      assert.ok(q.held > 100, `the flood is held (${q.held})`);
      await page.goto(`${base}/#/approvals`);
      await page.reload();
      const title =
        (await page.locator('#quarantine-title, h3:has-text("Quarantine (")').first().textContent()) ?? '';
      assert.match(title, new RegExp(`Quarantine \\(${q.held} held`), title);
    });
  });

  test("a page left open past its login's expiry says so and stops showing what arrives", async () => {
    const later = await browser.newContext({ viewport: { width: 1360, height: 820 } });
    const p = await later.newPage();
    try {
      await step('expiry', p, async () => {
        // The page's clock runs as usual until it is moved on.
        await p.clock.install();
        await login(p);
        await p.goto(`${base}/#/inbox`);
        await eventually(
          async () => (await p.getAttribute('body', 'data-live')) === 'yes',
          10_000,
          'the live connection',
        );
        const expiresAt = Date.parse(
          ((await p.evaluate(`fetch('/api/session').then((r) => r.json())`)) as { expiresAt: string })
            .expiresAt,
        );
        await p.clock.fastForward(expiresAt - Date.now() + 60_000);
        await p.locator('#banner:has-text("expired")').waitFor({ timeout: 10_000 });
        assert.equal(await p.getAttribute('body', 'data-live'), 'no');
        // Something arrives: a page still logged in shows it; the expired one does not.
        await page.goto(`${base}/#/inbox`);
        await page.reload();
        await eventually(
          async () => (await page.getAttribute('body', 'data-live')) === 'yes',
          10_000,
          'the live connection',
        );
        await node.api.emit({ event: 'mesh.test.ping', payload: { n: 9502 } });
        const id2 = await pingId(9502);
        await page.locator(`#inbox-list tbody tr[data-id="${id2}"]`).waitFor({ timeout: 10_000 });
        assert.equal(
          await p.locator(`#inbox-list tbody tr[data-id="${id2}"]`).count(),
          0,
          'the expired page still changes',
        );
      });
    } finally {
      await later.close();
    }
  });

  test('changing the status filter twice quickly: the list shows what the filter now says, whichever answer comes last', async () => {
    await step('filter-race', page, async () => {
      await node.api.emit({ event: 'mesh.test.ping', payload: { n: 9601 } });
      await node.api.notifications.claim(await pingId(9601), 'agent-9');
      await page.goto(`${base}/#/inbox`);
      await page.reload();
      await page.waitForSelector('#inbox-list');
      // The claimed list is slow to come (a busy daemon): held until the resolved one is shown.
      let release = () => undefined as void;
      const held = new Promise<void>((r) => (release = r));
      const claimedList = (url: URL) =>
        url.pathname === '/api/notifications' && url.searchParams.get('agentStatus') === 'claimed';
      await page.route(claimedList, async (route) => {
        await held;
        await route.continue();
      });
      try {
        await page.selectOption('#f-status', 'claimed');
        await page.selectOption('#f-status', 'resolved');
        await eventually(
          async () => (await page.locator('#inbox-list tbody tr', { hasText: 'agent-7' }).count()) > 0,
          10_000,
          'the resolved ones',
        );
        const late = page.waitForResponse((r) => claimedList(new URL(r.url())));
        release();
        await late;
        // The late answer has been handled once the page has run its tasks queued behind it.
        await page.evaluate('new Promise((r) => setTimeout(r, 50))');
        assert.equal(await page.locator('#f-status').inputValue(), 'resolved');
        const agents = await page.locator('#inbox-list tbody tr td:nth-child(6)').allTextContents();
        assert.ok(
          agents.length > 0 && agents.every((a) => a.startsWith('resolved')),
          `rows under 'resolved': ${[...new Set(agents)].join(', ')}`,
        );
      } finally {
        await page.unroute(claimedList);
        await page.selectOption('#f-status', 'open');
      }
    });
  });

  test('a link to a page that does not exist, named like a property every object has, opens the inbox', async () => {
    await step('odd-hash', page, async () => {
      for (const name of ['constructor', 'toString', 'nope']) {
        await page.goto(`${base}/#/${name}`);
        await page.reload();
        await page.waitForSelector('body[data-page="inbox"] #inbox-list', { timeout: 10_000 });
        assert.equal(await page.locator('nav a.active').getAttribute('data-page'), 'inbox', name);
      }
    });
  });
});
