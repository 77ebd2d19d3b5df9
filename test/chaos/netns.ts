/**
 * Partitions between real network stacks: two daemons, each in its own network namespace,
 * linked over TLS by a veth pair (10.231.0.1 <-> 10.231.0.2). The harness talks to their APIs
 * over two more veth pairs (10.231.1.0/24, 10.231.2.0/24), so cutting the mesh link leaves the
 * control path up. Link down → events pile up in the outbox; link up → every one arrives,
 * exactly once. Needs root and `ip netns`; otherwise it skips and says why. Only addresses in
 * the namespaces it creates are used, and the namespaces are deleted afterwards.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WeftClient } from '../../src/client/index.js';
import { readToken } from '../../src/config/index.js';
import { loadOrCreateIdentity } from '../../src/identity/index.js';
import { CLI } from '../helpers/cli.js';
import { readApplied } from './checker.js';
import { waitFor } from './fleet.js';

const NS = ['weft-chaos-a', 'weft-chaos-b'] as const;

/** Runs `ip` with these arguments; ok and the error text. */
export function ip(args: string[]): { ok: boolean; err: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  return { ok: r.status === 0, err: (r.stderr || r.error?.message || '').trim() };
}

/** Runs `ip`, throwing with the command and its error when it fails. */
export function must(args: string[]): void {
  const r = ip(args);
  if (!r.ok) throw new Error(`ip ${args.join(' ')}: ${r.err}`);
}

export function netnsAvailable(): { ok: boolean; why?: string } {
  if (process.getuid?.() !== 0) return { ok: false, why: 'not running as root' };
  const probe = 'weft-chaos-probe';
  const r = ip(['netns', 'add', probe]);
  if (!r.ok) return { ok: false, why: `ip netns add failed: ${r.err}` };
  ip(['netns', 'del', probe]);
  return { ok: true };
}

function cleanup(): void {
  for (const ns of NS) ip(['netns', 'del', ns]);
  ip(['link', 'del', 'wc-ctl-a']);
  ip(['link', 'del', 'wc-ctl-b']);
}

