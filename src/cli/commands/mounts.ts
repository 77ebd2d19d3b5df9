/** `weft mounts`: the records of this node's links, mirrors and invoke mounts to its peers, through the daemon's API. */
import { Option } from 'commander';
import type { MountRecord } from '../../federation/index.js';
import type { CommandModule } from '../context.js';
import { table } from '../format.js';

const HELP = `
A mount is (peer, mode, name): how this node uses one peer.
  link     the mesh's own link (one per peer, recorded at each start)
  mirror   pulls the peer's cluster- or public-visible events into this node, resumably
  invoke   calls named handlers on the peer (weft invoke)

Each record keeps the caps the mount requires and prefers, the negotiated serializer
policy (crc32c_ok, deflate_ok, aead_ok, warn_down, cmp_max_ver), the provider, the state,
a mirror's resume token (the last source sequence applied here) and telemetry. Closing
keeps the record: creating it again reopens it where it stopped.

Examples:
  weft mounts create saturn --mode mirror                 # mirror saturn's visible events
  weft mounts create saturn --mode mirror --name deploys --stream 'deploy.*'
  weft mounts create saturn --mode invoke --require crc32c --prefer deflate,aead
  weft mounts list
  weft mounts show saturn/mirror/main
  weft mounts close saturn/mirror/main

See docs/federation.md.
`;

type Live = MountRecord & { live?: Record<string, unknown> };

const caps = (v: string) =>
  v
    .split(',')
    .map((c) => c.trim())
    .filter(Boolean);

function policy(m: MountRecord): string {
  const s = m.serializer;
  const on = [s.crc32c_ok && 'crc32c', s.deflate_ok && 'deflate', s.aead_ok && 'aead'].filter(Boolean);
  return on.length ? on.join('+') : '-';
}

function lag(m: Live): string {
  if (m.mode !== 'mirror') return '';
  const l = m.live?.lag;
  return typeof l === 'number' ? String(l) : '-';
}

