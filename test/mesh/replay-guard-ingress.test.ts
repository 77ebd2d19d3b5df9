/**
 * The receive path the node wires (decode → replay guard → commit → ack) over a real Redis
 * inbox: every bad frame is refused with its own code and counted, the good peer keeps
 * being served, and a replay is still caught after the receiver re-opens its database.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { AuditLog } from '../../src/audit/index.js';
import { generateIdentity, type NodeIdentity } from '../../src/identity/index.js';
import { ReplayGuard } from '../../src/mesh/index.js';
import { decodeFrame, encodeFrame, type Provider, redisProvider } from '../../src/transport/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { TestRedis } from '../helpers/redis.js';
import { take } from '../transport/provider-compliance.js';
import { tempDir } from '../helpers/tmp.js';

let redis: TestRedis;
before(async () => {
  redis = await TestRedis.start();
});
after(async () => {
  await redis.stop();
});

const MAX = 64 * 1024;

/** A minimal receiving node: what the daemon's mesh ingress does with each frame. */
class Receiver {
  readonly db: Database.Database;
  readonly guard: ReplayGuard;
  readonly audit: AuditLog;
  readonly rejected = new Map<string, number>();
  constructor(
    path: string,
    readonly clock: ManualClock,
    readonly peers: Map<string, NodeIdentity>,
  ) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.exec('CREATE TABLE IF NOT EXISTS applied (envelope_id TEXT PRIMARY KEY, sender TEXT NOT NULL)');
    this.guard = new ReplayGuard({}, { db: this.db, clock });
    this.audit = new AuditLog({ db: this.db, clock });
  }

  private reject(peer: string | undefined, code: string, message: string): void {
    this.rejected.set(code, (this.rejected.get(code) ?? 0) + 1);
    this.audit.record('frame.rejected', peer ?? null, { code, message }, false);
  }

  /** Handles one delivery; always acks (a refused frame must not come back forever). */
  async handle(bytes: Uint8Array, from: string | undefined, ack: () => Promise<void>): Promise<void> {
    const r = decodeFrame(bytes, { lookupKey: (id) => this.peers.get(id)?.publicKey, maxFrameSize: MAX });
    if (!r.ok) {
      this.reject(from, r.error.code, r.error.message);
      return ack();
    }
    const v = this.guard.check(r.frame.header);
    if (!v.ok) {
      this.reject(from, v.error.code, v.error.message);
      return ack();
    }
    if (r.frame.type === 'events') {
      const envelopes = r.frame.body.envelopes;
      const header = r.frame.header;
      const insert = this.db.prepare('INSERT OR IGNORE INTO applied (envelope_id, sender) VALUES (?, ?)');
      // Effects and the replay record commit together; ack only after that.
      this.db.transaction(() => {
        this.guard.record(header);
        for (const e of envelopes) insert.run(String(e.id), header.sender);
      })();
    }
    await ack();
  }

  applied(): string[] {
    return (
      this.db.prepare('SELECT envelope_id FROM applied ORDER BY envelope_id').pluck().all() as string[]
    ).sort();
  }
}

async function drain(p: Provider, rx: Receiver, n: number): Promise<void> {
  for (const f of await take(p, n, { ack: false, what: 'frames for the receiver' })) await rx.handle(f.bytes, f.from, f.ack);
}

test('bad frames are each refused with their own code while a good peer keeps being served', {
  timeout: 30_000,
}, async () => {
  const { dir, cleanup } = tempDir();
  const clock = new ManualClock(Date.now());
  const good = generateIdentity();
  const stranger = generateIdentity();
  const peers = new Map([[good.nodeId, good]]);
  const deps = { logger: silentLogger, clock };
  const rxProvider = redisProvider({ url: redis.url, computer: 'rx', blockMs: 200, trimEveryMs: 0 })(deps);
  const tx = redisProvider({ url: redis.url, computer: 'tx', blockMs: 200, trimEveryMs: 0 })(deps);
  await rxProvider.start();
  await tx.start();
  const path = join(dir, 'rx.db');
  let rx = new Receiver(path, clock, peers);
  try {
    let seq = 0;
    const frame = (id: NodeIdentity, envId: string, opts: { ts?: number; pad?: number } = {}) =>
      encodeFrame(
        {
          type: 'events',
          sequence: ++seq,
          timestamp: opts.ts ?? clock.now(),
          body: { envelopes: [{ id: envId, pad: opts.pad ? 'x'.repeat(opts.pad) : '' }] },
        },
        { identity: id },
      );

    const ok1 = frame(good, 'e1');
    const forged = Buffer.from(frame(good, 'forged'));
    forged[forged.length - 5]! ^= 0xff;
    const tampered = Buffer.from(frame(good, 'tampered'));
    tampered[tampered.indexOf(Buffer.from('tampered'))] = 0x54;
    const sends: Uint8Array[] = [
      ok1,
      forged,
      tampered,
      ok1, // replay
      frame(good, 'old', { ts: clock.now() - 6 * 60_000 }),
      frame(good, 'new', { ts: clock.now() + 6 * 60_000 }),
      frame(good, 'big', { pad: MAX }),
      frame(stranger, 'stranger'),
      randomBytes(200),
      frame(good, 'e2'),
    ];
    for (const s of sends) await tx.send('rx', s);
    await drain(rxProvider, rx, sends.length);

    assert.deepEqual(rx.applied(), ['e1', 'e2']);
    assert.deepEqual(Object.fromEntries(rx.rejected), {
      FRAME_BAD_SIGNATURE: 2,
      REPLAY_NONCE_SEEN: 1,
      REPLAY_TOO_OLD: 1,
      REPLAY_TOO_NEW: 1,
      FRAME_TOO_LARGE: 1,
      FRAME_UNKNOWN_SENDER: 1,
      FRAME_BAD_MAGIC: 1,
    });
    assert.equal(rx.audit.entries().filter((e) => e.kind === 'frame.rejected').length, 8);
    assert.ok(rx.audit.verify().ok);

    // The receiver restarts (new database handle on the same file): the replay is still caught.
    rx.db.close();
    rx = new Receiver(path, clock, peers);
    clock.advance(30_000);
    await tx.send('rx', ok1);
    await tx.send('rx', frame(good, 'e3'));
    await drain(rxProvider, rx, 2);
    assert.deepEqual(rx.applied(), ['e1', 'e2', 'e3']);
    assert.equal(rx.rejected.get('REPLAY_NONCE_SEEN'), 1);
  } finally {
    rx.db.close();
    await tx.stop();
    await rxProvider.stop();
    cleanup();
  }
});