export async function runNetns(o: { log?: (s: string) => void; events?: number } = {}): Promise<{ ok: boolean; skipped?: string; failure?: string }> {
  const log = o.log ?? (() => undefined);
  const avail = netnsAvailable();
  if (!avail.ok) {
    log(`netns partition test SKIPPED: ${avail.why} (needs root and ip netns)`);
    return { ok: true, skipped: avail.why as string };
  }
  const root = mkdtempSync(join(tmpdir(), 'weft-netns-'));
  const procs: ChildProcess[] = [];
  cleanup();
  try {
    // mesh link a <-> b, and one control link from the host into each namespace
    for (const ns of NS) must(['netns', 'add', ns]);
    must(['link', 'add', 'wc-a', 'type', 'veth', 'peer', 'name', 'wc-b']);
    must(['link', 'set', 'wc-a', 'netns', NS[0]]);
    must(['link', 'set', 'wc-b', 'netns', NS[1]]);
    must(['-n', NS[0], 'addr', 'add', '10.231.0.1/24', 'dev', 'wc-a']);
    must(['-n', NS[1], 'addr', 'add', '10.231.0.2/24', 'dev', 'wc-b']);
    const ctl = [
      { host: 'wc-ctl-a', inner: 'wc-in-a', ns: NS[0], hostIp: '10.231.1.1/24', innerIp: '10.231.1.2/24' },
      { host: 'wc-ctl-b', inner: 'wc-in-b', ns: NS[1], hostIp: '10.231.2.1/24', innerIp: '10.231.2.2/24' },
    ];
    for (const c of ctl) {
      must(['link', 'add', c.host, 'type', 'veth', 'peer', 'name', c.inner]);
      must(['link', 'set', c.inner, 'netns', c.ns]);
      must(['addr', 'add', c.hostIp, 'dev', c.host]);
      must(['link', 'set', c.host, 'up']);
      must(['-n', c.ns, 'addr', 'add', c.innerIp, 'dev', c.inner]);
      must(['-n', c.ns, 'link', 'set', c.inner, 'up']);
    }
    for (const [ns, dev] of [[NS[0], 'wc-a'], [NS[1], 'wc-b']] as const) {
      must(['-n', ns, 'link', 'set', dev, 'up']);
      must(['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    const nodes = [
      { computer: 'a', ns: NS[0], meshIp: '10.231.0.1', apiIp: '10.231.1.2' },
      { computer: 'b', ns: NS[1], meshIp: '10.231.0.2', apiIp: '10.231.2.2' },
    ].map((n) => {
      const dataDir = join(root, n.computer);
      return { ...n, dataDir, nodeId: loadOrCreateIdentity(join(dataDir, 'identity.key')).identity.nodeId };
    });
    const apis: WeftClient[] = [];
    for (const n of nodes) {
      const other = nodes.find((x) => x !== n) as (typeof nodes)[number];
      const env = {
        ...process.env,
        HOME: n.dataDir,
        WEFT_DATA_DIR: n.dataDir,
        WEFT_COMPUTER_NAME: n.computer,
        WEFT_COMPUTER_CLUSTER: 'home',
        WEFT_API_HOST: n.apiIp,
        WEFT_API_PORT: '19237',
        WEFT_MESH_PROVIDER: 'tls',
        WEFT_MESH_TLS_HOST: n.meshIp,
        WEFT_MESH_TLS_PORT: '19238',
        WEFT_MESH_PEERS: `${other.computer}/home@${other.meshIp}:19238#${other.nodeId}`,
        WEFT_LOG_LEVEL: 'warn',
      };
      const p = spawn('ip', ['netns', 'exec', n.ns, process.execPath, CLI, 'daemon'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      procs.push(p);
      let out = '';
      p.stdout?.on('data', (d) => (out += d));
      p.stderr?.on('data', (d) => (out += d));
      const url = await new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`daemon ${n.computer} did not start: ${out}`)), 20_000);
        p.stdout?.on('data', () => {
          const m = /API:\s+(http:\/\/\S+)/.exec(out);
          if (m) {
            clearTimeout(t);
            resolve(m[1] as string);
          }
        });
        p.once('exit', (code) => reject(new Error(`daemon ${n.computer} exited ${code}: ${out}`)));
      });
      apis.push(new WeftClient({ url, token: readToken(n.dataDir) as string }));
    }
    const [A, B] = apis as [WeftClient, WeftClient];
    const count = async (api: WeftClient, note: string) => {
      const a = await readApplied(api);
      const ks = [...a.notifications.entries()].filter(([k]) => k.startsWith(`${note}#`));
      return { n: ks.length, dup: ks.filter(([, c]) => c > 1).length };
    };
    const emit = async (api: WeftClient, note: string, from: number, k: number) =>
      api.emitMany(Array.from({ length: k }, (_, i) => ({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: from + i, note } })));
    const N = o.events ?? 500;
    await emit(A, 'a', 0, N);
    if (!(await waitFor(async () => (await count(B, 'a')).n === N, 60_000))) return { ok: false, failure: `before the cut, b did not get a's ${N} events` };
    log(`netns: ${N} events a → b over 10.231.0.1 ↔ 10.231.0.2`);
    must(['-n', NS[0], 'link', 'set', 'wc-a', 'down']);
    log('netns: link wc-a down (partition)');
    await emit(A, 'a', N, N);
    await emit(B, 'b', 0, N);
    await new Promise((r) => setTimeout(r, 3000));
    const during = { b: (await count(B, 'a')).n, a: (await count(A, 'b')).n };
    log(`netns: during the partition b has ${during.b}/${2 * N} of a's events, a has ${during.a}/${N} of b's`);
    must(['-n', NS[0], 'link', 'set', 'wc-a', 'up']);
    log('netns: link up (healed)');
    const healed = await waitFor(async () => (await count(B, 'a')).n >= 2 * N && (await count(A, 'b')).n >= N, 120_000);
    const fa = await count(A, 'b');
    const fb = await count(B, 'a');
    log(`netns: after healing b has ${fb.n}/${2 * N} of a's events (${fb.dup} duplicated), a has ${fa.n}/${N} of b's (${fa.dup} duplicated)`);
    if (!healed || fb.n !== 2 * N || fa.n !== N || fa.dup + fb.dup > 0) return { ok: false, failure: 'events lost or duplicated across the partition' };
    if (during.b > N) return { ok: false, failure: 'events crossed a link that was down (the namespaces are not isolated?)' };
    log('PASS netns partition');
    return { ok: true };
  } finally {
    for (const p of procs) p.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 1500));
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    cleanup();
    rmSync(root, { recursive: true, force: true });
  }
}