function describe(m: Live): string {
  const lines = [
    `mount      ${m.key}`,
    `state      ${m.state}${m.error ? ` (${m.error})` : ''}`,
    `provider   ${m.provider ?? '-'}  (offers ${m.provCaps.join(', ') || '-'})`,
    `caps       required ${m.required.join(', ') || '-'}; preferred ${m.preferred.join(', ') || '-'}; upd_latest ${m.updLatest}`,
    `serializer crc32c_ok=${m.serializer.crc32c_ok} deflate_ok=${m.serializer.deflate_ok} aead_ok=${m.serializer.aead_ok} warn_down=${m.serializer.warn_down} cmp_max_ver=${m.serializer.cmp_max_ver}`,
  ];
  if (Object.keys(m.options).length) lines.push(`options    ${JSON.stringify(m.options)}`);
  if (m.mode === 'mirror') lines.push(`resume     after source sequence ${m.resumeToken}`);
  const t = { ...m.telemetry, ...(m.live ?? {}) };
  if (Object.keys(t).length) {
    lines.push('telemetry');
    for (const [k, v] of Object.entries(t)) lines.push(`  ${k.padEnd(14)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  }
  lines.push(`created    ${new Date(m.createdAt).toISOString()}${m.closedAt ? `; closed ${new Date(m.closedAt).toISOString()}` : ''}`);
  return lines.join('\n');
}

/** Adds `weft mounts list | show <mount> | create <peer> --mode ... | close <mount>`. */
export const mountsCommands: CommandModule = (ctx) => {
  const mounts = ctx.program.command('mounts').description('links, mirrors and invoke mounts to peers, as records').addHelpText('after', HELP);
  const call = async <T>(method: 'GET' | 'POST', path: string, body?: unknown) => (await ctx.client()).request<T>(method, path, body);

  mounts
    .command('list')
    .description('every mount with its state, provider, negotiated serializer caps and (mirrors) lag')
    .addOption(new Option('--mode <mode>', 'only mounts of this mode').choices(['link', 'mirror', 'invoke']))
    .option('--peer <computer>', 'only mounts to this peer')
    .option('-a, --all', 'closed mounts too')
    .action(async (o: { mode?: string; peer?: string; all?: boolean }) => {
      const qs = new URLSearchParams({ ...(o.mode ? { mode: o.mode } : {}), ...(o.peer ? { peer: o.peer } : {}), ...(o.all ? { all: 'true' } : {}) }).toString();
      const r = await call<{ mesh: boolean; transports: Array<{ provider: string; caps: string[] }>; mounts: Live[] }>('GET', `/api/mounts${qs ? `?${qs}` : ''}`);
      if (!r.mesh) return ctx.out('this node has no mesh (mesh.provider = "none"): no mounts', r);
      if (r.mounts.length === 0) return ctx.out('no mounts yet (weft mounts create <peer> --mode mirror|invoke)', r);
      const rows = r.mounts.map((m) => ({ mount: m.key, state: m.state, provider: m.provider ?? '-', serializer: policy(m), lag: lag(m), error: m.error ?? m.telemetry?.error ?? '' }));
      ctx.out(`${table(rows)}\n${r.transports.map((t) => `transport ${t.provider}: ${t.caps.join(', ')}`).join('\n')}`, r);
    });

  mounts
    .command('show <mount>')
    .description('one mount: caps, serializer policy, provider, resume token and telemetry (mount = peer/mode/name)')
    .action(async (key: string) => {
      const m = await call<Live>('GET', `/api/mounts/${key.split('/').map(encodeURIComponent).join('/')}${key.split('/').length === 2 ? '/main' : ''}`);
      ctx.out(describe(m), m);
    });

  mounts
    .command('create <peer>')
    .description('create (or reopen) a mount to a peer; a mirror starts pulling at once')
    .addOption(new Option('--mode <mode>', 'what the mount does: link (events both ways), mirror (pull a peer\'s stream) or invoke (call its handlers)').choices(['link', 'mirror', 'invoke']).makeOptionMandatory())
    .option('--name <name>', 'the mount\'s name (default main)')
    .option('--require <caps>', 'serializer caps the mount must have, comma-separated (crc32c, deflate, aead)')
    .option('--prefer <caps>', 'caps it should have; missing ones raise transport.flatneg (default crc32c)')
    .option('--no-warn-down', 'do not raise transport.flatneg when a preferred cap is dropped')
    .option('--upd-latest', 'latest-value updates over an unreliable provider only')
    .option('--stream <pattern>', 'mirror: only events of these types (e.g. deploy.*)')
    .option('--window <n>', 'mirror: source sequences per batch (beat_window), 1 to 100000', ctx.int('--window', { min: 1, max: 100_000 }))
    .option('--in-flight <n>', 'mirror: batches requested ahead (max_in_flight), 1 to 4', ctx.int('--in-flight', { min: 1, max: 4 }))
    .action(
      async (
        peer: string,
        o: { mode: string; name?: string; require?: string; prefer?: string; warnDown: boolean; updLatest?: boolean; stream?: string; window?: number; inFlight?: number },
      ) => {
        const options = {
          ...(o.stream ? { stream: o.stream } : {}),
          ...(o.window !== undefined ? { beat_window: o.window } : {}),
          ...(o.inFlight !== undefined ? { max_in_flight: o.inFlight } : {}),
        };
        const m = await call<Live>('POST', '/api/mounts', {
          peer,
          mode: o.mode,
          ...(o.name ? { name: o.name } : {}),
          ...(o.require ? { required: caps(o.require) } : {}),
          ...(o.prefer ? { preferred: caps(o.prefer) } : {}),
          ...(o.warnDown === false ? { warnDown: false } : {}),
          ...(o.updLatest ? { updLatest: true } : {}),
          ...(Object.keys(options).length ? { options } : {}),
        });
        if (m.state !== 'open') {
          process.exitCode = 1;
          return ctx.out(`mount ${m.key} recorded but not open: ${m.state}${m.error ? `: ${m.error}` : ''}`, m);
        }
        ctx.out(`mount ${m.key} open over ${m.provider} (serializer ${policy(m)})${m.mode === 'mirror' ? `; mirroring after source sequence ${m.resumeToken}` : ''}`, m);
      },
    );

  mounts
    .command('close <mount>')
    .description('close a mount; its record (and a mirror\'s resume token) stays, so creating it again resumes')
    .option('--reason <text>', 'why, for the audit log')
    .action(async (key: string, o: { reason?: string }) => {
      const parts = key.split('/');
      const path = `/api/mounts/${parts.map(encodeURIComponent).join('/')}${parts.length === 2 ? '/main' : ''}/close`;
      const m = await call<Live>('POST', path, o.reason ? { reason: o.reason } : {});
      ctx.out(`mount ${m.key} closed (record kept)`, m);
    });
};
