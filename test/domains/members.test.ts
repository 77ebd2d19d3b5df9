import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { HttpApp } from '../../src/api/http.js';
import { assertDomainAccess, memberRoutes, principalOf } from '../../src/api/member-auth.js';
import { buildApi } from '../../src/api/server.js';
import { AuditLog } from '../../src/audit/index.js';
import { MAX_TOKENS_PER_MEMBER, MemberDirectory } from '../../src/domains/index.js';
import type { WeftNode } from '../../src/node/index.js';
import { silentLogger } from '../../src/util/logger.js';
import { startTestNode, waitFor } from '../helpers/node.js';

const TOKEN = 'node-token-0123456789';
const asNode = { authorization: `Bearer ${TOKEN}` };
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
/** Domains of two catalog types: a notification of each is made in `before`. */
const DEV = 'software-development';
const SYS = 'system';
const OPS = 'ops';

type ErrorAnswer = { error: { code: string; message: string } };

let node: WeftNode;
let close: () => Promise<void>;
let audit: AuditLog;
let members: MemberDirectory;
let app: HttpApp;
let devNote: number;
let sysNote: number;

/** Test routes in the shape domain routes take: a read any role may do, and an admin-only action. */
const domainTestRoutes = (a: HttpApp) => {
  a.get('/api/domains/:domain/ping', async (req) => {
    const { domain } = req.params as { domain: string };
    assertDomainAccess(req, domain, 'member');
    return { pong: domain, as: principalOf(req) };
  });
  a.post('/api/domains/:domain/admin-ping', async (req) => {
    const { domain } = req.params as { domain: string };
    assertDomainAccess(req, domain, 'admin');
    return { pong: domain };
  });
};

before(async () => {
  const t = await startTestNode();
  node = t.node;
  close = t.close;
  audit = new AuditLog({ store: node.ns.store });
  members = new MemberDirectory({ store: node.ns.store, audit });
  app = (
    await buildApi(
      { token: TOKEN },
      { node, logger: silentLogger, members, extraRoutes: [memberRoutes({ members }), domainTestRoutes] },
    )
  ).app;
  await node.emit({
    event: 'domain.software-development.planning.todo.dor_assessed',
    payload: { slug: 'login-page', score: 6, verdict: 'needs_work' },
  });
  await node.emit({
    event: 'system.worker.crashed',
    payload: { worker: 'indexer', error: 'disk full', restarts: 1 },
  });
  const first = (domain: string) => node.ns.notifications.list({ domain }).items[0]?.id;
  await waitFor(() => first(DEV) !== undefined && first(SYS) !== undefined, 10_000, 'the two notifications');
  devNote = first(DEV) as number;
  sysNote = first(SYS) as number;
});

after(async () => {
  await app.close();
  await close();
});

