/** CLI: pipeline, quarantine, rejections, dead letters, identity, peers, mesh and audit commands. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Option } from 'commander';
import { redisKeys, WEFT_ENTRY_MARK } from '../../config/index.js';
import { WeftError } from '../../errors/index.js';
import { createRedisClient } from '../../redis/index.js';
import { type CliContext, PAGE_LIMIT, POSITION } from '../context.js';
import { table } from '../format.js';
import { showDomainPipeline } from './domains.js';

/** A fingerprint as `weft peers candidates` lists it (16 hex digits, any case, spaces trimmed); a usage error otherwise, before any request. */
function fingerprintArg(fp: string): string {
  const f = fp.trim().toLowerCase();
  if (!/^[0-9a-f]{16}$/.test(f)) {
    throw new WeftError('WEFT_VALIDATION', `'${fp}' is not a fingerprint: 16 hex digits, as 'weft peers candidates' lists it (and 'weft identity show' prints it on the other computer)`);
  }
  return f;
}

type Row = Record<string, unknown>;

/**
 * The node's identity as the daemon answers it, or, when no daemon answers, from its key file
 * (the identity is a file on disk: a user checking a fingerprint needs no running node). A
 * daemon that answers but refuses (a wrong token) is an error, not a reason to read the file.
 */
async function identityOf(ctx: CliContext): Promise<Row> {
  try {
    return await (await ctx.client()).request<Row>('GET', '/api/identity');
  } catch (err) {
    if (!(err instanceof WeftError) || err.code !== 'WEFT_STOPPED') throw err;
    const cfg = ctx.cfg();
    const keyFile = join(cfg.data_dir, 'identity.key');
    if (!existsSync(keyFile)) throw new WeftError('WEFT_NOT_FOUND', `this node has no identity yet: no daemon answers and there is no key file at ${keyFile} ('weft daemon' makes one at its first start)`);
    const { loadIdentity } = await import('../../identity/index.js');
    const id = loadIdentity(keyFile);
    process.stderr.write(`weft: note: no daemon answers; read from ${keyFile}\n`);
    return { computer: cfg.computer.name, cluster: cfg.computer.cluster ?? null, nodeId: id.nodeId, fingerprint: id.fingerprint };
  }
}

