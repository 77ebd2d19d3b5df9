/**
 * `weft recovery` (status, beacon, restore, dismiss, digest) through the daemon's API,
 * `weft identity export --encrypted` / `weft identity import`, which work on the key file
 * itself (the daemon may be down; an import needs it down), and `weft backup create|restore`
 * for the database (docs/recovery.md, docs/reliability.md).
 */
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { readDaemonInfo } from '../../config/index.js';
import { WeftError } from '../../errors/index.js';
import type { FallbackRound, FallbackStatus, RecoveryStatus, RestoreProgress } from '../../recovery/index.js';
import type { CliContext } from '../context.js';
import { table } from '../format.js';

const HELP = `
Every node sends its cluster a recovery beacon (at start and every recovery.beacon_interval):
its key, its log's high-water mark, a digest of its cluster events range by range, its frame
sequence, and which peers hold copies of which ranges. Its notification states and cartridges
go to the cluster too. When a computer's data dir is lost, the same key and the same peers
bring it all back.

Examples:
  weft identity export --encrypted --out ~/safe/laptop.weftkey   # beforehand, kept elsewhere
  weft recovery status                                           # copies per range, warnings
  weft identity import ~/safe/laptop.weftkey                     # on the new disk, daemon down
  weft daemon &                                                  # same mesh.peers as before
  weft recovery restore                                          # pull it all back, verified
  weft recovery fallback                                         # the git fallback: peers, refs
  weft recovery fallback --now                                   # a fetch/import/push round now

See docs/recovery.md.
`;

const fmt = (n: number) => n.toLocaleString('en-US');

/** Reads a passphrase: WEFT_PASSPHRASE, else a prompt on the terminal (no echo). */
async function passphrase(prompt: string, confirm: boolean): Promise<string> {
  const env = process.env.WEFT_PASSPHRASE;
  if (env !== undefined) return env;
  if (!process.stdin.isTTY) throw new WeftError('WEFT_VALIDATION', 'no passphrase: set WEFT_PASSPHRASE, or run this on a terminal to type it');
  const ask = (q: string) =>
    new Promise<string>((resolveAnswer, reject) => {
      const stdin = process.stdin;
      process.stderr.write(q);
      stdin.setRawMode(true);
      stdin.resume();
      stdin.setEncoding('utf8');
      let s = '';
      const done = (err?: Error) => {
        stdin.setRawMode(false);
        stdin.pause();
        stdin.removeListener('data', onData);
        process.stderr.write('\n');
        if (err) reject(err);
        else resolveAnswer(s);
      };
      const onData = (chunk: string) => {
        for (const ch of chunk) {
          if (ch === '\r' || ch === '\n') return done();
          if (ch === '\u0003') return done(new WeftError('WEFT_VALIDATION', 'cancelled'));
          if (ch === '\u007f' || ch === '\b') s = s.slice(0, -1);
          else s += ch;
        }
      };
      stdin.on('data', onData);
    });
  const first = await ask(prompt);
  if (confirm) {
    const again = await ask('the same passphrase again: ');
    if (again !== first) throw new WeftError('WEFT_VALIDATION', 'the two passphrases differ');
  }
  return first;
}

/** The daemon of this data dir is running (its address file names a live process). */
function daemonRunning(dataDir: string): boolean {
  const info = readDaemonInfo(dataDir);
  if (!info) return false;
  try {
    process.kill(info.pid, 0);
    return true;
  } catch {
    return false;
  }
}