describe('the member directory', () => {
  test('should add a member with roles, grant, revoke and remove them', async () => {
    const m = await members.add('dir-ada', { displayName: ' Ada Lovelace ', roles: { [DEV]: 'member' } });
    assert.equal(m.displayName, 'Ada Lovelace');
    assert.deepEqual(m.roles, { [DEV]: 'member' });
    assert.deepEqual(m.tokens, []);
    assert.deepEqual((await members.grant('dir-ada', 'marketing', 'admin')).roles, {
      [DEV]: 'member',
      marketing: 'admin',
    });
    assert.deepEqual((await members.grant('dir-ada', DEV, 'admin')).roles, {
      [DEV]: 'admin',
      marketing: 'admin',
    });
    assert.deepEqual((await members.revoke('dir-ada', 'marketing')).roles, { [DEV]: 'admin' });
    assert.ok(members.list().some((x) => x.name === 'dir-ada'));
    const removed = await members.remove('dir-ada');
    assert.deepEqual(removed.roles, { [DEV]: 'admin' });
    assert.throws(() => members.get('dir-ada'), {
      code: 'WEFT_NOT_FOUND',
      message: "member 'dir-ada' not found",
    });
    const left = node.ns.store.db
      .prepare("SELECT COUNT(*) FROM member_roles WHERE member = 'dir-ada'")
      .pluck()
      .get();
    assert.equal(left, 0);
  });

  test('should refuse bad names, bad roles, a taken name and an unknown member, naming the member', async () => {
    await assert.rejects(members.add('Ada'), {
      code: 'WEFT_VALIDATION',
      message: /member name "Ada" is not valid/,
    });
    await assert.rejects(members.add('ok-name', { roles: { 'Bad Domain': 'member' } }), {
      code: 'WEFT_VALIDATION',
      message: /domain name "Bad Domain"/,
    });
    await assert.rejects(members.add('ok-name', { roles: { marketing: 'owner' as 'admin' } }), {
      code: 'WEFT_VALIDATION',
      message: /role "owner" of member 'ok-name' in domain 'marketing'/,
    });
    await assert.rejects(members.add('ok-name', { displayName: 'a\u001b[31mred' }), {
      code: 'WEFT_VALIDATION',
      message: /control characters/,
    });
    await members.add('dir-bob');
    await assert.rejects(members.add('dir-bob'), {
      code: 'WEFT_CONFLICT',
      message: "member 'dir-bob' already exists",
    });
    await assert.rejects(members.grant('nobody', DEV, 'member'), {
      code: 'WEFT_NOT_FOUND',
      message: "member 'nobody' not found",
    });
    await assert.rejects(members.revoke('dir-bob', DEV), {
      code: 'WEFT_NOT_FOUND',
      message: "member 'dir-bob' has no role in domain 'software-development'",
    });
    await assert.rejects(members.createToken('nobody'), { code: 'WEFT_NOT_FOUND' });
    await assert.rejects(members.remove('nobody'), { code: 'WEFT_NOT_FOUND' });
    await members.remove('dir-bob');
  });

  test('should show a token once and store only its SHA-256 digest', async () => {
    await members.add('dir-cy', { roles: { [DEV]: 'member' } });
    const t = await members.createToken('dir-cy', 'laptop');
    assert.match(t.token, /^weftm_[A-Za-z0-9_-]{43}$/);
    assert.equal(t.member, 'dir-cy');
    assert.equal(t.label, 'laptop');
    const rows = node.ns.store.db
      .prepare("SELECT * FROM member_tokens WHERE member = 'dir-cy'")
      .all() as Array<Record<string, unknown>>;
    assert.equal(rows.length, 1);
    assert.equal(rows[0]?.digest, createHash('sha256').update(t.token).digest('hex'));
    assert.ok(!JSON.stringify(rows).includes(t.token));
    // Listings and the audit log never hold it either.
    assert.ok(!JSON.stringify(members.get('dir-cy')).includes(t.token));
    assert.ok(!JSON.stringify(audit.entries({ limit: 10_000 })).includes(t.token));
    assert.deepEqual(
      members.get('dir-cy').tokens.map((x) => x.id),
      [t.id],
    );
  });

  test('should authenticate a token to its member with current roles, and nothing else', async () => {
    await members.add('dir-dee', { roles: { [DEV]: 'member' } });
    const { token } = await members.createToken('dir-dee');
    assert.deepEqual(members.authenticate(token), {
      kind: 'member',
      name: 'dir-dee',
      roles: { [DEV]: 'member' },
    });
    await members.grant('dir-dee', OPS, 'admin');
    assert.deepEqual(members.authenticate(token)?.roles, { [DEV]: 'member', [OPS]: 'admin' });
    assert.equal(members.authenticate(`${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`), undefined);
    assert.equal(members.authenticate(TOKEN), undefined);
    assert.equal(members.authenticate(''), undefined);
    // The use is noted (once a minute at most, in a deferred write).
    await waitFor(() => members.get('dir-dee').tokens[0]?.lastUsedAt != null, 5000, 'last_used_at');
    const noted = members.get('dir-dee').tokens[0]?.lastUsedAt;
    members.authenticate(token);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(members.get('dir-dee').tokens[0]?.lastUsedAt, noted);
    assert.deepEqual(await members.revokeTokens('dir-dee'), { member: 'dir-dee', revoked: 1 });
    assert.equal(members.authenticate(token), undefined);
    const again = await members.createToken('dir-dee');
    await members.remove('dir-dee');
    assert.equal(members.authenticate(again.token), undefined);
    assert.equal(
      node.ns.store.db.prepare("SELECT COUNT(*) FROM member_tokens WHERE member = 'dir-dee'").pluck().get(),
      0,
    );
  });

  test('should refuse a token past the limit until the old ones are revoked', async () => {
    await members.add('dir-eve');
    for (let i = 0; i < MAX_TOKENS_PER_MEMBER; i++) await members.createToken('dir-eve', `t${i}`);
    await assert.rejects(members.createToken('dir-eve'), {
      code: 'WEFT_LIMIT',
      message:
        /member 'dir-eve' already holds 16 API tokens, the limit: revoke the old ones first \(weft members revoke-tokens dir-eve\)/,
    });
    await members.revokeTokens('dir-eve');
    await members.createToken('dir-eve');
  });

  test('should not take a domain named like an Object method for a grant', async () => {
    await members.add('dir-fay');
    const { token } = await members.createToken('dir-fay');
    const p = members.authenticate(token);
    assert.ok(p);
    const r = await app.inject({
      method: 'GET',
      url: '/api/domains/constructor/ping',
      headers: bearer(token),
    });
    assert.equal(r.statusCode, 403);
    const n = await app.inject({
      method: 'GET',
      url: '/api/notifications?domain=constructor',
      headers: bearer(token),
    });
    assert.equal(n.statusCode, 403);
  });

  test('should record every change in the audit log, without the token', async () => {
    const from = audit.entries({ limit: 100_000 }).at(-1)?.seq ?? 0;
    await members.add('dir-gus', { roles: { [DEV]: 'member' } });
    await members.grant('dir-gus', OPS, 'admin');
    await members.revoke('dir-gus', OPS);
    const { token, id } = await members.createToken('dir-gus', 'phone');
    await members.revokeTokens('dir-gus');
    await members.remove('dir-gus');
    const got = audit.entries({ afterSeq: from, limit: 100 });
    assert.deepEqual(
      got.map((e) => [e.kind, e.peer, e.success]),
      [
        ['member.added', null, true],
        ['member.role.granted', null, true],
        ['member.role.revoked', null, true],
        ['member.token.created', null, true],
        ['member.tokens.revoked', null, true],
        ['member.removed', null, true],
      ],
    );
    assert.deepEqual(got[0]?.details, { member: 'dir-gus', displayName: null, roles: { [DEV]: 'member' } });
    assert.deepEqual(got[1]?.details, { member: 'dir-gus', domain: OPS, role: 'admin', previous: null });
    assert.deepEqual(got[3]?.details, { member: 'dir-gus', tokenId: id, label: 'phone' });
    assert.deepEqual(got[4]?.details, { member: 'dir-gus', count: 1 });
    assert.ok(!JSON.stringify(got).includes(token));
    assert.ok(audit.verify().ok);
  });
});

