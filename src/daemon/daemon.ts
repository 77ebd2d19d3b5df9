import { chmodSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  type HttpApp,
  autonomyRoutes,
  buildApi,
  DashboardAuth,
  dashboardRoutes,
  backupRoutes,
  deadLetterRoutes,
  deliveryRoutes,
  domainRoutes,
  MetricsRegistry,
  memberRoutes,
  nodeMetrics,
  nodeRoutes,
  peerCandidateRoutes,
  privacyRoutes,
  registerCartridgeRoutes,
  sessionRoutes,
  signalRoutes,
  mountRoutes,
  logRoutes,
  invokeRoutes,
  recoveryRoutes,
} from '../api/index.js';
import { DOMAIN_EVENTS } from '../catalog/index.js';
import { AutonomyMatrix, createDomainRunner, type DomainRunner, DomainLifecycle, ensureLayout, MemberDirectory } from '../domains/index.js';
import { type DeliveryChannel, deliveryChannels, deliveryProblems } from '../delivery/index.js';
import { rotateIdentityFile } from '../identity/index.js';
import { ConfigError, StoreError, WeftError } from '../errors/index.js';
import type { StoreWriteTrouble } from '../store/index.js';
import { type DaemonInfo, daemonInfoPath, loadOrCreateToken, readDaemonInfo, type WeftConfig } from '../config/index.js';
import { attachSovereignty, type Sovereignty } from '../sovereignty/index.js';
import type { Clock, Logger } from '../util/index.js';
import { VERSION } from '../version.js';
import { diskProblem, formatBytes, freeBytes, LOW_SPACE_BYTES, privateDirProblem } from './data-dir-check.js';
import { commitMarkPath, describeRollback, type RollbackRecord, readCommitMark, recordRollback, writeCommitMark } from './rollback-record.js';
import { acquireLock } from './lock.js';
import { checkDatabaseIdentity } from './identity-check.js';
import { openFileLimit } from './fd-limit.js';
import { createDaemonLogger } from './logging.js';
import { assembleNode, type AssembledNode } from './assemble.js';
import { bindError } from './bind-config.js';
import { checkConfig } from './check-config.js';
import { meshFromConfig } from './mesh-config.js';
import { privacyFromConfig } from './privacy-config.js';
import { peerCandidatesFromConfig, type PeerCandidatesRuntime } from './mdns-config.js';
import { redisFromConfig } from './redis-config.js';
import { OBSERVER_SOURCE } from '../privacy/index.js';
import { cartridgeInvokeHandlers } from '../federation/index.js';
import type { SignalService } from '../signals/index.js';
import type { WeftNode } from '../node/index.js';
import type { EmitResult } from '../pipeline/index.js';
import { settleMemoryAfterStart } from './settle-memory.js';

