/**
 * mDNS between real network stacks: two daemons (child processes), each in its own network
 * namespace, joined by a veth pair on one /24 (10.232.0.1 <-> 10.232.0.2) that carries the
 * multicast and the TLS link. The harness reaches their APIs over two more veth pairs
 * (10.232.1.0/24, 10.232.2.0/24). They must find each other as candidates, share nothing
 * until `weft peers pin` has run on both sides, and share cluster events after. Needs root and
 * `ip netns`; the namespaces, links, processes and data dirs are removed whatever happens.
 * Same layout as test/chaos/netns.ts, with its own names and addresses so both can run at once.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WeftClient } from '../../src/client/index.js';
import { readToken } from '../../src/config/index.js';
import { loadOrCreateIdentity } from '../../src/identity/index.js';
import { ip, must } from '../chaos/netns.js';

const NS = ['weft-mdns-a', 'weft-mdns-b'] as const;
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** From source (node --import tsx) the CLI is main.ts run through tsx; compiled, dist's main.js. */
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const CLI_ARGS = FROM_SOURCE ? ['--import', 'tsx', fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))] : [fileURLToPath(new URL('../../src/cli/main.js', import.meta.url))];

/** Whether this process may make network namespaces (root and iproute2), and why not. */
export function mdnsNetnsAvailable(): { ok: boolean; why?: string } {
  if (process.getuid?.() !== 0) return { ok: false, why: 'not running as root' };
  const probe = spawnSync('ip', ['-V'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return { ok: false, why: 'the ip command (iproute2) is not installed' };
  const name = 'weft-mdns-probe';
  const r = ip(['netns', 'add', name]);
  if (!r.ok) return { ok: false, why: `ip netns add failed: ${r.err}` };
  ip(['netns', 'del', name]);
  return { ok: true };
}

function cleanup(): void {
  for (const ns of NS) ip(['netns', 'del', ns]);
  // Host ends of the control links (deleting one end deletes the pair).
  ip(['link', 'del', 'wmc-a']);
  ip(['link', 'del', 'wmc-b']);
}

/** The environment of a child: ours without any WEFT_* setting, then the node's own. */
function childEnv(own: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('WEFT_')) env[k] = v;
  return { ...env, ...own };
}

async function poll(fn: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if (await fn()) return true;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 250));
  }
}

interface Candidate {
  fingerprint: string;
  computer: string;
  state: string;
  addresses: string[];
}