describe('a member token on the API', () => {
  let ada: string; // member of software-development, admin of marketing
  before(async () => {
    await members.add('ada', { roles: { [DEV]: 'member', marketing: 'admin' } });
    ada = (await members.createToken('ada', 'test')).token;
  });

  const call = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, token: string, payload?: unknown) =>
    app.inject({
      method,
      url,
      headers: bearer(token),
      ...(payload !== undefined ? { payload: payload as object } : {}),
    });
  const forbidden = (r: { statusCode: number; json(): unknown }, message?: RegExp) => {
    assert.equal(r.statusCode, 403, JSON.stringify(r.json()));
    const e = (r.json() as ErrorAnswer).error;
    assert.equal(e.code, 'WEFT_FORBIDDEN');
    if (message) assert.match(e.message, message);
  };

  test('should get 403 on routes outside its domains', async () => {
    for (const [method, url] of [
      ['GET', '/api/events'],
      ['POST', '/api/events'],
      ['GET', '/api/events/x/trace'],
      ['GET', '/api/schemas'],
      ['GET', '/metrics'],
      ['GET', '/openapi.json'],
      ['GET', '/ws'],
      ['GET', '/api/members'],
      ['POST', '/api/members'],
      ['POST', '/api/members/ada/tokens'],
      ['DELETE', '/api/members/ada'],
      ['GET', '/api/no-such-route'],
      // The route it would reach decides, not the raw text: this is GET /api/events.
      ['GET', '/api/%65vents'],
    ] as const) {
      forbidden(
        await call(method, url, ada, method === 'POST' ? {} : undefined),
        /member tokens may only use their domains' routes/,
      );
    }
  });

  test('should read notifications of its own domain only, and be told which it may read', async () => {
    forbidden(
      await call('GET', '/api/notifications', ada),
      /add \?domain=<domain> \(weft notifications list --domain <domain>; member 'ada' may read: marketing, software-development\)/,
    );
    forbidden(
      await call('GET', `/api/notifications?domain=${SYS}`, ada),
      /member 'ada' holds no role in domain 'system'/,
    );
    forbidden(await call('GET', `/api/notifications?domain=${DEV}&domain=${SYS}`, ada));
    const own = await call('GET', `/api/notifications?domain=${DEV}`, ada);
    assert.equal(own.statusCode, 200);
    const items = (own.json() as { items: Array<{ id: number; domain: string }> }).items;
    assert.ok(items.length > 0);
    assert.ok(items.every((n) => n.domain === DEV));
  });

  test("should reach and act on its domain's notification by id, not another domain's", async () => {
    assert.equal((await call('GET', `/api/notifications/${devNote}`, ada)).statusCode, 200);
    forbidden(
      await call('GET', `/api/notifications/${sysNote}`, ada),
      new RegExp(`notification ${sysNote} belongs to domain 'system'`),
    );
    forbidden(await call('POST', `/api/notifications/${sysNote}/seen`, ada));
    forbidden(await call('POST', `/api/notifications/${sysNote}/claim`, ada, { agentId: 'ada-agent' }));
    const seen = await call('POST', `/api/notifications/${devNote}/seen`, ada);
    assert.equal(seen.statusCode, 200);
    assert.equal((seen.json() as { humanStatus: string }).humanStatus, 'seen');
    const claimed = await call('POST', `/api/notifications/${devNote}/claim`, ada, { agentId: 'ada-agent' });
    assert.equal(claimed.statusCode, 200, claimed.body);
    const unknown = await call('GET', '/api/notifications/987654', ada);
    assert.equal(unknown.statusCode, 404);
    assert.equal((unknown.json() as ErrorAnswer).error.code, 'WEFT_NOT_FOUND');
  });

  test('should reach routes under its domains, with admin actions only where it is admin', async () => {
    const own = await call('GET', `/api/domains/${DEV}/ping`, ada);
    assert.equal(own.statusCode, 200);
    assert.deepEqual(own.json(), {
      pong: DEV,
      as: { kind: 'member', name: 'ada', roles: { [DEV]: 'member', marketing: 'admin' } },
    });
    forbidden(
      await call('GET', `/api/domains/${SYS}/ping`, ada),
      /member 'ada' holds no role in domain 'system'/,
    );
    forbidden(await call('POST', `/api/domains/${SYS}/admin-ping`, ada));
    forbidden(
      await call('POST', `/api/domains/${DEV}/admin-ping`, ada),
      /needs the admin role in domain 'software-development'/,
    );
    assert.equal((await call('POST', '/api/domains/marketing/admin-ping', ada)).statusCode, 200);
    // Percent-encoding reaches the same route with the same (decoded) domain.
    assert.equal((await call('GET', '/api/domains/m%61rketing/ping', ada)).statusCode, 200);
    forbidden(await call('GET', '/api/domains/sy%73tem/ping', ada));
  });

  test('should answer /api/me and /api/health', async () => {
    const me = await call('GET', '/api/me', ada);
    assert.equal(me.statusCode, 200);
    assert.deepEqual(me.json(), {
      kind: 'member',
      name: 'ada',
      roles: { [DEV]: 'member', marketing: 'admin' },
    });
    assert.equal((await call('GET', '/api/health', ada)).statusCode, 200);
    assert.deepEqual((await call('GET', '/api/me', TOKEN)).json(), { kind: 'node' });
  });

  test('should leave the node token reaching everything, and a wrong token 401', async () => {
    for (const url of [
      '/api/events',
      '/api/notifications',
      `/api/notifications/${sysNote}`,
      '/api/members',
      '/metrics',
      `/api/domains/${SYS}/ping`,
    ]) {
      assert.equal((await call('GET', url, TOKEN)).statusCode, 200, url);
    }
    assert.equal((await call('POST', `/api/domains/${SYS}/admin-ping`, TOKEN)).statusCode, 200);
    for (const wrong of ['nope', 'weftm_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', `${TOKEN}x`]) {
      const r = await call('GET', '/api/health', wrong);
      assert.equal(r.statusCode, 401);
      assert.deepEqual(r.json(), { error: { code: 'WEFT_UNAUTHORIZED', message: 'wrong bearer token' } });
    }
    const none = await app.inject({ method: 'GET', url: '/api/health' });
    assert.deepEqual(none.json(), { error: { code: 'WEFT_UNAUTHORIZED', message: 'missing bearer token' } });
  });

  test('should stop working once revoked', async () => {
    await members.add('short-lived', { roles: { [DEV]: 'member' } });
    const { token } = await members.createToken('short-lived');
    assert.equal((await call('GET', '/api/me', token)).statusCode, 200);
    await members.revoke('short-lived', DEV);
    forbidden(await call('GET', `/api/notifications?domain=${DEV}`, token));
    await members.revokeTokens('short-lived');
    assert.equal((await call('GET', '/api/me', token)).statusCode, 401);
  });
});