function bar(p: RestoreProgress, width = 30): string {
  const total = Math.max(1, p.expected);
  const frac = p.phase === 'done' ? 1 : p.phase === 'pull' ? Math.min(1, p.pulled / total) * 0.7 : p.phase === 'query' ? 0 : 0.7 + Math.min(1, p.written / total) * 0.3;
  const filled = Math.round(frac * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.round(frac * 100)).padStart(3)}%`;
}

function progressLine(p: RestoreProgress): string {
  const counts = p.phase === 'pull' ? `${fmt(p.pulled)}/${fmt(p.expected)} events` : p.phase === 'query' ? '' : `${fmt(p.written)} written`;
  return `${bar(p)} ${p.phase.padEnd(13)} ${counts.padEnd(24)} ${(p.elapsedMs / 1000).toFixed(1)} s`;
}

function summary(p: RestoreProgress): string {
  const gave = p.peers.filter((x) => (x.supplied ?? 0) > 0);
  const idle = p.peers.filter((x) => x.answered && !((x.supplied ?? 0) > 0)).map((x) => x.computer);
  const lines = [
    `restored ${fmt(p.written)} events in ${(p.elapsedMs / 1000).toFixed(1)} s from ${gave.map((x) => `${x.computer} (${fmt(x.supplied)})`).join(', ') || 'no peer'}${idle.length ? `; ${idle.join(', ')} answered with nothing this node lacked` : ''}`,
    p.beacon
      ? `beacon of ${new Date(p.beacon.at).toISOString()} (from ${p.beacon.from}): ${p.ranges.verified} of ${p.ranges.total} ranges verified against its digests${p.ranges.failed ? `, ${p.ranges.failed} NOT (kept as found)` : ''}`
      : 'no beacon of this node was found on its peers: nothing could be verified against a digest',
    `${fmt(p.unverified)} events newer than the beacon (taken from the peers, not covered by a digest)`,
    `${fmt(p.notifications)} notification states rebuilt`,
    `cartridges: ${p.cartridges.restored.length ? p.cartridges.restored.join(', ') : 'none'}${p.cartridges.missing.length ? `; not restored: ${p.cartridges.missing.join('; ')}` : ''}`,
    p.frameSequence ? `frame sequence resumes at ${p.frameSequence.next} (past ${p.frameSequence.past}, the highest any peer accepted or the beacon reserved)` : '',
  ];
  return lines.filter(Boolean).join('\n');
}

function statusText(s: RecoveryStatus): string {
  const out: string[] = [`mode ${s.mode}${s.enabled ? '' : ' (beacons off: recovery.enabled = false)'}; min copies ${s.minCopies}; journal ${fmt(s.journal.journaled)} notification states sent, ${fmt(s.journal.pending)} pending`];
  if (s.notAsked?.length) {
    out.push(
      `waiting for peers that can answer: ${s.notAsked.join(', ')} sent no signed hello (a Weft from before recovery, or not reachable) and cannot say whether ${s.notAsked.length === 1 ? 'it holds' : 'they hold'} more of this node; upgrade ${s.notAsked.length === 1 ? 'it' : 'them'}, or 'weft recovery dismiss' to start beacons now`,
    );
  }
  if (s.nodes.length === 0) out.push('no beacon yet (the first goes out a second after start, once the peers are asked)');
  for (const n of s.nodes) {
    out.push('');
    out.push(`${n.computer}${n.self ? ' (this node)' : ''}  ${fmt(n.events)} cluster events, log high ${fmt(n.logHigh)}, digest ${n.digest}, beacon ${n.beacon ? `${Math.round(n.beacon.age / 1000)} s ago` : '-'}`);
    out.push(
      table(
        n.ranges.map((r, i) => ({
          range: i + 1,
          events: fmt(r.count),
          seq: `${r.lowSeq}-${r.highSeq}`,
          copies: r.pending ? `${r.copies} (pending)` : r.copies,
          ...(n.self ? {} : { here: r.held ? (r.held.whole ? 'whole' : `${fmt(r.held.count)} of ${fmt(r.count)}`) : '-' }),
          digest: r.digest.slice(0, 12),
        })),
      ),
    );
    if (n.holders.length > 0) out.push(`held by: ${n.holders.map((h) => `${h.computer} (${h.ranges} range${h.ranges === 1 ? '' : 's'}${h.upToSeq ? ` up to seq ${h.upToSeq}` : ''})`).join(', ')}`);
    if (!n.self) out.push(`here: ${fmt(n.held.count)} of its events`);
    // The table is the beacon's (copies are what the peers answered to it); the log moved on since.
    else if (n.held.count > n.events)
      out.push(`${fmt(n.held.count - n.events)} cluster event(s) since that beacon, not counted above yet (the next beacon is due within ${fmt(Math.max(1, Math.round((s.beaconIntervalMs - (n.beacon?.age ?? 0)) / 1000)))} s; weft recovery beacon sends one now)`);
    for (const w of n.warnings) out.push(`WARNING: ${w}`);
  }
  return out.join('\n');
}

const ago = (at: number | null, now: number) => (at === null ? '-' : `${Math.max(0, Math.round((now - at) / 1000))} s ago`);

function roundText(r: FallbackRound): string {
  const pushed = r.pushed.commit
    ? `pushed ${r.pushed.commit.slice(0, 12)}: ${fmt(r.pushed.events)} events, ${fmt(r.pushed.acks)} acks for ${r.pushed.peers.join(', ')}`
    : 'nothing to push';
  return `round in ${r.ms} ms: imported ${fmt(r.imported.commits)} commits (${fmt(r.imported.frames)} frames, ${fmt(r.imported.refused)} refused); ${pushed}`;
}

function fallbackText(s: FallbackStatus): string {
  const now = Date.now();
  const out = [
    `remote ${s.remote}; this node writes ${s.refName}; a peer goes through git after ${Math.round(s.afterMs / 1000)} s without delivery; a round every ${Math.round(s.intervalMs / 1000)} s`,
    s.lastRound ? `last ${roundText(s.lastRound)} (${ago(s.lastRound.at, now)})` : 'no round finished yet',
  ];
  if (s.lastError) out.push(`LAST ROUND FAILED (${s.failures} in a row): ${s.lastError}`);
  // A stalled remote holds a round until git's time limit (120 s): say so rather than look idle.
  if (s.running && s.runningSince !== null && s.runningSince !== undefined) out.push(`a round is running (started ${ago(s.runningSince, now)}; a git run that stalls is stopped after 120 s)`);
  if (s.peers.length > 0) {
    out.push('');
    out.push(
      table(
        s.peers.map((p) => ({
          peer: p.peer,
          waiting: fmt(p.waiting),
          oldest: ago(p.waitingSince, now),
          git: p.blocked ? `blocked: ${p.blocked}` : p.due ? 'yes' : 'no',
          'sent via git': fmt(p.sentEvents),
          'last commit': p.lastCommit ? p.lastCommit.slice(0, 12) : '-',
        })),
      ),
    );
  }
  if (s.refs.length > 0) {
    out.push('');
    out.push(table(s.refs.map((r) => ({ imported: r.ref, commit: r.commit.slice(0, 12), commits: fmt(r.commits), frames: fmt(r.frames), refused: fmt(r.refused), at: ago(r.at, now) }))));
  }
  if (s.unknownRefs.length > 0) out.push(`refs of unknown computers, not imported: ${s.unknownRefs.join(', ')}`);
  return out.join('\n');
}

export function recoveryCommands(ctx: CliContext): void {
  const { program, client, out, cfg, g, int } = ctx;
  const get = async <T>(path: string) => (await client()).request<T>('GET', path);
  const post = async <T>(path: string, body: unknown = {}) => (await client()).request<T>('POST', path, body);

  const r = program.command('recovery').description('recovery beacons and Phoenix restore from peers').addHelpText('after', HELP);
  r.command('status')
    .description('per node: its ranges and how many peers hold each (warns below recovery.min_copies)')
    .action(async () => {
      const s = await get<RecoveryStatus>('/api/recovery/status');
      out(statusText(s), s);
      if (s.nodes.some((n) => n.warnings.length > 0)) process.exitCode = 1;
    });
  r.command('beacon')
    .description('send a beacon now')
    .action(async () => {
      const b = await post<{ sent: boolean; mode: string; beacon?: { events: { count: number; ranges: unknown[] } } }>('/api/recovery/beacon');
      out(b.sent ? `beacon sent: ${fmt(b.beacon?.events.count ?? 0)} events in ${b.beacon?.events.ranges.length ?? 0} ranges` : `no beacon: this node is in mode ${b.mode} (see weft recovery status)`, b);
    });
  r.command('digest')
    .description("count and digest of a node's cluster events held here (this node's own by default)")
    .option('--node <id>', 'the node id (weft:ed25519:...)')
    .action(async (o: { node?: string }) => {
      const d = await get<{ node: string; count: number; digest: string }>(`/api/recovery/digest${o.node ? `?node=${encodeURIComponent(o.node)}` : ''}`);
      out(`${d.node}: ${fmt(d.count)} events, digest ${d.digest}`, d);
    });
  r.command('dismiss')
    .description('start afresh instead of restoring: beacons go out again (the peers keep what they hold)')
    .action(async () => {
      const d = await post<{ mode: string }>('/api/recovery/dismiss');
      out(`mode ${d.mode}: beacons go out again`, d);
    });
  r.command('fallback')
    .description('the git fallback (fallback.git_remote): which peers go through git, what was imported from each ref')
    .option('--now', 'run a round now (fetch, import every ref, push what waits) and print what it did')
    .action(async (o: { now?: boolean }) => {
      if (o.now) {
        const round = await post<FallbackRound>('/api/recovery/fallback/round');
        out(roundText(round), round);
        return;
      }
      const s = await get<FallbackStatus>('/api/recovery/fallback');
      out(fallbackText(s), s);
      if (s.lastError) process.exitCode = 1;
    });
  r.command('restore')
    .description("rebuild this node from its peers: its cluster events, notification states and cartridges, checked against its last beacon; its frame sequence moves past anything a peer saw")
    .option('--timeout <ms>', 'how long to wait for the peers to answer, 100 to 600000 ms', int('--timeout', { min: 100, max: 600_000 }))
    .action(async (o: { timeout?: number }) => {
      const c = await client();
      const json = g().json === true;
      const tty = !json && process.stderr.isTTY === true;
      let p = await c.request<RestoreProgress>('POST', '/api/recovery/restore', o.timeout ? { queryTimeoutMs: o.timeout } : {});
      let lastPhase = '';
      let lastLine = 0;
      for (;;) {
        const now = Date.now();
        if (json) {
          if (p.phase !== lastPhase || now - lastLine >= 1000 || p.state !== 'running') {
            console.log(JSON.stringify(p));
            lastLine = now;
          }
        } else if (tty) process.stderr.write(`\r${progressLine(p)}`);
        else if (p.phase !== lastPhase) console.error(`${p.phase}: ${p.message}`);
        lastPhase = p.phase;
        if (p.state !== 'running') break;
        await new Promise((res) => setTimeout(res, 200));
        p = await c.request<RestoreProgress>('GET', '/api/recovery/restore');
      }
      if (tty) process.stderr.write('\n');
      if (p.state === 'failed') {
        if (!json) console.error(`weft: ${p.message}`);
        process.exitCode = 1;
        return;
      }
      if (!json) console.log(summary(p));
      if (p.ranges.failed > 0 || p.cartridges.missing.length > 0) process.exitCode = 1;
    });

  // `weft identity` is defined with the node commands; export and import join it here.
  const identity = program.commands.find((x) => x.name() === 'identity') ?? program.command('identity').description("this node's Ed25519 identity");
  addIdentityBackup(identity as Command, cfg, out);
  addDatabaseBackup(ctx);
}

const BACKUP_HELP = `
A backup is a consistent copy of the node's database (every event, notification, the audit
log, the outboxes): made while the daemon runs (through its API) or while it is stopped. It
holds payloads in the clear: keep it as private as the data dir. The node key is not in it
('weft identity export --encrypted' backs that up).

