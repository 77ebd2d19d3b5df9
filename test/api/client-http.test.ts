import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { WeftClient } from '../../src/client/index.js';
import { freePort } from '../helpers/redis.js';

async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

test('the client says no daemon answers when nothing listens at its address', async () => {
  const client = new WeftClient({ url: `http://127.0.0.1:${await freePort()}`, token: 't' });
  await assert.rejects(client.health(), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'WEFT_STOPPED');
    assert.match(err.message, /no weft daemon answers at http:\/\/127\.0\.0\.1:\d+/);
    return true;
  });
});

test('an answer cut off mid-body is an error naming the request, not a hang or a "no daemon"', async () => {
  const { url, server } = await serve((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
    res.write('{"ok":tr');
    setTimeout(() => res.socket?.destroy(), 20);
  });
  try {
    const client = new WeftClient({ url, token: 't' });
    await assert.rejects(client.health(), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'WEFT_INTERNAL');
      assert.match(err.message, /GET \/api\/health: the connection closed before the answer was complete/);
      return true;
    });
  } finally {
    server.close();
  }
});

test('the API error code and message reach the caller; the bearer token is sent', async () => {
  let auth: string | undefined;
  const { url, server } = await serve((req, res) => {
    auth = req.headers.authorization;
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'WEFT_NOT_FOUND', message: 'notification 7 not found' } }));
  });
  try {
    const client = new WeftClient({ url, token: 'secret-token' });
    await assert.rejects(client.request('GET', '/api/notifications/7'), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'WEFT_NOT_FOUND');
      assert.equal(err.message, 'notification 7 not found');
      return true;
    });
    assert.equal(auth, 'Bearer secret-token');
  } finally {
    server.close();
  }
});