describe('the member routes', () => {
  test('should manage members, roles and tokens with the node token', async () => {
    const added = await app.inject({
      method: 'POST',
      url: '/api/members',
      headers: asNode,
      payload: { name: 'api-zed', displayName: 'Zed', roles: { [OPS]: 'member' } },
    });
    assert.equal(added.statusCode, 201, added.body);
    assert.deepEqual((added.json() as { roles: unknown }).roles, { [OPS]: 'member' });
    const dup = await app.inject({
      method: 'POST',
      url: '/api/members',
      headers: asNode,
      payload: { name: 'api-zed' },
    });
    assert.equal(dup.statusCode, 409);
    const bad = await app.inject({
      method: 'POST',
      url: '/api/members',
      headers: asNode,
      payload: { name: 'Zed!' },
    });
    assert.equal(bad.statusCode, 400);
    const granted = await app.inject({
      method: 'PUT',
      url: `/api/members/api-zed/roles/${DEV}`,
      headers: asNode,
      payload: { role: 'admin' },
    });
    assert.equal(granted.statusCode, 200, granted.body);
    assert.deepEqual((granted.json() as { roles: unknown }).roles, { [DEV]: 'admin', [OPS]: 'member' });
    const revoked = await app.inject({
      method: 'DELETE',
      url: `/api/members/api-zed/roles/${OPS}`,
      headers: asNode,
    });
    assert.deepEqual((revoked.json() as { roles: unknown }).roles, { [DEV]: 'admin' });
    const tok = await app.inject({
      method: 'POST',
      url: '/api/members/api-zed/tokens',
      headers: asNode,
      payload: { label: 'ci' },
    });
    assert.equal(tok.statusCode, 201, tok.body);
    assert.equal(tok.headers['cache-control'], 'no-store');
    const { token } = tok.json() as { token: string };
    assert.equal(
      (await app.inject({ method: 'POST', url: `/api/domains/${DEV}/admin-ping`, headers: bearer(token) }))
        .statusCode,
      200,
    );
    // A member token, even an admin of a domain, does not manage members.
    const self = await app.inject({
      method: 'POST',
      url: '/api/members/api-zed/tokens',
      headers: bearer(token),
      payload: {},
    });
    assert.equal(self.statusCode, 403);
    const listed = await app.inject({ method: 'GET', url: '/api/members', headers: asNode });
    const zed = (
      listed.json() as { items: Array<{ name: string; tokens: Array<{ label: string }> }> }
    ).items.find((m) => m.name === 'api-zed');
    assert.deepEqual(
      zed?.tokens.map((t) => t.label),
      ['ci'],
    );
    assert.ok(!listed.body.includes(token));
    const gone = await app.inject({ method: 'DELETE', url: '/api/members/api-zed/tokens', headers: asNode });
    assert.deepEqual(gone.json(), { member: 'api-zed', revoked: 1 });
    assert.equal(
      (await app.inject({ method: 'GET', url: '/api/me', headers: bearer(token) })).statusCode,
      401,
    );
    const removed = await app.inject({ method: 'DELETE', url: '/api/members/api-zed', headers: asNode });
    assert.equal(removed.statusCode, 200);
    assert.equal(
      (await app.inject({ method: 'DELETE', url: '/api/members/api-zed', headers: asNode })).statusCode,
      404,
    );
  });

  test('should be documented in /openapi.json', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json', headers: asNode })).json() as {
      paths: Record<string, Record<string, { summary: string }>>;
    };
    for (const [path, method] of [
      ['/api/me', 'get'],
      ['/api/members', 'get'],
      ['/api/members', 'post'],
      ['/api/members/{name}', 'delete'],
      ['/api/members/{name}/roles/{domain}', 'put'],
      ['/api/members/{name}/roles/{domain}', 'delete'],
      ['/api/members/{name}/tokens', 'post'],
      ['/api/members/{name}/tokens', 'delete'],
    ] as const) {
      const op = doc.paths[path]?.[method];
      assert.ok(op && op.summary !== '(undocumented)', `${method} ${path}`);
    }
  });
});