Examples:
  weft backup create                          # ./weft-backup-<computer>-<time>.db
  weft backup create ~/safe/laptop.db --force
  weft backup restore ~/safe/laptop.db        # with the daemon stopped (Ctrl-C, or the service manager)

A restore puts a backup in place of the database (the daemon must be stopped) and keeps the
database it replaces (weft.db.before-restore-<time>). Events the node had after the backup are
not in it: the restore says how many and records them as a rollback ('weft doctor'); peers
still send what they hold for the node, and 'weft status' says when 'weft recovery restore'
can bring back its cluster events. See docs/reliability.md.
`;

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

function addDatabaseBackup(ctx: CliContext): void {
  const { program, client, out, cfg, g } = ctx;
  const b = program.command('backup').description("a consistent copy of the node's database, and putting one back").addHelpText('after', BACKUP_HELP);
  b.command('create [file]')
    .description('write a backup of the database to a file (mode 0600; default ./weft-backup-<computer>-<time>.db), checked before it is kept')
    .option('--force', 'overwrite the file if it exists')
    .action(async (file: string | undefined, o: { force?: boolean }) => {
      const c = cfg();
      const { backupStopped, inspectBackup } = await import('../../daemon/index.js');
      const dest = resolve(file ?? `weft-backup-${c.computer.name}-${new Date().toISOString().replace(/[:.]/g, '-')}.db`);
      if (existsSync(dest) && !o.force) throw new WeftError('WEFT_CONFLICT', `${dest} exists: add --force to overwrite it`);
      const part = `${dest}.part`;
      rmSync(part, { force: true });
      const running = daemonRunning(c.data_dir);
      const tty = g().json !== true && process.stderr.isTTY === true;
      try {
        if (running) {
          let last = 0;
          await (await client()).download('/api/backup', part, (got, total) => {
            if (!tty || Date.now() - last < 200) return;
            last = Date.now();
            process.stderr.write(`\rreceiving ${mib(got)}${total ? ` of ${mib(total)}` : ''}   `);
          });
          if (tty) process.stderr.write('\n');
        } else {
          await backupStopped(c.data_dir, part);
        }
        const info = inspectBackup(part);
        renameSync(part, dest);
        info.path = dest;
        out(
          `wrote ${dest} (mode 0600, ${mib(info.bytes)}): ${fmt(info.events)} events up to log position ${fmt(info.lastSeq)}, ${fmt(info.notifications)} notifications of ${c.computer.name}, taken ${running ? 'from the running daemon' : 'with the daemon stopped'}\nit holds payloads in the clear: keep it as private as the data dir; the node key is not in it ('weft identity export --encrypted')\nput it back with: weft backup restore ${dest}`,
          { ...info, fromRunningDaemon: running },
        );
      } finally {
        rmSync(part, { force: true });
      }
    });
  b.command('restore <file>')
    .description('put a backup in place of the database (the daemon must be stopped); the database it replaces is kept beside it')
    .option('--force', "restore a backup another node's key wrote (you will import that key too)")
    .action(async (file: string, o: { force?: boolean }) => {
      const c = cfg();
      if (daemonRunning(c.data_dir)) throw new WeftError('WEFT_CONFLICT', `the daemon of ${c.data_dir} is running: stop it first (a restore replaces its database)`);
      const { loadIdentity } = await import('../../identity/index.js');
      const { restoreBackup } = await import('../../daemon/index.js');
      const keyPath = join(c.data_dir, 'identity.key');
      const nodeId = existsSync(keyPath) ? loadIdentity(keyPath).nodeId : undefined;
      mkdirSync(c.data_dir, { recursive: true, mode: 0o700 });
      const r = await restoreBackup(c.data_dir, resolve(file), { nodeId, force: o.force === true });
      const lines = [
        `restored ${r.backup.path}: ${fmt(r.backup.events)} events up to log position ${fmt(r.backup.lastSeq)}, ${fmt(r.backup.notifications)} notifications`,
        r.keptAs.length > 0 ? `the database it replaced is kept as ${r.keptAs[0]}` : 'there was no database here before',
        ...(nodeId === undefined && r.backup.nodeId !== undefined
          ? [`this data dir has no node key yet: put back the key of ${r.backup.nodeId} with 'weft identity import <file>' before you start the daemon (a new key would not match the database)`]
          : []),
        r.rolledBack
          ? `${fmt(r.rolledBack.lost)} events this node had committed after the backup are not in it: recorded as a rollback ('weft doctor' shows it until 'weft doctor --acknowledge'); start the daemon: peers send what they still hold for it, and 'weft status' says when 'weft recovery restore' can bring back its cluster events`
          : 'start the daemon: nothing this node had recorded as committed is missing from it',
      ];
      out(lines.join('\n'), r);
    });
}

function addIdentityBackup(identity: Command, cfg: CliContext['cfg'], out: CliContext['out']): void {
  identity
    .command('export')
    .description('write the node key to a file encrypted with a passphrase (scrypt + AES-256-GCM, mode 0600), for a Phoenix restore')
    .option('--encrypted', 'encrypt with a passphrase (WEFT_PASSPHRASE, or typed when asked): the only kind of export')
    .option('--out <file>', 'where (default ./weft-identity-<computer>-<fingerprint>.weftkey)')
    .option('--force', 'overwrite the file if it exists')
    .action(async (o: { encrypted?: boolean; out?: string; force?: boolean }) => {
      if (!o.encrypted) throw new WeftError('WEFT_VALIDATION', "only encrypted exports exist: add --encrypted (the plain key is <data_dir>/identity.key, which must never leave this computer unencrypted)");
      const c = cfg();
      const { loadIdentity } = await import('../../identity/index.js');
      const { checkPassphrase, encryptIdentity, writeBackupFile } = await import('../../recovery/index.js');
      const keyPath = join(c.data_dir, 'identity.key');
      if (!existsSync(keyPath)) throw new WeftError('WEFT_NOT_FOUND', `no node key at ${keyPath} (has the daemon run here, with this data_dir?)`);
      const id = loadIdentity(keyPath);
      const pass = await passphrase('passphrase for the key backup: ', process.env.WEFT_PASSPHRASE === undefined);
      checkPassphrase(pass);
      const file = resolve(o.out ?? `weft-identity-${c.computer.name}-${id.fingerprint}.weftkey`);
      writeBackupFile(file, encryptIdentity(id, pass, { computer: c.computer.name }), { force: o.force === true });
      out(`wrote ${file} (mode 0600): the key of ${c.computer.name}, node id ${id.nodeId}, fingerprint ${id.fingerprint}\nkeep it off this computer; 'weft identity import ${file}' puts it back`, { file, nodeId: id.nodeId, fingerprint: id.fingerprint, computer: c.computer.name });
    });
  identity
    .command('import <file>')
    .description('put a key exported with --encrypted back as this node\'s key (the daemon must be stopped)')
    .option('--force', 'replace a different key already there (it is kept as identity.key.replaced-<time>)')
    .action(async (file: string, o: { force?: boolean }) => {
      const c = cfg();
      const { loadIdentity, saveIdentity } = await import('../../identity/index.js');
      const { decryptIdentity, readBackupFile } = await import('../../recovery/index.js');
      if (daemonRunning(c.data_dir)) throw new WeftError('WEFT_CONFLICT', `the daemon of ${c.data_dir} is running: stop it first (a node's key is read at start)`);
      const data = readBackupFile(resolve(file));
      const id = decryptIdentity(data, await passphrase('passphrase of the key backup: ', false));
      mkdirSync(c.data_dir, { recursive: true, mode: 0o700 });
      const keyPath = join(c.data_dir, 'identity.key');
      // A database another key wrote (a daemon started before the import made a new key) would
      // carry that node's frame sequence under this key: its peers would refuse every frame.
      const { DATABASE_FILES, recordedNodeId } = await import('../../daemon/index.js');
      const wrote = recordedNodeId(c.data_dir);
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      const dbAside: string[] = [];
      if (wrote !== undefined && wrote !== id.nodeId) {
        if (!o.force) {
          throw new WeftError(
            'WEFT_CONFLICT',
            `the database in ${c.data_dir} was written by another node (${wrote}), not by the key you import: add --force to move it aside (kept as weft.db.replaced-${stamp}) so the node starts empty and 'weft recovery restore' brings its events back from its peers`,
          );
        }
        for (const f of [...DATABASE_FILES, 'last-commit.json', 'rolled-back.json']) {
          const p = join(c.data_dir, f);
          if (!existsSync(p)) continue;
          renameSync(p, `${p}.replaced-${stamp}`);
          dbAside.push(`${p}.replaced-${stamp}`);
        }
      }
      let replaced: string | undefined;
      if (existsSync(keyPath)) {
        const cur = loadIdentity(keyPath);
        if (cur.nodeId === id.nodeId) {
          out(`the key of node ${id.nodeId} is in place already (${keyPath})`, { nodeId: id.nodeId, fingerprint: id.fingerprint, path: keyPath, changed: false });
          return;
        }
        if (!o.force) throw new WeftError('WEFT_CONFLICT', `${keyPath} holds another key (node ${cur.nodeId}); add --force to replace it (it is kept aside)`);
        replaced = `${keyPath}.replaced-${new Date().toISOString().replace(/[:.]/g, '-')}`;
        renameSync(keyPath, replaced);
      }
      saveIdentity(keyPath, id);
      out(
        `imported the key of node ${id.nodeId} (fingerprint ${id.fingerprint}) to ${keyPath}${replaced ? `; the old key is ${replaced}` : ''}${dbAside.length ? `; the other node's database is kept as ${dbAside[0]}` : ''}\nnext: start the daemon with the same mesh.peers (or Redis registry) as before, then run 'weft recovery restore'`,
        { nodeId: id.nodeId, fingerprint: id.fingerprint, path: keyPath, changed: true, ...(replaced ? { replaced } : {}), ...(dbAside.length ? { databaseAside: dbAside } : {}) },
      );
    });
}