export interface RunningDaemon {
  node: WeftNode;
  assembled: AssembledNode;
  app: HttpApp;
  info: DaemonInfo;
  logger: Logger;
  /** A rollback found at this start (the database behind its last recorded commit), if any. */
  rolledBack?: RollbackRecord;
  /** Drains and stops everything; idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts a node daemon: lock, store, bus, pipeline, API and delivery. Emits
 * `system.daemon.restarted`. A batch that fails as a whole is retried with backoff and
 * reported as `system.worker.crashed`.
 */
export async function startDaemon(cfg: WeftConfig, opts: { stderrLogs?: boolean; clock?: Clock } = {}): Promise<RunningDaemon> {
  // Every config check first, before a file or socket is opened: the same as `weft config show`.
  await checkConfig(cfg);
  // Events are private data: everything this process creates is its user's alone.
  process.umask(0o077);
  // A full disk or a read-only mount: one line saying so, before anything is half-written.
  const disk = diskProblem(cfg.data_dir);
  if (disk) throw new StoreError(disk.kind === 'full' ? 'WEFT_STORE_FULL' : 'WEFT_STORE', `cannot start: ${disk.message}`);
  securePrivateDir(cfg.data_dir);
  const lock = acquireLock(cfg.data_dir);
  let log: ReturnType<typeof createDaemonLogger>;
  try {
    checkDatabaseIdentity(cfg.data_dir);
    log = createDaemonLogger(cfg.data_dir, cfg.log.level, { stderr: opts.stderrLogs });
  } catch (err) {
    lock.release();
    throw err;
  }
  // A stop right after the start (a supervisor's SIGTERM) must find the log file open.
  await log.ready;
  const logger = log.logger;
  const previous = readDaemonInfo(cfg.data_dir);
  const previousStop: 'clean' | 'unclean' | 'first' = previous ? 'unclean' : existsSync(join(cfg.data_dir, 'weft.db')) ? 'clean' : 'first';
  let assembled: AssembledNode | undefined;
  let app: HttpApp | undefined;
  let cartridges: Sovereignty | undefined;
  let domains: DomainRunner | undefined;
  let signals: SignalService | undefined;
  let candidates: PeerCandidatesRuntime | undefined;
  // Which listener is being opened: its listen errors name its keys.
  let binding: 'api' | 'mesh' | undefined;
  try {
    // Loaded only when sources are configured: a node without feeds never pays for the parser.
    const signalsModule = cfg.signals.enabled && cfg.signals.sources.length > 0 ? await import('../signals/index.js') : undefined;
    assembled = await assembleNode(
      {
        dataDir: cfg.data_dir,
        computer: cfg.computer.name,
        ...(cfg.computer.cluster ? { cluster: cfg.computer.cluster } : {}),
        ...redisFromConfig(cfg),
        system: {
          trust: {
            strictness: cfg.trust.strictness,
            rate: { perSecond: cfg.trust.rate_per_second, burst: cfg.trust.rate_burst },
            // The spool after a day with the daemon down is a backlog, not a flood: it is this node's own shells.
            // The first poll of a big feed is a backlog too: the signal stages are this node's own.
            overrides: Object.fromEntries(
              [OBSERVER_SOURCE, ...(signalsModule ? [signalsModule.INGEST_SOURCE, signalsModule.CLUSTER_SOURCE, signalsModule.SYNTHESIZE_SOURCE] : [])].map((src) => [
                src,
                { rate: { perSecond: 50_000, burst: 1_000_000 } },
              ]),
            ),
          },
        },
        ...meshFromConfig(cfg),
        recovery: { enabled: cfg.recovery.enabled, beaconIntervalMs: cfg.recovery.beacon_interval * 1000, minCopies: cfg.recovery.min_copies, blockEvents: cfg.recovery.block_events },
        ...(cfg.fallback.git_remote
          ? {
              fallback: {
                remote: cfg.fallback.git_remote,
                afterMs: cfg.fallback.after * 1000,
                intervalMs: cfg.fallback.interval * 1000,
                maxAgeMs: cfg.fallback.max_age * 1000,
                maxEvents: cfg.fallback.max_events,
              },
            }
          : {}),
        privacy: privacyFromConfig(cfg),
      },
      { logger, ...(opts.clock ? { clock: opts.clock } : {}) },
    );
    const a0 = assembled;
    // Where the file ends before this start writes anything: compared with the commit mark below.
    const startSeq = a0.node.ns.store.reader.prepare('SELECT COALESCE(MAX(seq), 0) FROM events').pluck().get() as number;
    // Pinned peers go back into the PeerBook and the transport before anything is emitted.
    candidates = peerCandidatesFromConfig(cfg, a0, logger);
    const n = a0.node;
    n.ns.deadLetters.limit = cfg.store.max_dead_letters;
    let crashes = 0;
    n.processor.onBatchErrorHook = (err, attempt) => {
      crashes++;
      void n
        .emit({ event: 'system.worker.crashed', payload: { worker: 'pipeline', error: err.message.slice(0, 2000), restarts: crashes, backoffMs: Math.min(50 * 2 ** Math.min(attempt, 6), 5000) } })
        .catch(() => undefined);
    };
    // Members and the autonomy matrix; the domain runner's router is the last system stage.
    await ensureLayout(cfg.data_dir);
    const members = new MemberDirectory({ store: n.ns.store, audit: a0.audit });
    const rolesOf = (name: string) => members.find(name)?.roles;
    const matrix = new AutonomyMatrix(n.ns.store, { globalDefault: cfg.autonomy.domain_default });
    const runner = createDomainRunner(
      { dataDir: cfg.data_dir, inboxLimit: cfg.domains.inbox_limit, batch: cfg.domains.batch },
      { node: n, logger: logger.child({ mod: 'domains' }), clock: n.clock, autonomy: matrix, rolesOf },
    );
    // A revoked role narrows a personal pipeline's reach at once.
    members.onRolesChanged(() => runner.rolesChanged());
    // Seed item 11: after projection → mesh publisher → promotion tracker → the gate's stage
    // (installer, decided after each commit) → installed cartridges → the domain router; a
    // dependency cycle (platform or domain) refuses the start.
    const sov = await attachSovereignty(
      {
        dataDir: cfg.data_dir,
        autonomy: cfg.autonomy.cartridge_install,
        ...(cfg.autonomy.guardian_command ? { guardianCommand: cfg.autonomy.guardian_command } : {}),
        promotionThreshold: cfg.autonomy.promotion_threshold,
      },
      { node: n, logger, clock: n.clock, tail: cfg.domains.enabled ? [runner.stage] : [] },
    );
    const cr = sov.runtime;
    cartridges = sov;
    binding = cfg.mesh.provider === 'tls' ? 'mesh' : undefined;
    await a0.start();
    binding = undefined;
    await candidates?.start();
    await sov.start();
    // Installed cartridges that declare `invoke` serve calls from peers, each run in a sandbox of its own.
    a0.federation?.invoke.addSource(cartridgeInvokeHandlers(cr.registry, {}, { logger: logger.child({ mod: 'invoke' }), clock: n.clock, emit: (i) => n.emit(i) }));
    if (cfg.domains.enabled) {
      // Assigned first: a start that fails part-way is stopped by the catch below.
      domains = runner;
      await runner.start();
    }
    // The signal pipeline runs when sources are configured.
    if (signalsModule) {
      const s = cfg.signals;
      signals = signalsModule.createSignalService(
        {
          sources: s.sources,
          ...(s.x_feed_template ? { xFeedTemplate: s.x_feed_template } : {}),
          ...(cfg.source ? { baseDir: dirname(cfg.source) } : {}),
          fetcher: { perHost: s.per_host, maxBytes: s.max_body_bytes, timeoutMs: s.timeout, minIntervalMs: s.min_interval * 1000, maxIntervalMs: s.max_interval * 1000, maxParseErrors: s.max_parse_errors, maxNewPerPoll: s.max_new_per_poll, maxNewPerDay: s.max_new_per_day, floodPolls: s.flood_polls },
          clusterIntervalMs: s.cluster_interval * 1000,
          retentionDays: s.retention_days,
          ...(s.summarizer_command ? { summarizerCommand: s.summarizer_command } : {}),
        },
        { store: n.ns.store, clock: n.clock, logger: logger.child({ mod: 'signals' }), emitMany: (inputs) => n.emitMany(inputs) },
      );
      await signals.start();
    }
    const lifecycle = new DomainLifecycle({
      dataDir: cfg.data_dir,
      runner,
      emitMany: (inputs) => n.emitMany(inputs),
      knowsEventType: (t) => n.catalog.has(t),
      autonomy: (q) => matrix.resolve(q),
      installDefault: cfg.autonomy.cartridge_install,
      audit: (kind, details, ok) => a0.audit.record(kind, null, details, ok),
      platform: sov.runtime,
      memberExists: (name) => members.find(name) !== undefined,
      clock: n.clock,
    });
    // Telegram, Discord, WhatsApp, the webhook: each on when its keys are set, each with its own rows and loop.
    const deliveries: DeliveryChannel[] = deliveryChannels(cfg, { ns: n.ns, clock: n.clock, logger });
    for (const d of deliveries) {
      n.onCommitted((b) => void d.enqueue(b.changes));
      d.start();
    }
    // What is wrong with the database file, for this daemon's lifetime (see /api/health).
    const storeProblems: string[] = [];
    const store = n.ns.store;
    const metrics = nodeMetrics(
      new MetricsRegistry({ onCollectError: (e) => logger.warn({ err: e.message }, 'metrics collector failed') }),
      n,
      { deliveries },
    );
    const { token, path: tokenFile } = loadOrCreateToken(cfg.data_dir);
    const dashboard = cfg.api.dashboard ? new DashboardAuth() : undefined;
    const api = await buildApi(
      { token, host: cfg.api.host, maxConnections: apiConnectionCap(cfg.api.max_connections, logger) },
      {
        node: n,
        logger: logger.child({ mod: 'api' }),
        metrics: () => metrics.render(),
        // The hook already checked who may answer (a domain's admins for its submissions and held actions).
        onApproved: async (id, approve) => {
          const answered = n.ns.notifications.get(id);
          if (answered.eventType === DOMAIN_EVENTS.actionPending) await runner.resolveAction(id, approve);
          else if (answered.eventType === DOMAIN_EVENTS.cartridgeSubmitted) await lifecycle.answerSubmission(answered.payload, approve, { kind: 'node' });
          else await sov.onApproved(id, approve);
        },
        members,
        // Every configured channel by name (`{}` when none is on).
        health: () => ({ delivery: Object.fromEntries(deliveries.map((d) => [d.channel, d.stats()])), nodeId: a0.identity.nodeId, mesh: a0.mesh ? a0.mesh.provider.name : null, privacy: { ...a0.privacy.counters } }),
        problems: () => [
          ...storeProblems,
          ...storeWriteProblems(store, cfg.data_dir, n.clock.now()),
          ...logProblems(log, n.clock.now()),
          ...a0.trust.throttled(n.clock.now()).map(
            (t) =>
              `trust: ${t.subject.replace(/^local:/, 'source ')} sends more than ${t.perSecond}/s: ${t.refused} events quarantined in ${Math.round((n.clock.now() - t.since) / 1000)} s ('weft quarantine list' shows them)`,
          ),
          ...(a0.mesh?.problems() ?? []),
          ...(a0.fallback?.problems() ?? []),
          ...deliveries.flatMap((d) => deliveryProblems(d.stats(), n.clock.now())),
          // Domain cartridges suspended after repeated failures (and their dependents with them).
          ...runner.problems(),
          // Waiting for a restore: no beacon goes out until one runs (or is dismissed).
          ...(a0.recovery?.mode() === 'needs-restore'
            ? ["recovery: peers hold more of this node's events than it has (its data dir was wiped?): run 'weft recovery restore', or 'weft recovery dismiss' to start afresh"]
            : []),
        ],
        extraRoutes: [
          nodeRoutes({
            node: n,
            identity: () => a0.identity,
            audit: a0.audit,
            peers: a0.peers,
            mesh: a0.mesh,
            rotate: async () => {
              const r = rotateIdentityFile(join(cfg.data_dir, 'identity.key'), n.clock);
              const sent = a0.mesh ? await a0.mesh.rotate(r.identity, r.record) : { announced: [], failed: [] };
              if (!a0.mesh) await a0.audit.record('key.rotated', null, { oldNodeId: r.record.oldNodeId, newNodeId: r.record.newNodeId }, true);
              n.setNodeId(r.identity.nodeId);
              a0.identity = r.identity;
              return { previous: r.previous.nodeId, nodeId: r.identity.nodeId, fingerprint: r.identity.fingerprint, ...sent };
            },
          }),
          deadLetterRoutes({ node: n }),
          backupRoutes({ node: n }),
          deliveryRoutes({ store: n.ns.store }),
          privacyRoutes({ privacy: a0.privacy, now: () => n.clock.now() }),
          memberRoutes({ members }),
          autonomyRoutes({ matrix, installDefault: cfg.autonomy.cartridge_install }),
          domainRoutes({ dataDir: cfg.data_dir, runner, lifecycle, validation: { knowsEventType: (t) => n.catalog.has(t), rolesOf } }),
          signalRoutes({ signals }),
          sessionRoutes({ store: n.ns.store }),
          mountRoutes({ federation: a0.federation }),
          logRoutes({ node: n, audit: a0.audit }),
          invokeRoutes({ federation: a0.federation }),
          recoveryRoutes({ recovery: a0.recovery, fallback: a0.fallback, cartridges: cr }),
          peerCandidateRoutes({ candidates: candidates?.candidates, mdns: cfg.mesh.enable_mdns }),
          ...(dashboard ? [dashboardRoutes({ auth: dashboard, computer: cfg.computer.name, sample: () => dashboardSample(n, a0) })] : []),
        ],
        ...(dashboard ? { dashboard } : {}),
      },
    );
    app = api.app;
    registerCartridgeRoutes(app, {
      runtime: cr,
      emit: async (input) => (await n.emitManyReported([input]))[0] as EmitResult,
      claimedBy: (key) => n.ns.dedup.eventOf(key),
    });
    n.onCommitted((b) => api.hub.publish(b.changes));
    binding = 'api';
    const address = await app.listen({ host: cfg.api.host, port: cfg.api.port });
    binding = undefined;
    const info: DaemonInfo = {
      pid: process.pid,
      url: address.replace('[::1]', '127.0.0.1'),
      computer: cfg.computer.name,
      dataDir: cfg.data_dir,
      tokenFile,
      logFile: log.file,
      startedAt: new Date().toISOString(),
      ...(store.fileIdentity ? { dbFile: store.fileIdentity } : {}),
    };
    writeFileAtomic(daemonInfoPath(cfg.data_dir), `${JSON.stringify(info, null, 2)}\n`);
    await n.emit({
      event: 'system.daemon.restarted',
      payload: { computer: cfg.computer.name, pid: process.pid, version: VERSION, startedAt: info.startedAt, previousStop },
    });
    // The last committed log position, kept outside the database: a file that comes back
    // shorter (a lost -wal after a kill -9) is noticed and said, not silently accepted.
    const markPath = commitMarkPath(cfg.data_dir);
    // The reader sees committed rows only (the writer may be inside a batch that rolls back).
    const committedSeq = store.reader.prepare('SELECT COALESCE(MAX(seq), 0) FROM events').pluck();
    const recordedSeq = readCommitMark(cfg.data_dir);
    let rolledBack: RollbackRecord | undefined;
    if (recordedSeq !== undefined && recordedSeq > startSeq) {
      // Recorded before the mark moves on with this file, so `weft doctor` still says it after a stop.
      rolledBack = recordRollback(cfg.data_dir, { by: 'daemon start', recordedSeq, foundSeq: startSeq });
      // The record holds the evidence now; the mark starts again from this file.
      writeCommitMark(cfg.data_dir, startSeq);
      storeProblems.push(`${describeRollback(rolledBack)}; see weft doctor`);
      logger.error({ recorded: recordedSeq, found: startSeq }, 'the database is behind its last recorded commit: acknowledged events were rolled back');
      await n.emit({ event: 'system.store.rolled_back', payload: { recordedSeq, foundSeq: startSeq, lost: rolledBack.lost } });
    }
    // The database file deleted or replaced under the running daemon. It keeps running and
    // accepting (refusing would save nothing: peers and producers would only retry), but says
    // so in the log, in /api/health and in a notification; a copy is made at once (a kill -9
    // would otherwise lose all of it) and the stop saves the rest (Store.close puts a deleted
    // file back at its path).
    let fileLost = false;
    const checkFile = () => {
      const state = store.fileState();
      if (state === 'ok') return;
      fileLost = true;
      const detectedAt = new Date().toISOString();
      const problem = `the database file ${store.path} was ${state} while the daemon runs: everything since it started is only in the open file, which nothing else can read; stop the daemon cleanly to save it (its stop ${state === 'deleted' ? 'puts it back at that path' : `saves it as ${store.path}.rescued-<time>`}), not kill -9`;
      storeProblems.push(problem);
      logger.error({ path: store.path, state }, problem);
      void store
        .rescue()
        .then(
          (to) => {
            storeProblems.push(`a copy of the open database as of ${detectedAt} is at ${to}`);
            logger.warn({ rescuedTo: to }, 'copied the open database out');
            return to;
          },
          (err) => {
            logger.error({ err: (err as Error).message }, 'copying the open database out failed');
            return undefined;
          },
        )
        .then((to) => n.emit({ event: 'system.store.file_lost', payload: { path: store.path, state, detectedAt, ...(to ? { rescuedTo: to } : {}) } }))
        .catch((err) => logger.debug({ err: (err as Error).message }, 'the file_lost notification failed'));
    };
    let markedSeq = -1;
    let ticks = 0;
    const markTimer = setInterval(() => {
      // Every 5 s, one stat: is the path still the file this daemon writes?
      if (!fileLost && ++ticks % 5 === 0) checkFile();
      try {
        const seq = committedSeq.get() as number;
        if (seq === markedSeq) return;
        // Whole or not at all: a full disk truncated it to nothing, and the next start lost its mark.
        writeFileAtomic(markPath, `${JSON.stringify({ seq, at: new Date().toISOString() })}\n`);
        markedSeq = seq;
      } catch (err) {
        logger.debug({ err: (err as Error).message }, 'writing the commit mark failed');
      }
    }, 1000);
    markTimer.unref();
    logger.info({ url: info.url, dataDir: cfg.data_dir, bus: n.bus.kind }, 'weft daemon started');
    let lastCommitAt = performance.now();
    n.onCommitted(() => {
      lastCommitAt = performance.now();
    });
    const settling = settleMemoryAfterStart(logger, () => lastCommitAt);
    let stopping: Promise<void> | undefined;
    const a = app;
    return {
      node: n,
      assembled: a0,
      app: a,
      info,
      logger,
      ...(rolledBack ? { rolledBack } : {}),
      stop() {
        stopping ??= boundedStop(cfg.daemon.stop_timeout * 1000, logger, async () => {
          logger.info('weft daemon stopping');
          clearInterval(markTimer);
          settling.stop();
          api.hub.closeAll();
          await a.close();
          await Promise.all(deliveries.map((d) => d.stop()));
          metrics.close();
          await sov.gate.stop();
          await signals?.stop();
          await runner.stop();
          await candidates?.stop();
          await a0.stop();
          await sov.stop();
          rmSync(daemonInfoPath(cfg.data_dir), { force: true });
          log.close();
          lock.release();
        });
        return stopping;
      },
    };
  } catch (err) {
    await app?.close().catch(() => undefined);
    await signals?.stop().catch(() => undefined);
    await domains?.stop().catch(() => undefined);
    await cartridges?.stop().catch(() => undefined);
    await candidates?.stop().catch(() => undefined);
    await assembled?.stop().catch(() => undefined);
    log.close();
    lock.release();
    if (err instanceof WeftError) throw err;
    throw (binding && bindError(err, cfg, binding)) || err;
  }
}

/**
 * Makes the data dir (0700) or checks it: a path that is a file, a directory of another user
 * (`privateDirProblem`), or a directory other users can read that this user cannot tighten, stops the start with one line and the fix. Files already
 * in it (database, WAL, logs, keys) are tightened to 0600.
 */
export function securePrivateDir(dir: string): void {
  const problem = privateDirProblem(dir);
  if (problem) throw new ConfigError(problem, { key: 'data_dir' });
  let st: ReturnType<typeof statSync> | undefined;
  try {
    st = statSync(dir);
  } catch {
    st = undefined;
  }
  if (!st) {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new ConfigError(`config key data_dir: cannot create ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { key: 'data_dir' });
    }
    return;
  }
  if ((st.mode & 0o077) !== 0) {
    try {
      chmodSync(dir, 0o700);
    } catch {
      throw new ConfigError(`data dir ${dir} can be read by other users (mode ${(st.mode & 0o777).toString(8)}) and cannot be changed by this user; run: chmod 700 ${dir}`, { key: 'data_dir' });
    }
  }
  for (const rel of ['weft.db', 'weft.db-wal', 'weft.db-shm', 'identity.key', 'api-token', 'daemon.json', 'last-commit.json', 'rolled-back.json', 'logs']) {
    const p = join(dir, rel);
    try {
      const f = statSync(p);
      if (f.isDirectory()) {
        if ((f.mode & 0o077) !== 0) chmodSync(p, 0o700);
        for (const name of readdirSync(p)) {
          const q = join(p, name);
          if ((statSync(q).mode & 0o077) !== 0) chmodSync(q, 0o600);
        }
      } else if ((f.mode & 0o077) !== 0) chmodSync(p, 0o600);
    } catch {
      // missing, or not ours to change: the key's own check refuses a loose key
    }
  }
}

/**
 * Runs the stop within `ms`: a stop that cannot finish (a peer or Redis that does not answer)
 * is abandoned with one error line; everything accepted is already durable (journal, outboxes,
 * SQLite commits), so the next start resumes it. Throws WEFT_STOPPED when it timed out.
 */
async function boundedStop(ms: number, logger: Logger, stop: () => Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
    timer.unref();
  });
  const r = await Promise.race([stop().then(() => 'done' as const), timedOut]);
  clearTimeout(timer);
  if (r === 'timeout') {
    logger.error({ stopTimeoutMs: ms }, 'stop did not finish in time; exiting anyway (what was not sent stays in the journal and outboxes)');
    throw new WeftError('WEFT_STOPPED', `stop did not finish within ${ms / 1000} s (daemon.stop_timeout); what was not sent yet stays durable and is sent after the next start`);
  }
}

/** What the mesh page charts: events processed so far, outbox depth, mean RTT to peers, peers connected. */
function dashboardSample(n: WeftNode, a: AssembledNode): Record<string, number> {
  const out: Record<string, number> = { processed: n.processor.stats.processed };
  if (a.mesh) {
    const st = a.mesh.status() as { peers: Array<{ outbox: number; rttMs: number | null; state: string }>; counters: { framesIn: number } };
    const rtts = st.peers.map((p) => p.rttMs).filter((r): r is number => typeof r === 'number');
    out.outbox = st.peers.reduce((x, p) => x + p.outbox, 0);
    out.rttMs = rtts.length ? rtts.reduce((x, r) => x + r, 0) / rtts.length : 0;
    out.connected = st.peers.filter((p) => p.state === 'connected' || p.state === 'active').length;
    out.framesIn = st.counters.framesIn;
  }
  return out;
}

/** A log file the disk does not take (full, failing): named in /api/health while it lasts. */
function logProblems(log: { file: string; trouble(): { code: string; at: number; droppedLines: number } | undefined }, now: number): string[] {
  const t = log.trouble();
  if (!t) return [];
  const dropped = t.droppedLines > 0 ? `, ${t.droppedLines} lines dropped since the start` : '';
  const why = t.code === 'ENOSPC' || t.code === 'EDQUOT' ? 'the disk is full (or over quota): free space there' : `the write fails with ${t.code}`;
  return [`log: ${log.file} cannot be written since ${Math.max(0, Math.round((now - t.at) / 1000))} s (${t.code}${dropped}): ${why}; lines are held in memory up to 4 MiB, then dropped`];
}

/**
 * Writes a small file whole or not at all (a temp file renamed over it): on a full disk
 * writeFileSync truncated the file and then failed, leaving it empty.
 */
function writeFileAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, text, { mode: 0o600 });
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Commits failing for want of space (or a disk that refuses writes), and a disk running low: named in /api/health. */
function storeWriteProblems(store: { path: string; writeTrouble: StoreWriteTrouble | undefined }, dataDir: string, now: number): string[] {
  const t = store.writeTrouble;
  const free = freeBytes(dataDir);
  const left = free !== undefined ? `${formatBytes(free)} free` : 'free space unknown';
  if (t) {
    const since = `since ${Math.max(0, Math.round((now - t.since) / 1000))} s (${t.failures} failed commits, the last ${Math.max(0, Math.round((now - t.last) / 1000))} s ago, ${t.code})`;
    if (t.kind === 'full')
      return [
        `store: the disk holding ${store.path} is full ${since}, ${left}: emits are refused (HTTP 507), peers' frames wait in their outboxes and pipeline work is retried; free space there and the node carries on by itself`,
      ];
    return [`store: ${store.path} cannot be written ${since}: ${t.kind === 'readonly' ? 'the file or its mount became read-only' : 'the disk reports I/O errors'}; emits are refused until it can (weft doctor)`];
  }
  if (free !== undefined && free < LOW_SPACE_BYTES) return [`disk: only ${left} on the disk holding ${dataDir}; the node stops taking events when it is full`];
  return [];
}

/**
 * api.max_connections, held to half the open-file limit: every API connection is a descriptor,
 * and the node's database, logs, peer links and sandbox need theirs. With the default 1024 under
 * `ulimit -n 256`, clients could take every descriptor: connections past the limit were dropped
 * unanswered by the accept loop, /api/health stopped answering, 'refused' stayed 0 and nothing
 * was logged. Held below it, one more gets the cap's 429 and is counted.
 */
function apiConnectionCap(configured: number, logger: Logger): number {
  const limit = openFileLimit();
  if (limit === undefined || configured <= Math.floor(limit / 2)) return configured;
  const cap = Math.max(16, Math.floor(limit / 2));
  logger.warn(
    { configured, openFileLimit: limit, cap },
    `api.max_connections is ${configured} but this process may open only ${limit} files (ulimit -n): the API takes at most ${cap} connections; raise the limit (LimitNOFILE= in a systemd unit) to allow more`,
  );
  return cap;
}