export function registerNodeCommands(ctx: CliContext): void {
  const { program, client, out, int } = ctx;
  const get = async <T>(path: string) => (await client()).request<T>('GET', path);
  const post = async <T>(path: string, body: unknown = {}) => (await client()).request<T>('POST', path, body);

  program
    .command('pipeline')
    .description('the pipeline')
    .command('show')
    .description(
      "cartridges in the order they run, with invocation counts (--domain: a domain's dependency DAG)",
    )
    .option('--domain <domain>', "print this domain's dependency DAG by level instead of the system pipeline")
    .action(async (o: { domain?: string }) => {
      if (o.domain !== undefined) return showDomainPipeline(ctx, o.domain);
      const p = await get<{ order: string[]; invocations: Record<string, number> }>('/api/pipeline');
      out(
        p.order
          .map(
            (name, i) =>
              `${String(i + 1).padStart(2)}. ${name.padEnd(28)} ${p.invocations[name] ?? 0} invocations`,
          )
          .join('\n'),
        p,
      );
    });

  const q = program.command('quarantine').description('events the trust evaluator held back');
  q.command('list')
    .description('held events, newest first (or --status released|dropped|all)')
    .addOption(new Option('--status <s>', 'which: held (waiting), released, dropped or all').choices(['held', 'released', 'dropped', 'all']).default('held'))
    .option('--source <s>', 'only from this source')
    .option('--type <t>', 'only of this event type')
    .option('--limit <n>', 'how many, 1 to 1000', int('--limit', PAGE_LIMIT), 50)
    .option('--cursor <id>', 'page: nextCursor of the previous page', int('--cursor', POSITION))
    .action(async (o: { status: string; source?: string; type?: string; limit: number; cursor?: number }) => {
      const qs = new URLSearchParams({ status: o.status, limit: String(o.limit) });
      if (o.source) qs.set('source', o.source);
      if (o.type) qs.set('type', o.type);
      if (o.cursor) qs.set('cursor', String(o.cursor));
      // `held` is absent from a daemon of an older Weft (not yet restarted after an upgrade).
      const r = await get<{ items: Row[]; nextCursor: number | null; held?: number; totals: Row }>(`/api/quarantine?${qs}`);
      out(
        `${table(r.items.map((i) => ({ id: i.id, type: i.eventType, source: i.source, reason: i.reason, status: i.status, at: i.createdAt })))}\n${r.held ?? 'an unknown number'} held in all${r.nextCursor ? `; more: --cursor ${r.nextCursor}` : ''}; totals: ${JSON.stringify(r.totals)}`,
        r,
      );
    });
  q.command('show <id>')
    .description('one quarantined event with its envelope')
    .action(async (id: string) => {
      const r = await get<Row>(`/api/quarantine/${int('id', POSITION)(id)}`);
      out(JSON.stringify(r, null, 2), r);
    });
  /** `<id>`, or every held event of --source / --type / --all (not both ways at once). */
  const bulkOf = (id: string | undefined, o: { source?: string; type?: string; all?: boolean }, verb: string) => {
    const bulk = o.source !== undefined || o.type !== undefined || o.all === true;
    if (id !== undefined && bulk) throw new WeftError('WEFT_VALIDATION', `${verb}: give an id, or --source / --type / --all, not both`);
    if (id === undefined && !bulk) throw new WeftError('WEFT_VALIDATION', `${verb}: give an id, or --source / --type / --all for every held event of them`);
    return bulk ? { ...(o.source !== undefined ? { source: o.source } : {}), ...(o.type !== undefined ? { type: o.type } : {}), ...(o.all ? { all: true } : {}) } : undefined;
  };
  q.command('release [id]')
    .description('let it into the pipeline (it continues after the trust stage); with --source/--type/--all every held event of them, oldest first')
    .option('--source <s>', 'every held event from this source')
    .option('--type <t>', 'every held event of this type')
    .option('--all', 'every held event')
    .action(async (id: string | undefined, o: { source?: string; type?: string; all?: boolean }) => {
      const bulk = bulkOf(id, o, 'release');
      if (bulk) {
        const r = await post<{ released: number }>('/api/quarantine/release', bulk);
        return out(`released ${r.released} quarantined events`, r);
      }
      const r = await post<Row>(`/api/quarantine/${int('id', POSITION)(id as string)}/release`);
      out(`released quarantined event ${id} (${String(r.eventType)})`, r);
    });
  q.command('drop [id]')
    .description('discard it for good; with --source/--type/--all every held event of them')
    .option('--source <s>', 'every held event from this source')
    .option('--type <t>', 'every held event of this type')
    .option('--all', 'every held event')
    .action(async (id: string | undefined, o: { source?: string; type?: string; all?: boolean }) => {
      const bulk = bulkOf(id, o, 'drop');
      if (bulk) {
        const r = await post<{ dropped: number }>('/api/quarantine/drop', bulk);
        return out(`dropped ${r.dropped} quarantined events`, r);
      }
      const r = await post<Row>(`/api/quarantine/${int('id', POSITION)(id as string)}/drop`);
      out(`dropped quarantined event ${id}`, r);
    });

  const rej = program
    .command('rejections')
    .description(
      'input that never became an event: malformed stream entries, refused frames, rejected envelopes',
    );
  rej
    .command('list')
    .description('refusals, newest first, with their code, reason and the field that failed')
    .option('--origin <o>', 'only from here (bus:redis, mesh:<peer>, trust:<source>, ...)')
    .option('--code <c>', 'only this code (ENTRY_INVALID, FRAME_BAD_SIGNATURE, ...)')
    .option('--limit <n>', 'how many, 1 to 1000', int('--limit', PAGE_LIMIT), 50)
    .option('--cursor <id>', 'page: nextCursor of the previous page', int('--cursor', POSITION))
    .action(async (o: { origin?: string; code?: string; limit: number; cursor?: number }) => {
      const qs = new URLSearchParams({ limit: String(o.limit) });
      if (o.origin) qs.set('origin', o.origin);
      if (o.code) qs.set('code', o.code);
      if (o.cursor) qs.set('cursor', String(o.cursor));
      const r = await get<{ items: Row[]; nextCursor: number | null; total: number }>(
        `/api/rejections?${qs}`,
      );
      out(
        `${table(r.items.map((i) => ({ id: i.id, origin: i.origin, ref: i.ref, code: i.code, field: i.field ?? '-', seen: i.count, reason: String(i.reason).slice(0, 80), at: i.lastAt })))}\n${r.total} in all${r.nextCursor ? `; more: --cursor ${r.nextCursor}` : ''}`,
        r,
      );
    });
  rej
    .command('show <id>')
    .description('one refusal with the raw input (frames as base64: decode with weft mesh decode --base64)')
    .action(async (id: string) => {
      const r = await get<Row>(`/api/rejections/${int('id', POSITION)(id)}`);
      out(JSON.stringify(r, null, 2), r);
    });

  const dead = program
    .command('deadletters')
    .description('events a cartridge failed on (threw, timed out, returned garbage): kept here, newest first, up to store.max_dead_letters')
    .addHelpText(
      'after',
      `
The event itself stays in the log; the dead letter keeps a copy of it as it was, the stage
that failed on it and why. A system.cartridge.failed notification says so as it happens.

Examples:
  weft deadletters list
  weft deadletters list --cartridge domain:ops/triage
  weft deadletters show 12`,
    );
  dead
    .command('list')
    .description('dead letters, newest first: the stage that failed, the event and the error')
    .option('--cartridge <name>', "only this stage's: a cartridge name, domain:<domain>/<cartridge>, mesh-sender:<peer>")
    .option('--type <type>', 'only events of this type')
    .option('--limit <n>', 'how many, 1 to 1000', int('--limit', PAGE_LIMIT), 50)
    .option('--cursor <id>', 'page: nextCursor of the previous page', int('--cursor', POSITION))
    .action(async (o: { cartridge?: string; type?: string; limit: number; cursor?: number }) => {
      const qs = new URLSearchParams({ limit: String(o.limit) });
      if (o.cartridge) qs.set('cartridge', o.cartridge);
      if (o.type) qs.set('type', o.type);
      if (o.cursor) qs.set('cursor', String(o.cursor));
      const r = await get<{ items: Row[]; nextCursor: number | null; total: number; kept: number }>(`/api/deadletters?${qs}`);
      if (r.total === 0) return out('no dead letters: no cartridge has failed on an event (or they were pruned)', r);
      out(
        `${table(r.items.map((i) => ({ id: i.id, cartridge: i.cartridge, event: i.eventType, 'event id': i.eventId, error: String(i.error).slice(0, 80), at: i.createdAt })))}\n${r.total} kept (at most ${r.kept})${r.nextCursor ? `; more: --cursor ${r.nextCursor}` : ''}`,
        r,
      );
    });
  dead
    .command('show <id>')
    .description('one dead letter: the stage, the whole error and the event as it was')
    .action(async (id: string) => {
      const r = await get<Row>(`/api/deadletters/${int('id', POSITION)(id)}`);
      out(JSON.stringify(r, null, 2), r);
    });

  program
    .command('deliveries')
    .description('notifications sent to people (Telegram, Discord, WhatsApp, webhook): what went, what waits, and what was given up and why')
    .addHelpText(
      'after',
      `
Each row is one notification change on one channel. A failed row says why (the API's refusal,
the tries it took, or that too many already waited); the secrets of the channel never show.

Examples:
  weft deliveries list --status failed
  weft deliveries list --channel telegram --limit 20`,
    )
    .command('list')
    .description('delivery rows, newest first: channel, status, notification, tries and the last error')
    .addOption(new Option('--status <status>', 'only rows in this state').choices(['pending', 'sent', 'failed']))
    .option('--channel <name>', 'only this channel: telegram, discord, whatsapp or webhook')
    .option('--limit <n>', 'how many', int('--limit'), 50)
    .option('--cursor <id>', 'page: nextCursor of the previous page', int('--cursor'))
    .action(async (o: { status?: string; channel?: string; limit: number; cursor?: number }) => {
      const qs = new URLSearchParams({ limit: String(o.limit) });
      if (o.status) qs.set('status', o.status);
      if (o.channel) qs.set('channel', o.channel);
      if (o.cursor) qs.set('cursor', String(o.cursor));
      const r = await get<{ items: Row[]; nextCursor: number | null; counts: Record<string, Record<string, number>> }>(`/api/deliveries?${qs}`);
      const counts = Object.entries(r.counts)
        .map(([ch, c]) => `${ch}: ${c.sent ?? 0} sent, ${c.pending ?? 0} waiting, ${c.failed ?? 0} failed`)
        .join('; ');
      if (r.items.length === 0) {
        return out(`no deliveries${o.status ? ` ${o.status === 'pending' ? 'waiting' : o.status}` : ''}${o.channel ? ` on ${o.channel}` : ''}${counts ? ` (${counts})` : ' (no channel has recorded one)'}`, r);
      }
      out(
        `${table(r.items.map((i) => ({ id: i.id, channel: i.channel, status: i.status, notification: i.notificationId, change: i.changeKind, tries: i.attempts, error: String(i.lastError ?? '-').slice(0, 100), at: new Date(Number(i.sentAt ?? i.createdAt)).toISOString() })))}\n${counts}${r.nextCursor ? `; more: --cursor ${r.nextCursor}` : ''}`,
        r,
      );
    });

  const identity = program.command('identity').description("this node's Ed25519 identity");
  identity
    .command('show')
    .description("node id and fingerprint; without a running daemon, read from the key file in the data dir (identity.key)")
    .action(async () => {
      const r = await identityOf(ctx);
      out(
        `computer:    ${String(r.computer)}${r.cluster ? ` (cluster ${String(r.cluster)})` : ''}\nnode id:     ${String(r.nodeId)}\nfingerprint: ${String(r.fingerprint)}`,
        r,
      );
    });
  identity
    .command('rotate')
    .description('make a new key, endorsed by the old one, and announce it to every peer')
    .action(async () => {
      const r = await post<Row>('/api/identity/rotate');
      out(
        `new node id: ${String(r.nodeId)}\nfingerprint: ${String(r.fingerprint)}\nannounced to: ${(r.announced as string[]).join(', ') || '(no peers)'}${(r.failed as string[]).length ? `\nnot reached: ${(r.failed as string[]).join(', ')} (they keep refusing the new key until told)` : ''}\nTLS links use the new certificate after the daemon restarts.\nA key backup made before now holds the old key, which peers refuse from now on: export the new one (weft identity export --encrypted --out <file>).`,
        r,
      );
    });

  const peers = program
    .command('peers')
    .description('peers this node knows, and candidates found on the local network');
  peers
    .command('list')
    .description('computer, cluster, trust level and score, where it came from')
    .action(async () => {
      const r = await get<Row[]>('/api/peers');
      out(
        table(
          r.map((p) => ({
            computer: p.computer,
            cluster: p.cluster,
            trust: p.trustLevel,
            score: p.trustScore,
            origin: p.origin,
            address: p.address,
            nodeId: p.nodeId,
          })),
        ),
        r,
      );
    });
  peers
    .command('candidates')
    .description(
      'nodes found by mDNS: no trust and no events until pinned (or admitted by privacy.subnet_trust)',
    )
    .addOption(
      new Option('--state <state>', 'only these').choices(['candidate', 'pinned', 'admitted', 'ignored']),
    )
    .option('--limit <n>', 'how many, 1 to 1000', int('--limit', PAGE_LIMIT), 200)
    .action(async (o: { state?: string; limit: number }) => {
      const qs = new URLSearchParams({ limit: String(o.limit) });
      if (o.state) qs.set('state', o.state);
      const r = await get<{ mdns: boolean; candidates: Row[] }>(`/api/peers/candidates?${qs}`);
      const rows = r.candidates.map((c) => ({
        fingerprint: c.fingerprint,
        computer: c.computer,
        cluster: c.cluster ?? '-',
        announced: c.announcedCluster ?? '-',
        state: c.admitting ? 'admitting' : c.state,
        address: (c.address as string | undefined) ?? (c.addresses as string[])[0] ?? '-',
        via: c.via,
        lastSeen: new Date(c.lastSeen as number).toISOString(),
      }));
      const hint = r.mdns
        ? ''
        : '\nmDNS is off on this node (mesh.enable_mdns = false): nothing new is discovered';
      const pinHint = rows.some((x) => x.state === 'candidate')
        ? '\npin one with: weft peers pin <fingerprint> [--cluster <name>] (ANNOUNCED is what it says about itself: unchecked, never used)'
        : '';
      out(`${rows.length ? table(rows) : '(no candidates)'}${hint}${pinHint}`, r);
    });
  peers
    .command('pin <fingerprint>')
    .description(
      'make a candidate a peer: pin its key, dial it, share with it by its trust level (kept across restarts). ' +
        'What it announced (name aside) grants nothing: it joins a cluster only with --cluster, and its level is share_to unless --trust says otherwise. ' +
        'On a peer already pinned, --cluster and --trust change its pin.',
    )
    .addOption(
      new Option(
        '--trust <level>',
        'its trust level (default share_to, whatever cluster it announces; the sharing policy may still set it, e.g. privacy.default_trust)',
      ).choices(['untrusted', 'share_to', 'query_from', 'peer', 'supervisor']),
    )
    .option(
      '--cluster <name>',
      "put it in this cluster: it then gets this node's cluster events (default: none, public events only; the cluster it announces is never taken)",
    )
    .action(async (fingerprint: string, o: { trust?: string; cluster?: string }) => {
      const r = await post<{ candidate: Row; changed: boolean; trustLevel: string; cluster?: string }>(
        '/api/peers/pin',
        {
          fingerprint: fingerprintArg(fingerprint),
          ...(o.trust ? { trust: o.trust } : {}),
          ...(o.cluster ? { cluster: o.cluster } : {}),
        },
      );
      const c = r.candidate;
      const where = (c.address as string | undefined) ?? (c.addresses as string[])[0];
      const cluster = r.cluster ? ` in cluster ${r.cluster}` : ' (no cluster: public events only)';
      out(
        r.changed
          ? `pinned ${String(c.computer)} (${String(c.fingerprint)}) as ${r.trustLevel}${cluster}${where ? `, dialling ${where}` : ''}`
          : `${String(c.computer)} (${String(c.fingerprint)}) is a peer already (${String(c.state)}, ${r.trustLevel}${r.cluster ? `, cluster ${r.cluster}` : ''}); change it with --cluster or --trust, or weft trust set`,
        r,
      );
    });
  peers
    .command('ignore <fingerprint>')
    .description('set a candidate aside: no more notifications about it, and subnet policy never admits it')
    .action(async (fingerprint: string) => {
      const r = await post<{ candidate: Row }>('/api/peers/ignore', { fingerprint: fingerprintArg(fingerprint) });
      out(`ignoring ${String(r.candidate.computer)} (${String(r.candidate.fingerprint)})`, r);
    });

  program
    .command('status')
    .description(
      'the node at a glance: bus, mesh, pipeline, API, and what is wrong right now; exit code 0 when nothing is, 3 when the node reports a problem, 1 when no daemon answers',
    )
    .action(async () => {
      const answer = await get<Health>('/api/health');
      // A daemon started before this installation was upgraded answers with fewer fields; its
      // missing problem list is itself the problem (before, this printed a TypeError, exit 1).
      const h: Health = Array.isArray(answer.problems) ? answer : { ...answer, problems: [olderDaemon(answer)] };
      const m = h.mesh ? await get<{ peers: Row[] }>('/api/mesh/status') : undefined;
      if ((h.problems ?? []).length > 0) process.exitCode = 3;
      out(statusText(h, m?.peers), { ...h, ...(m ? { peers: m.peers } : {}) });
    });

  const mesh = program.command('mesh').description('the mesh: links to other nodes');
  mesh
    .command('status')
    .description('self, provider, and per peer: state, caps, rtt, outbox and counters')
    .action(async () => {
      const r = await get<{
        enabled: boolean;
        self: Row;
        provider?: string;
        peers: Row[];
        counters?: Row;
        discovery?: unknown;
      }>('/api/mesh/status');
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
          caps: Array.isArray(p.negotiatedCaps) ? p.negotiatedCaps.join(',') : String(p.negotiatedCaps),
          rtt: p.rttMs === null ? '-' : `${Number(p.rttMs).toFixed(1)}ms`,
          outbox: p.outbox,
          sent: sent.envelopes,
          framesIn: t.framesReceived ?? 0,
          resends: sent.resends,
        };
      });
      const d = r.discovery as { since: number; failures: number; lastError: string } | null | undefined;
      const failing = d
        ? `\ndiscovery: failing for ${Math.round((Date.now() - d.since) / 1000)} s (${d.failures} tries): ${d.lastError}; the peers known so far are kept, frames wait in the outboxes`
        : '';
      out(
        `self: ${String(r.self.computer)} ${String(r.self.fingerprint)} via ${String(r.provider)}${failing}\n${table(rows)}\ncounters: ${JSON.stringify(r.counters)}`,
        r,
      );
    });
  mesh
    .command('send <computer> <text...>')
    .description('send a test message; the other node shows it as a notification')
    .action(async (computer: string, text: string[]) => {
      const r = await post<Row>('/api/mesh/send', { computer, text: text.join(' ') });
      out(`sent to ${computer}`, r);
    });

  mesh
    .command('decode [entry-id]')
    .description(
      "print a mesh frame as JSON with its verdict (signature, replay): a stream entry by id (from this node's inbox, or --stream), or stdin (raw bytes, base64, or a TeleClaude mesh_event payload)",
    )
    .option(
      '--stream <name>',
      "the stream the entry is on (default: this node's inbox, {prefix}messages:{computer})",
    )
    .action(async (entryId: string | undefined, o: { stream?: string }) => {
      const body =
        entryId && entryId !== '-' ? await entryToDecode(ctx, entryId, o.stream) : await stdinToDecode();
      if ('foreign' in body) {
        out(JSON.stringify(body.foreign, null, 2), body.foreign);
        process.exitCode = 1;
        return;
      }
      const r = await post<{ verdict: { ok: boolean } }>('/api/mesh/decode', body);
      out(JSON.stringify(r, null, 2), r);
      if (!r.verdict.ok) process.exitCode = 1;
    });

  const audit = program.command('audit').description('the hash-chained audit log');
  audit
    .command('verify')
    .description('check that no entry was edited or deleted')
    .action(async () => {
      const r = await get<{ ok: boolean; entries: number; message?: string; firstBadSeq?: number }>(
        '/api/audit/verify',
      );
      out(
        r.ok
          ? `audit log intact: ${r.entries} entries`
          : `audit log damaged at entry ${r.firstBadSeq}: ${r.message}`,
        r,
      );
      if (!r.ok) process.exitCode = 1;
    });
  audit
    .command('export')
    .description('every entry as JSON lines')
    .action(async () => {
      process.stdout.write(await (await client()).text('/api/audit/export'));
    });
}