export async function runMdnsNetns(o: { log?: (s: string) => void } = {}): Promise<{ ok: boolean; skipped?: string; failure?: string }> {
  const log = o.log ?? (() => undefined);
  const avail = mdnsNetnsAvailable();
  if (!avail.ok) {
    log(`mDNS netns test SKIPPED: ${avail.why} (needs root and ip netns)`);
    return { ok: true, skipped: avail.why as string };
  }
  const root = mkdtempSync(join(tmpdir(), 'weft-mdns-'));
  const procs: Array<{ p: ChildProcess; out: () => string }> = [];
  cleanup();
  try {
    for (const ns of NS) must(['netns', 'add', ns]);
    // The link the nodes find each other on: one /24, multicast on, and a multicast route so
    // mDNS goes out on it (the namespace has no default route).
    must(['link', 'add', 'wm-a', 'type', 'veth', 'peer', 'name', 'wm-b']);
    must(['link', 'set', 'wm-a', 'netns', NS[0]]);
    must(['link', 'set', 'wm-b', 'netns', NS[1]]);
    for (const [ns, dev, addr] of [[NS[0], 'wm-a', '10.232.0.1/24'], [NS[1], 'wm-b', '10.232.0.2/24']] as const) {
      must(['-n', ns, 'addr', 'add', addr, 'dev', dev]);
      must(['-n', ns, 'link', 'set', dev, 'multicast', 'on']);
      must(['-n', ns, 'link', 'set', dev, 'up']);
      must(['-n', ns, 'link', 'set', 'lo', 'up']);
      must(['-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', dev]);
    }
    const ctl = [
      { host: 'wmc-a', inner: 'wmi-a', ns: NS[0], hostIp: '10.232.1.1/24', innerIp: '10.232.1.2/24' },
      { host: 'wmc-b', inner: 'wmi-b', ns: NS[1], hostIp: '10.232.2.1/24', innerIp: '10.232.2.2/24' },
    ];
    for (const c of ctl) {
      must(['link', 'add', c.host, 'type', 'veth', 'peer', 'name', c.inner]);
      must(['link', 'set', c.inner, 'netns', c.ns]);
      must(['addr', 'add', c.hostIp, 'dev', c.host]);
      must(['link', 'set', c.host, 'up']);
      must(['-n', c.ns, 'addr', 'add', c.innerIp, 'dev', c.inner]);
      must(['-n', c.ns, 'link', 'set', c.inner, 'up']);
    }
    const nodes = [
      { computer: 'alpha', ns: NS[0], meshIp: '10.232.0.1', apiIp: '10.232.1.2' },
      { computer: 'beta', ns: NS[1], meshIp: '10.232.0.2', apiIp: '10.232.2.2' },
    ].map((n) => {
      const dataDir = join(root, n.computer);
      return { ...n, dataDir, fingerprint: loadOrCreateIdentity(join(dataDir, 'identity.key')).identity.fingerprint };
    });
    const apis: WeftClient[] = [];
    for (const n of nodes) {
      const env = childEnv({
        HOME: n.dataDir,
        WEFT_DATA_DIR: n.dataDir,
        WEFT_COMPUTER_NAME: n.computer,
        WEFT_COMPUTER_CLUSTER: 'home',
        WEFT_API_HOST: n.apiIp,
        WEFT_API_PORT: '19337',
        WEFT_MESH_PROVIDER: 'tls',
        WEFT_MESH_TLS_HOST: n.meshIp,
        WEFT_MESH_TLS_PORT: '19338',
        WEFT_MESH_ENABLE_MDNS: 'true',
        WEFT_LOG_LEVEL: 'warn',
      });
      const p = spawn('ip', ['netns', 'exec', n.ns, process.execPath, ...CLI_ARGS, 'daemon'], { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout?.on('data', (d) => (out += d));
      p.stderr?.on('data', (d) => (out += d));
      procs.push({ p, out: () => out });
      const url = await new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`daemon ${n.computer} did not start: ${out}`)), 60_000);
        p.stdout?.on('data', () => {
          const m = /API:\s+(http:\/\/\S+)/.exec(out);
          if (m) {
            clearTimeout(t);
            resolve(m[1] as string);
          }
        });
        p.once('exit', (code) => {
          clearTimeout(t);
          reject(new Error(`daemon ${n.computer} exited ${code}: ${out}`));
        });
      });
      apis.push(new WeftClient({ url, token: readToken(n.dataDir) as string }));
    }
    const [A, B] = apis as [WeftClient, WeftClient];
    const [na, nb] = nodes as [(typeof nodes)[number], (typeof nodes)[number]];
    const candidates = async (api: WeftClient) => (await api.request<{ mdns: boolean; candidates: Candidate[] }>('GET', '/api/peers/candidates')).candidates;
    const find = async (api: WeftClient, fp: string) => (await candidates(api)).find((c) => c.fingerprint === fp);

    const t0 = Date.now();
    const found = await poll(async () => (await find(A, nb.fingerprint)) !== undefined && (await find(B, na.fingerprint)) !== undefined, 45_000);
    if (!found) return { ok: false, failure: `the daemons did not find each other over mDNS within 45 s: alpha sees ${JSON.stringify(await candidates(A))}, beta sees ${JSON.stringify(await candidates(B))}\n${procs.map((x) => x.out()).join('\n')}` };
    const cb = (await find(A, nb.fingerprint)) as Candidate;
    log(`mdns: found each other as candidates in ${Date.now() - t0} ms; alpha sees beta at ${cb.addresses.join(', ')}`);
    if (cb.state !== 'candidate' || cb.computer !== 'beta') return { ok: false, failure: `beta is not a plain candidate on alpha: ${JSON.stringify(cb)}` };
    if (cb.addresses[0] !== '10.232.0.2:19338') return { ok: false, failure: `beta's first address is not where its announcement came from: ${cb.addresses.join(', ')}` };
    const peersOf = async (api: WeftClient) => (await api.request<Array<{ computer: string }>>('GET', '/api/peers')).map((p) => p.computer);
    if ((await peersOf(A)).includes('beta') || (await peersOf(B)).includes('alpha')) return { ok: false, failure: 'a candidate is in the PeerBook before any pin' };
    const raised = await A.notifications.list({ type: 'mesh.peer.candidate', limit: 10 });
    if (raised.items.length !== 1) return { ok: false, failure: `alpha raised ${raised.items.length} mesh.peer.candidate notifications, expected one` };

    // Nothing flows to a candidate.
    const pings = async (api: WeftClient, note: string) =>
      (await api.notifications.list({ type: 'mesh.test.ping', limit: 100 })).items.filter((x) => x.payload.note === note).length;
    await A.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 1, note: 'before-pin' } });
    await B.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 1, note: 'before-pin-b' } });
    await new Promise((r) => setTimeout(r, 3000));
    if ((await pings(B, 'before-pin')) + (await pings(A, 'before-pin-b')) > 0) return { ok: false, failure: 'a cluster event reached a node that was only a candidate' };
    log('mdns: nothing crossed while they were candidates');

    // A human pins on each side, with the CLI.
    for (const [n, other] of [
      [na, nb],
      [nb, na],
    ] as const) {
      const env = childEnv({ HOME: n.dataDir, WEFT_DATA_DIR: n.dataDir });
      const listed = spawnSync(process.execPath, [...CLI_ARGS, 'peers', 'candidates', '--json'], { env, cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
      const json = JSON.parse(listed.stdout || '{}') as { candidates?: Candidate[] };
      if (!json.candidates?.some((c) => c.fingerprint === other.fingerprint)) return { ok: false, failure: `weft peers candidates --json on ${n.computer} does not list ${other.computer}: ${listed.stdout}${listed.stderr}` };
      // The cluster both announce is never taken from the announcement: the human gives it.
      const r = spawnSync(process.execPath, [...CLI_ARGS, 'peers', 'pin', other.fingerprint, '--cluster', 'home'], { env, cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
      if (r.status !== 0 || !/pinned beta|pinned alpha/.test(r.stdout)) return { ok: false, failure: `weft peers pin on ${n.computer} failed (${r.status}): ${r.stdout}${r.stderr}` };
      log(`mdns: ${n.computer}$ weft peers pin ${other.fingerprint} --cluster home -> ${r.stdout.trim()}`);
    }
    const t1 = Date.now();
    await A.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 2, note: 'after-pin' } });
    await B.emit({ event: 'mesh.test.ping', visibility: 'cluster', payload: { n: 2, note: 'after-pin-b' } });
    const flowed = await poll(async () => (await pings(B, 'after-pin')) === 1 && (await pings(A, 'after-pin-b')) === 1, 45_000);
    if (!flowed) return { ok: false, failure: `after both pins, events did not cross within 45 s\n${procs.map((x) => x.out()).join('\n')}` };
    log(`mdns: after both pins, cluster events crossed both ways in ${Date.now() - t1} ms`);
    if ((await pings(B, 'before-pin')) > 0) return { ok: false, failure: 'an event from before the pin was sent later' };
    const state = (await find(A, nb.fingerprint))?.state;
    if (state !== 'pinned') return { ok: false, failure: `beta's state on alpha is ${state}, expected pinned` };
    log('PASS mdns netns');
    return { ok: true };
  } finally {
    for (const { p } of procs) if (p.exitCode === null) p.kill('SIGTERM');
    await Promise.all(
      procs.map(
        ({ p }) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) return resolve();
            const t = setTimeout(() => {
              log('mdns: a daemon did not stop within 8 s of SIGTERM: killed');
              p.kill('SIGKILL');
              resolve();
            }, 8000);
            p.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
          }),
      ),
    );
    cleanup();
    rmSync(root, { recursive: true, force: true });
  }
}
