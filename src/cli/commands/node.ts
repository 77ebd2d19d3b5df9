/** CLI: pipeline, quarantine, identity, peers, mesh and audit commands. */
import type { CliContext } from '../context.js';
import { table } from '../format.js';

type Row = Record<string, unknown>;

export function registerNodeCommands(ctx: CliContext): void {
  const { program, client, out, int } = ctx;
  const get = async <T>(path: string) => (await client()).request<T>('GET', path);
  const post = async <T>(path: string, body: unknown = {}) => (await client()).request<T>('POST', path, body);

  program
    .command('pipeline')
    .description('the pipeline')
    .command('show')
    .description('cartridges in the order they run, with invocation counts')
    .action(async () => {
      const p = await get<{ order: string[]; invocations: Record<string, number> }>('/api/pipeline');
      out(p.order.map((name, i) => `${String(i + 1).padStart(2)}. ${name.padEnd(28)} ${p.invocations[name] ?? 0} invocations`).join('\n'), p);
    });

  const q = program.command('quarantine').description('events the trust evaluator held back');
  q.command('list')
    .description('held events (or --status released|dropped|all)')
    .option('--status <s>', 'held, released, dropped or all', 'held')
    .option('--limit <n>', 'how many', int('--limit'), 50)
    .action(async (o: { status: string; limit: number }) => {
      const r = await get<{ items: Row[]; totals: Row }>(`/api/quarantine?status=${encodeURIComponent(o.status)}&limit=${o.limit}`);
      out(`${table(r.items.map((i) => ({ id: i.id, type: i.eventType, source: i.source, reason: i.reason, status: i.status, at: i.createdAt })))}\ntotals: ${JSON.stringify(r.totals)}`, r);
    });
  q.command('show <id>')
    .description('one quarantined event with its envelope')
    .action(async (id: string) => {
      const r = await get<Row>(`/api/quarantine/${int('id')(id)}`);
      out(JSON.stringify(r, null, 2), r);
    });
  q.command('release <id>')
    .description('let it into the pipeline (it continues after the trust stage)')
    .action(async (id: string) => {
      const r = await post<Row>(`/api/quarantine/${int('id')(id)}/release`);
      out(`released quarantined event ${id} (${String(r.eventType)})`, r);
    });
  q.command('drop <id>')
    .description('discard it for good')
    .action(async (id: string) => {
      const r = await post<Row>(`/api/quarantine/${int('id')(id)}/drop`);
      out(`dropped quarantined event ${id}`, r);
    });

  const rej = program.command('rejections').description('input that never became an event: malformed stream entries, refused frames, rejected envelopes');
  rej
    .command('list')
    .description('refusals, newest first, with their code, reason and the field that failed')
    .option('--origin <o>', 'only from here (bus:redis, mesh:<peer>, trust:<source>, ...)')
    .option('--code <c>', 'only this code (ENTRY_INVALID, FRAME_BAD_SIGNATURE, ...)')
    .option('--limit <n>', 'how many', int('--limit'), 50)
    .option('--cursor <id>', 'page: nextCursor of the previous page', int('--cursor'))
    .action(async (o: { origin?: string; code?: string; limit: number; cursor?: number }) => {
      const qs = new URLSearchParams({ limit: String(o.limit) });
      if (o.origin) qs.set('origin', o.origin);
      if (o.code) qs.set('code', o.code);
      if (o.cursor) qs.set('cursor', String(o.cursor));
      const r = await get<{ items: Row[]; nextCursor: number | null; total: number }>(`/api/rejections?${qs}`);
      out(
        `${table(r.items.map((i) => ({ id: i.id, origin: i.origin, ref: i.ref, code: i.code, field: i.field ?? '-', seen: i.count, reason: String(i.reason).slice(0, 80), at: i.lastAt })))}\n${r.total} in all${r.nextCursor ? `; more: --cursor ${r.nextCursor}` : ''}`,
        r,
      );
    });
  rej
    .command('show <id>')
    .description('one refusal with the raw input (frames as base64: decode with weft mesh decode --base64)')
    .action(async (id: string) => {
      const r = await get<Row>(`/api/rejections/${int('id')(id)}`);
      out(JSON.stringify(r, null, 2), r);
    });

  const identity = program.command('identity').description('this node\'s Ed25519 identity');
  identity
    .command('show')
    .description('node id and fingerprint')
    .action(async () => {
      const r = await get<Row>('/api/identity');
      out(`computer:    ${String(r.computer)}${r.cluster ? ` (cluster ${String(r.cluster)})` : ''}\nnode id:     ${String(r.nodeId)}\nfingerprint: ${String(r.fingerprint)}`, r);
    });
  identity
    .command('rotate')
    .description('make a new key, endorsed by the old one, and announce it to every peer')
    .action(async () => {
      const r = await post<Row>('/api/identity/rotate');
      out(
        `new node id: ${String(r.nodeId)}\nfingerprint: ${String(r.fingerprint)}\nannounced to: ${(r.announced as string[]).join(', ') || '(no peers)'}${(r.failed as string[]).length ? `\nnot reached: ${(r.failed as string[]).join(', ')} (they keep refusing the new key until told)` : ''}\nTLS links use the new certificate after the daemon restarts.`,
        r,
      );
    });

  program
    .command('peers')
    .description('peers this node knows')
    .command('list')
    .description('computer, cluster, trust level and score, where it came from')
    .action(async () => {
      const r = await get<Row[]>('/api/peers');
      out(table(r.map((p) => ({ computer: p.computer, cluster: p.cluster, trust: p.trustLevel, score: p.trustScore, origin: p.origin, address: p.address, nodeId: p.nodeId }))), r);
    });

  const mesh = program.command('mesh').description('the mesh: links to other nodes');
  mesh
    .command('status')
    .description('self, provider, and per peer: state, caps, rtt, outbox and counters')
    .action(async () => {
      const r = await get<{ enabled: boolean; self: Row; provider?: string; peers: Row[]; counters?: Row }>('/api/mesh/status');
      if (!r.enabled) {
        out(`mesh is off on ${String(r.self.computer)} (set mesh.provider to tls or redis)`, r);
        return;
      }
      const rows = r.peers.map((p) => {
        const sent = p.sent as Row;
        const t = (p.telemetry as Row | null) ?? {};
        return {
          peer: p.computer,
          cluster: p.cluster,
          state: p.state,
          caps: (p.negotiatedCaps as string[]).join(','),
          rtt: p.rttMs === null ? '-' : `${Number(p.rttMs).toFixed(1)}ms`,
          outbox: p.outbox,
          sent: sent.envelopes,
          framesIn: t.framesReceived ?? 0,
          resends: sent.resends,
        };
      });
      out(`self: ${String(r.self.computer)} ${String(r.self.fingerprint)} via ${String(r.provider)}\n${table(rows)}\ncounters: ${JSON.stringify(r.counters)}`, r);
    });
  mesh
    .command('send <computer> <text...>')
    .description('send a test message; the other node shows it as a notification')
    .action(async (computer: string, text: string[]) => {
      const r = await post<Row>('/api/mesh/send', { computer, text: text.join(' ') });
      out(`sent to ${computer}`, r);
    });

  const audit = program.command('audit').description('the hash-chained audit log');
  audit
    .command('verify')
    .description('check that no entry was edited or deleted')
    .action(async () => {
      const r = await get<{ ok: boolean; entries: number; message?: string; firstBadSeq?: number }>('/api/audit/verify');
      out(r.ok ? `audit log intact: ${r.entries} entries` : `audit log damaged at entry ${r.firstBadSeq}: ${r.message}`, r);
      if (!r.ok) process.exitCode = 1;
    });
  audit
    .command('export')
    .description('every entry as JSON lines')
    .action(async () => {
      process.stdout.write(await (await client()).text('/api/audit/export'));
    });
}