type DecodeRequest = { base64: string } | { teleclaude: string } | { foreign: Record<string, unknown> };

/** Reads one entry from Redis and says what to decode: a Weft frame, a TeleClaude event, or neither. */
async function entryToDecode(ctx: CliContext, entryId: string, stream?: string): Promise<DecodeRequest> {
  const cfg = ctx.cfg();
  if (!cfg.redis.url)
    throw new WeftError(
      'WEFT_CONFIG',
      'reading a stream entry needs redis.url (or pipe the frame on stdin: weft mesh decode -)',
    );
  const cluster = cfg.redis.cluster;
  const name = stream ?? redisKeys(cfg.redis.prefix, cfg.computer.name, { cluster }).inbox(cfg.computer.name);
  const client = await createRedisClient(cfg.redis.url, {
    cluster,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
  });
  try {
    await client.connect();
    const rows = (await client.xrangeBuffer(name, entryId, entryId)) as Array<[Buffer, Buffer[]]>;
    const row = rows[0];
    if (!row) throw new WeftError('WEFT_NOT_FOUND', `no entry ${entryId} on ${name}`);
    const f = new Map<string, Buffer>();
    for (let i = 0; i + 1 < row[1].length; i += 2)
      f.set((row[1][i] as Buffer).toString(), row[1][i + 1] as Buffer);
    const payload = f.get('payload');
    if (f.get(WEFT_ENTRY_MARK.field)?.toString() === WEFT_ENTRY_MARK.value && payload)
      return { base64: payload.toString('base64') };
    if (f.get('type')?.toString() === 'mesh_event' && payload)
      return { teleclaude: payload.toString('utf8') };
    return {
      foreign: {
        kind: 'foreign-entry',
        stream: name,
        id: entryId,
        fields: Object.fromEntries([...f].map(([k, v]) => [k, v.toString('utf8').slice(0, 2000)])),
        verdict: {
          ok: false,
          code: 'FOREIGN_ENTRY',
          reason:
            "not a Weft frame nor a TeleClaude mesh_event: another program's entry, which Weft leaves alone",
        },
      },
    };
  } finally {
    client.disconnect();
  }
}

