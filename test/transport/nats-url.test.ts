/**
 * The NATS provider and peer registry against servers that ask for credentials (user and
 * password, a token), given the way the docs say: inside `nats.url`. The `nats` client ignores
 * credentials in a server URL, so before they were passed on every node was refused with
 * 'Authorization Violation' however right its URL was. The client also ignores the scheme, so a
 * `tls://` URL must turn TLS on itself.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { generateIdentity } from '../../src/identity/index.js';
import { NatsPeerRegistry, type PeerInfo } from '../../src/mesh/index.js';
import { natsConnectTarget, natsProvider, redactNatsUrl } from '../../src/transport/index.js';
import { systemClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { natsSkipReason, TestNats } from '../helpers/nats.js';
import { eventsFrame, take } from './provider-compliance.js';

const deps = { logger: silentLogger, clock: systemClock };
const fast = {
  blockMs: 1000,
  backoff: { minMs: 20, maxMs: 200 },
  trimEveryMs: 0,
  connectTimeoutMs: 3000,
} as const;

let withPassword: TestNats;
let withToken: TestNats;
let plain: TestNats;
before(async () => {
  if (natsSkipReason) return;
  // A password with characters that must be percent-encoded in a URL.
  [withPassword, withToken, plain] = await Promise.all([
    TestNats.start({ args: ['--user', 'weft', '--pass', 's3cr@t/x'] }),
    TestNats.start({ args: ['--auth', 'tok-123'] }),
    TestNats.start(),
  ]);
});
after(async () => {
  await Promise.all([withPassword?.stop(), withToken?.stop(), plain?.stop()]);
});

const self = (computer: string): PeerInfo => ({
  computer,
  nodeId: generateIdentity().nodeId,
  addresses: [],
  caps: ['crc32c'],
});

describe('nats with credentials in nats.url', { skip: natsSkipReason }, () => {
  test('nats url: credentials leave the server URLs and become the client options; the same set on every URL, or a clear error', () => {
    assert.deepEqual(natsConnectTarget('nats://u:p%40ss@10.0.0.5:4222, nats://10.0.0.6:4222'), {
      servers: ['nats://10.0.0.5:4222', 'nats://10.0.0.6:4222'],
      user: 'u',
      pass: 'p@ss',
    });
    assert.deepEqual(natsConnectTarget('nats://tok@h:4222'), { servers: ['nats://h:4222'], token: 'tok' });
    assert.deepEqual(natsConnectTarget('nats://h:4222'), { servers: ['nats://h:4222'] });
    assert.throws(
      () => natsConnectTarget('nats://u:pw-alpha@a:4222,nats://u:pw-beta@b:4222'),
      (err: Error) => /different credentials/.test(err.message) && !/pw-alpha|pw-beta/.test(err.message),
    );
    assert.equal(
      redactNatsUrl('nats://u:secret@h:4222,nats://tok-123@g:4222'),
      'nats://u:***@h:4222,nats://***@g:4222',
    );
  });

  for (const kind of ['password', 'token'] as const) {
    test(`nats ${kind}: a provider and a registry whose nats.url carries the ${kind} connect, send and discover`, async () => {
      const server = kind === 'password' ? withPassword : withToken;
      const url =
        kind === 'password'
          ? `nats://weft:${encodeURIComponent('s3cr@t/x')}@127.0.0.1:${server.port}`
          : `nats://tok-123@127.0.0.1:${server.port}`;
      const run = randomUUID().slice(0, 8);
      const a = natsProvider({ url, computer: `a-${run}`, ...fast })(deps);
      const b = natsProvider({ url, computer: `b-${run}`, ...fast })(deps);
      const ra = new NatsPeerRegistry({ url, self: self(`a-${run}`), ttlMs: 5000 }, deps);
      const rb = new NatsPeerRegistry({ url, self: self(`b-${run}`), ttlMs: 5000 }, deps);
      try {
        await Promise.all([a.start(), b.start(), ra.start(), rb.start()]);
        await a.send(`b-${run}`, eventsFrame(generateIdentity(), 'hello'));
        const [f] = await take(b, 1, { what: 'the frame sent through the server that asks for credentials' });
        assert.equal(f?.from, `a-${run}`);
        assert.deepEqual(
          (await ra.discoverPeers()).map((p) => p.computer),
          [`b-${run}`],
        );
      } finally {
        await Promise.all([a.stop(), b.stop(), ra.stop(), rb.stop()]);
      }
    });
  }

  test('nats credentials: wrong ones are refused with the server’s reason, and the message never shows the secret', async () => {
    const run = randomUUID().slice(0, 8);
    const url = `nats://weft:wrong-secret@127.0.0.1:${withPassword.port}`;
    const p = natsProvider({ url, computer: `a-${run}`, ...fast })(deps);
    await assert.rejects(p.start(), (err: Error) => {
      assert.match(
        err.message,
        /cannot reach NATS at nats:\/\/weft:\*\*\*@127\.0\.0\.1:\d+: .*Authorization Violation/,
      );
      assert.doesNotMatch(err.message, /wrong-secret/);
      return true;
    });
    await p.stop();
    const tokenUrl = `nats://bad-token-9@127.0.0.1:${withToken.port}`;
    const r = new NatsPeerRegistry({ url: tokenUrl, self: self(`b-${run}`), ttlMs: 5000 }, deps);
    await assert.rejects(r.start(), (err: Error) => {
      assert.match(
        err.message,
        /cannot reach NATS at nats:\/\/\*\*\*@127\.0\.0\.1:\d+: .*Authorization Violation/,
      );
      assert.doesNotMatch(err.message, /bad-token-9/);
      return true;
    });
    await r.stop();
  });

  test('nats url: tls:// requires TLS (a server without it is refused, never used in plain text); ws:// and wss:// are refused', async () => {
    assert.deepEqual(natsConnectTarget('tls://h:4222'), { servers: ['tls://h:4222'], tls: {} });
    const run = randomUUID().slice(0, 8);
    const p = natsProvider({ url: `tls://127.0.0.1:${plain.port}`, computer: `a-${run}`, ...fast })(deps);
    await assert.rejects(p.start(), (err: Error) => {
      assert.match(err.message, /cannot reach NATS at tls:\/\/127\.0\.0\.1:\d+: the server does not offer TLS, which a tls:\/\/ URL requires/);
      return true;
    });
    await p.stop();
    for (const url of [`ws://127.0.0.1:${plain.port}`, `wss://127.0.0.1:${plain.port}`]) {
      assert.throws(
        () => natsProvider({ url, computer: `a-${run}`, ...fast })(deps),
        (err: Error) =>
          /is not supported; use nats:\/\/host:port, or tls:\/\/host:port to require TLS/.test(err.message),
        url,
      );
    }
  });
});
