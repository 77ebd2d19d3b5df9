/**
 * A dashboard login's live connection ends with the login: when it logs out (in any tab) and
 * at its expiry, the daemon closes the WebSocket opened with it (4001), so a page never goes on
 * receiving for a login that is over. Any login may log out, a read-only one too.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { DashboardAuth, type DashboardRole } from '../../src/api/dashboard-auth.js';
import { dashboardRoutes } from '../../src/api/dashboard-routes.js';
import { buildApi } from '../../src/api/server.js';
import { silentLogger } from '../../src/util/logger.js';
import { startTestNode } from '../helpers/node.js';

async function withDashboard(
  sessionTtlMs: number,
  fn: (d: { base: string; login(role: DashboardRole): { cookie: string; csrf: string } }) => Promise<void>,
): Promise<void> {
  const t = await startTestNode();
  const auth = new DashboardAuth({ sessionTtlMs });
  const { app } = await buildApi(
    { token: 'dash-session-token' },
    {
      node: t.node,
      logger: silentLogger,
      dashboard: auth,
      extraRoutes: [dashboardRoutes({ auth, computer: 'vm' })],
    },
  );
  try {
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    await fn({
      base,
      login(role) {
        const s = auth.redeem(auth.createLink(role).code);
        return { cookie: `weft_session=${s.id}`, csrf: s.csrf };
      },
    });
  } finally {
    await app.close();
    await t.close();
  }
}

function live(
  base: string,
  cookie: string,
): Promise<{ ws: WebSocket; closed: Promise<{ code: number; reason: string }> }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/ws`, { headers: { cookie } });
    const closed = new Promise<{ code: number; reason: string }>((r) =>
      ws.once('close', (code, reason) => r({ code, reason: String(reason) })),
    );
    ws.once('open', () => resolve({ ws, closed }));
    ws.once('error', reject);
  });
}

test('logging out closes the live connections opened with that login, and only those; a read-only login may log out', {
  timeout: 20_000,
}, async () => {
  await withDashboard(3_600_000, async ({ base, login }) => {
    const admin = login('admin');
    const reader = login('read');
    const a = await live(base, admin.cookie);
    const r = await live(base, reader.cookie);
    const out = await fetch(`${base}/api/session/logout`, {
      method: 'POST',
      headers: { cookie: reader.cookie, 'x-weft-csrf': reader.csrf, 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(out.status, 200, 'a read-only login ends itself');
    assert.deepEqual(await r.closed, { code: 4001, reason: 'this login was logged out' });
    assert.equal(a.ws.readyState, WebSocket.OPEN, "another login's connection stays");
    // Other writes stay an admin login's.
    const other = login('read');
    const write = await fetch(`${base}/api/notifications/1/seen`, {
      method: 'POST',
      headers: { cookie: other.cookie, 'x-weft-csrf': other.csrf },
    });
    assert.equal(write.status, 403);
    a.ws.close();
  });
});

test('a live connection opened with a login is closed at the login expiry', { timeout: 20_000 }, async () => {
  await withDashboard(1_500, async ({ base, login }) => {
    const s = login('read');
    const c = await live(base, s.cookie);
    assert.deepEqual(await c.closed, { code: 4001, reason: 'this login expired' });
  });
});
