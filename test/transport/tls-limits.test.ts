/**
 * What anyone who can reach the TLS port can do without a key: open many idle sockets, or
 * connect again and again with fresh self-signed keys. Defaults throughout.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import tls from 'node:tls';
import { WeftClient } from '../../src/client/index.js';
import { readToken } from '../../src/config/index.js';
import { createNodeCertificate, generateIdentity } from '../../src/identity/index.js';
import { type TlsProvider, tlsProvider } from '../../src/transport/index.js';
import { systemClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { startDaemonProcess } from '../helpers/cli.js';
import { eventually } from '../helpers/cluster.js';
import { freePort } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

test('idle sockets are capped per address, closed after the handshake timeout, and never hold up a stop', async () => {
  const port = await freePort();
  const p = tlsProvider({ computer: 'victim', port, peers: [] })({ logger: silentLogger, clock: systemClock, identity: generateIdentity() }) as TlsProvider & {
    refusedOverCap: number;
  };
  await p.start();
  const sockets: Socket[] = [];
  const closed: Promise<void>[] = [];
  for (let i = 0; i < 300; i++) {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    closed.push(new Promise((r) => s.once('close', () => r())));
    sockets.push(s);
  }
  await eventually(async () => p.refusedOverCap >= 300 - 64, 10_000, 'the sockets past 64 from one address closed');
  // The 64 admitted ones are closed by the 10 s handshake timeout; one more round proves the slots free up.
  await within(20_000, 'closing idle sockets after the handshake timeout', Promise.all(closed));
  const again = connect(port, '127.0.0.1');
  again.on('error', () => undefined);
  await new Promise((r) => again.once('connect', r));
  await within(2000, 'stop with an idle socket open', p.stop());
  await within(2000, 'the idle socket to be closed by the stop', new Promise((r) => again.once('close', r)));
});

test('200 connects with fresh self-signed keys from one address are one audit entry and one notification a minute, with a count', async () => {
  const t = tempDir('weft-tlsflood-');
  const tlsPort = await freePort();
  const env = {
    HOME: t.dir,
    WEFT_DATA_DIR: join(t.dir, 'data'),
    WEFT_API_PORT: '0',
    WEFT_COMPUTER_NAME: 'victim',
    WEFT_MESH_PROVIDER: 'tls',
    WEFT_MESH_TLS_PORT: String(tlsPort),
    WEFT_LOG_LEVEL: 'error',
  };
  const d = await startDaemonProcess(env);
  try {
    const api = new WeftClient({ url: d.url, token: readToken(env.WEFT_DATA_DIR) as string });
    const N = 200;
    let i = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (i < N) {
          i++;
          const cert = createNodeCertificate(generateIdentity(), { now: Date.now() });
          await new Promise<void>((resolve) => {
            const s = tls.connect({ host: '127.0.0.1', port: tlsPort, key: cert.keyPem, cert: cert.certPem, rejectUnauthorized: false, minVersion: 'TLSv1.3' });
            s.on('error', () => resolve());
            s.on('close', () => resolve());
            s.on('secureConnect', () => s.end());
          });
        }
      }),
    );
    const refused = async () => (await api.notifications.list({ type: 'mesh.event.rejected', limit: 100 })).items.filter((n) => n.payload.code === 'PEER_UNKNOWN_KEY');
    await eventually(async () => (await refused()).length >= 1, 20_000, 'the refusal notification');
    const audit = (await api.text('/api/audit/export')).split('\n').filter((l) => l.includes('"peer.refused"'));
    assert.ok(audit.length <= 2, `${audit.length} audit entries for ${N} refusals`);
    const notes = await refused();
    assert.ok(notes.length <= 2, `${notes.length} notifications for ${N} refusals`);
    // At the end of the minute the rest are folded into one more notification, with their count.
    await eventually(async () => (await refused()).some((n) => Number(n.payload.count) >= N * 0.9 - 1), 90_000, 'the folded notification with the count');
    assert.ok((await refused()).length <= 2);
    const status = await api.request<{ counters: { rejected: Record<string, number> } }>('GET', '/api/mesh/status');
    assert.ok((status.counters.rejected.PEER_UNKNOWN_KEY ?? 0) >= N * 0.9, 'every refusal is still counted');
  } finally {
    d.proc.kill('SIGTERM');
    await d.exited;
    t.cleanup();
  }
});