/** stdin: a TeleClaude payload (JSON), base64 text, or the raw frame bytes. */
async function stdinToDecode(): Promise<DecodeRequest> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of process.stdin) {
    size += (c as Buffer).length;
    if (size > 8 * 1024 * 1024)
      throw new WeftError('WEFT_TOO_LARGE', 'stdin holds more than 8 MiB: no frame is that large');
    chunks.push(c as Buffer);
  }
  const buf = Buffer.concat(chunks);
  const text = buf.toString('utf8').trim();
  if (text.startsWith('{')) return { teleclaude: text };
  if (/^[A-Za-z0-9+/=\s]+$/.test(text) && text.length > 0) return { base64: text.replace(/\s+/g, '') };
  return { base64: buf.toString('base64') };
}

/**
 * The fields of `/api/health` that `weft status` shows. Those marked optional are absent from a
 * daemon of an older Weft (one started before this installation was upgraded).
 */
interface Health {
  problems?: string[];
  version: string;
  computer: string;
  cluster: string | null;
  bus: string;
  busStats?: { appended: number; journal?: number; unsent?: number; connection?: string };
  pid: number;
  uptimeSeconds: number;
  processor: { processed: number; failed: number; rejected: number; duplicates: number };
  connections?: { open: number; max: number };
  mesh: string | null;
  /** Each configured delivery channel's counters by name; an older daemon sent Telegram's alone, or null. */
  delivery?: Record<string, ChannelHealth> | ChannelHealth | null;
  /** The privacy layer's query counters since the start (absent from an older daemon). */
  privacy?: { queriesSent: number; queriesAnswered: number; queriesDenied: number; queriesDropped: number; queriesBusy?: number };
}

/** The fields of a delivery channel's stats that `weft status` shows. */
interface ChannelHealth {
  channel: string;
  sent: number;
  failed: number;
  /** Rows waiting in the table, -1 when unknown. */
  pending: number;
}

/** The delivery channels in a health answer, whichever shape the daemon sent. */
function deliveryChannelsOf(d: Health['delivery']): ChannelHealth[] {
  if (!d) return [];
  if (typeof (d as ChannelHealth).channel === 'string') return [d as ChannelHealth];
  return Object.values(d as Record<string, ChannelHealth>);
}

/** The problem a daemon without a problem list has: it runs an older Weft than this command. */
function olderDaemon(h: Health): string {
  return `the daemon (pid ${h.pid}, up ${uptime(h.uptimeSeconds)}) runs an older Weft than this weft command: it reports no list of problems, so what is wrong cannot be shown; restart it to run the installed version (stop it and start 'weft daemon', or 'systemctl --user restart weft' under 'weft service install')`;
}

function uptime(s: number): string {
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86_400)} days`;
}

/**
 * `weft status` as text.
 * @example
 * statusText(health, peers)
 * // "node 'laptop' (cluster home), weft 0.1.0, pid 812, up 5 min\nbus: redis, connection ready ..."
 */
export function statusText(h: Health, peers: Row[] | undefined): string {
  const lines = [
    `node '${h.computer}'${h.cluster ? ` (cluster ${h.cluster})` : ''}, weft ${h.version}, pid ${h.pid}, up ${uptime(h.uptimeSeconds)}`,
  ];
  const b = h.busStats ?? { appended: 0 };
  const waiting = (b.journal ?? 0) + (b.unsent ?? 0);
  lines.push(
    `bus: ${h.bus === 'sqlite' ? 'embedded (SQLite)' : h.bus}${b.connection ? `, connection ${b.connection}` : ''}${waiting > 0 ? `, ${waiting} event${waiting === 1 ? '' : 's'} in the journal for the stream` : ''}`,
  );
  if (h.mesh && peers) {
    const states = new Map<string, number>();
    let outbox = 0;
    for (const p of peers) {
      states.set(String(p.state), (states.get(String(p.state)) ?? 0) + 1);
      outbox += Number(p.outbox ?? 0);
    }
    const byState = [...states].map(([s, n]) => `${n} ${s}`).join(', ');
    lines.push(
      `mesh: ${h.mesh}, ${peers.length} peer${peers.length === 1 ? '' : 's'}${byState ? ` (${byState})` : ''}, ${outbox} event${outbox === 1 ? '' : 's'} in the outboxes (weft mesh status)`,
    );
  } else {
    lines.push('mesh: off');
  }
  const p = h.processor;
  lines.push(
    `pipeline: ${p.processed} processed, ${p.failed} failed, ${p.rejected} rejected, ${p.duplicates} duplicates since the start`,
  );
  lines.push(h.connections ? `api: ${h.connections.open} of ${h.connections.max} connections open` : 'api: answering (connections not reported)');
  const channels = deliveryChannelsOf(h.delivery);
  lines.push(
    channels.length === 0
      ? 'delivery: off'
      : `delivery: ${channels
          .map((c) => `${c.channel} (${c.sent} sent, ${c.failed} failed since the start, ${c.pending < 0 ? 'unknown' : c.pending} waiting)`)
          .join(', ')}`,
  );
  const q = h.privacy;
  if (q) {
    lines.push(
      `queries: ${q.queriesSent} asked by this node; from peers ${q.queriesAnswered} answered, ${q.queriesDenied} refused, ${q.queriesDropped} dropped over the rate, ${q.queriesBusy ?? 0} busy since the start (who asked what: weft audit export)`,
    );
  }
  const problems = h.problems ?? [olderDaemon(h)];
  if (problems.length === 0) lines.push('problems: none');
  else lines.push(`problems (${problems.length}):`, ...problems.map((x) => `  - ${x}`));
  return lines.join('\n');
}
