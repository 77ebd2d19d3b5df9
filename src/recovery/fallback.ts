/**
 * The git fallback (docs/recovery.md): when a peer has been unreachable for `fallback.after`,
 * what waits for it in the outbox also goes to a git remote the user's own git can reach, and
 * every node imports its peers' refs on each fetch.
 *
 * - One ref per node, `refs/weft/<computer>`, only ever written by that node; commits, never
 *   one per event: a round makes at most one commit holding one file per peer (named by the
 *   peer's computer): that peer's frames, each `[u32 length][frame]`, built as the sender
 *   builds them (signed; sealed with the link key, so the remote's operator reads nothing).
 * - The commit message carries a manifest (node, parent commit, each file's SHA-256, size and
 *   event count) signed with the node's key. An importer checks the manifest's signature
 *   against the pinned key of the ref's computer, the parent, and its own file's hash before
 *   reading a frame; a commit that fails is refused and recorded (FALLBACK_COMMIT_FORGED).
 * - Frames then go through the mesh's own receive path (`MeshService.acceptRouted`): frame
 *   signature, a replay guard of their own (`git:<node>`; a frame may wait days in git, so
 *   `fallback.max_age`), stamping, limits, trust, the pipeline, exactly once by event id.
 *   The commit's import is committed in the same transaction as its events.
 * - The receiver's acks go back the same way (a file for the sender in its next commit), so
 *   the sender's outbox drains; when the mesh heals, whatever was not acked is sent on the
 *   link, and the receiver recognises by id what git brought already.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { WeftError } from '../errors/index.js';
import { publicKeyFromNodeId, verifySignature } from '../identity/index.js';
import { encodeEventsFrame, type FrameRoute, type KnownPeer, ReplayGuard } from '../mesh/index.js';
import { encodeFrame, type InboundFrame } from '../transport/index.js';
import { every, type Logger } from '../util/index.js';
import { Git, GitError, redactUrls } from './git.js';
import type { RecoveryDeps } from './ports.js';

const MANIFEST_MAGIC = 'weft-fallback 1';
/** Refs of the nodes on the remote, and where a fetch puts them here. */
const REMOTE_PREFIX = 'refs/weft/';
const LOCAL_PREFIX = 'refs/weft-in/';
/** A computer name that can be a ref and a file name as it is. */
const REF_SAFE = /^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$/;

/**
 * True when a computer name can be its git ref (refs/weft/<computer>) in the fallback.
 * @example
 * isGitRefSafe('laptop'); // true
 * isGitRefSafe('a..b'); // false
 */
export function isGitRefSafe(computer: string): boolean {
  return REF_SAFE.test(computer) && !computer.endsWith('.lock');
}
/** Largest commit object read (its message holds the manifest: a line per file); a bigger one is refused unread. */
const MAX_COMMIT_BYTES = 1024 * 1024;
/** Commits of one ref imported per round at most (the rest in the next). */
const MAX_COMMITS_PER_ROUND = 200;
/** Acks waiting to be written for one peer at most (more: the oldest go; the sender re-sends). */
const MAX_PENDING_ACKS = 4096;
/** Refs of unknown computers listed in the status at most. */
const MAX_UNKNOWN_REFS = 256;
/** Most bytes the remote's list of refs may take (~16,000 refs); a longer one is asked again by name. */
const LIST_BYTES = 1024 * 1024;
/** A fetch or push failure is raised at most this often (counted in between). */
const FAILURE_NOTICE_MS = 10 * 60_000;

export interface FallbackInit {
  /** The remote (`fallback.git_remote`): a path or URL. */
  remote: string;
  /** ms an event waits for a peer before it also goes through git (`fallback.after`, default 5 min). */
  afterMs?: number;
  /** ms between rounds (`fallback.interval`, default 30 s). */
  intervalMs?: number;
  /** Oldest frame taken from git, ms (`fallback.max_age`, default 7 days). */
  maxAgeMs?: number;
  /** Events per peer written in one round at most (`fallback.max_events`, default 20,000). */
  maxEvents?: number;
  /** Largest file of frames read from a commit, bytes (default 128 MiB). */
  maxFileBytes?: number;
  /** The node's data dir: the local bare repository is `<dataDir>/fallback.git`. */
  dataDir: string;
  /** The git binary (default `git`). */
  gitBinary?: string;
  /** Longest git run, ms (default 120 s). */
  gitTimeoutMs?: number;
  /** Most output one git run may print, bytes (default 256 MiB). */
  gitMaxOutputBytes?: number;
  /** Largest listing of the remote's refs read whole, bytes (default 1 MiB, ~16,000 refs); past it the known names are asked for. */
  maxListBytes?: number;
}

export type FallbackDeps = Pick<RecoveryDeps, 'node' | 'mesh' | 'peers' | 'identity' | 'clock' | 'logger'>;

/** One peer's state as `weft recovery fallback` shows it. */
export interface FallbackPeerView {
  peer: string;
  /** Its oldest unacknowledged event is older than `fallback.after`. */
  due: boolean;
  waiting: number;
  waitingSince: number | null;
  /** Events written for it so far, and the last commit that carried some. */
  sentEvents: number;
  lastCommit: string | null;
  /** Why nothing goes to it through git, when that is so. */
  blocked: string | null;
}

export interface FallbackRound {
  at: number;
  ms: number;
  imported: { commits: number; frames: number; refused: number };
  pushed: { commit: string | null; events: number; acks: number; peers: string[] };
}

export interface FallbackStatus {
  remote: string;
  refName: string;
  afterMs: number;
  intervalMs: number;
  running: boolean;
  /** When the round in progress began (ms), or null. */
  runningSince: number | null;
  lastRound: FallbackRound | null;
  lastError: string | null;
  failures: number;
  peers: FallbackPeerView[];
  refs: Array<{ ref: string; commit: string; commits: number; frames: number; refused: number; at: number }>;
  /** Refs on the remote of computers this node does not know (not imported). */
  unknownRefs: string[];
}

/** The manifest a commit message carries, parsed. */
interface Manifest {
  node: string;
  computer: string;
  parent: string | null;
  at: number;
  files: Map<string, { sha256: string; bytes: number; events: number }>;
  text: string;
  signature: Uint8Array;
}

function parseManifest(message: string): Manifest | string {
  const start = message.indexOf(`${MANIFEST_MAGIC}\n`);
  if (start < 0) return 'no manifest in the commit message';
  const body = message.slice(start);
  const sigAt = body.lastIndexOf('\nsig ');
  if (sigAt < 0) return 'the manifest is not signed';
  const text = body.slice(0, sigAt + 1);
  const sig = body.slice(sigAt + 5).trim();
  const m: Partial<Manifest> & { files: Manifest['files'] } = { files: new Map(), text, signature: new Uint8Array(Buffer.from(sig, 'base64')) };
  for (const line of text.split('\n').slice(1)) {
    if (line === '') continue;
    const [k, ...rest] = line.split(' ');
    if (k === 'node') m.node = rest[0];
    else if (k === 'computer') m.computer = rest[0];
    else if (k === 'parent') m.parent = rest[0] === '-' ? null : (rest[0] ?? null);
    else if (k === 'at') m.at = Number(rest[0]);
    else if (k === 'file' && rest.length === 4) m.files.set(rest[0] as string, { sha256: rest[1] as string, bytes: Number(rest[2]), events: Number(rest[3]) });
    else return `unknown manifest line '${line.slice(0, 80)}'`;
  }
  if (!m.node || !m.computer || m.parent === undefined || !Number.isFinite(m.at)) return 'the manifest lacks node, computer, parent or at';
  return m as Manifest;
}

/** `[u32 length][frame]`…, as written; an error for anything that does not parse whole. */
export function splitFrames(file: Uint8Array, maxFrameBytes: number): Uint8Array[] | string {
  const out: Uint8Array[] = [];
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  let at = 0;
  while (at < file.length) {
    if (file.length - at < 4) return `a truncated length at byte ${at}`;
    const n = view.getUint32(at);
    at += 4;
    if (n === 0 || n > maxFrameBytes) return `a frame of ${n} bytes at byte ${at - 4} (at most ${maxFrameBytes})`;
    if (file.length - at < n) return `a truncated frame at byte ${at - 4}`;
    out.push(file.subarray(at, at + n));
    at += n;
  }
  return out;
}

function joinFrames(frames: readonly Uint8Array[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of frames) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(f.length);
    parts.push(len, Buffer.from(f));
  }
  return Buffer.concat(parts);
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** The git fallback of one node; see the module comment. */
export class GitFallback {
  readonly remote: string;
  private readonly afterMs: number;
  private readonly intervalMs: number;
  private readonly maxEvents: number;
  private readonly maxFileBytes: number;
  private readonly maxListBytes: number;
  private readonly maxAgeMs: number;
  private readonly git: Git;
  private readonly route: FrameRoute;
  /** Acks owed to each peer, oldest first; kept in `fallback_acks` until a push carries them. */
  private readonly acks = new Map<string, Array<{ id: number; frame: Uint8Array }>>();
  private readonly engaged = new Set<string>();
  private readonly unknownRefs = new Set<string>();
  private stopTimer: (() => void) | undefined;
  private current: Promise<FallbackRound> | undefined;
  private currentSince: number | null = null;
  private stopped = false;
  private ready: Promise<void> | undefined;
  private lastRound: FallbackRound | null = null;
  private lastError: string | null = null;
  private failures = 0;
  /** When the current run of failed rounds began (its notices share one notification). */
  private failingSince = 0;
  private lastNoticeAt = new Map<string, number>();
  private readonly s;
  private readonly logger: Logger;

  constructor(
    init: FallbackInit,
    private readonly deps: FallbackDeps,
  ) {
    this.remote = init.remote;
    this.afterMs = init.afterMs ?? 300_000;
    this.intervalMs = init.intervalMs ?? 30_000;
    this.maxEvents = init.maxEvents ?? 20_000;
    this.maxFileBytes = init.maxFileBytes ?? 128 * 1024 * 1024;
    this.maxListBytes = init.maxListBytes ?? LIST_BYTES;
    this.maxAgeMs = init.maxAgeMs ?? 7 * 86_400_000;
    this.logger = deps.logger;
    const computer = deps.node.self.computer;
    this.git = new Git({
      gitDir: join(init.dataDir, 'fallback.git'),
      ...(init.gitBinary ? { binary: init.gitBinary } : {}),
      ...(init.gitTimeoutMs ? { timeoutMs: init.gitTimeoutMs } : {}),
      ...(init.gitMaxOutputBytes ? { maxOutputBytes: init.gitMaxOutputBytes } : {}),
      author: { name: `weft ${computer}`, email: `weft@${computer}` },
    });
    const store = deps.node.ns.store;
    const inner = new ReplayGuard({ maxAgeMs: this.maxAgeMs }, { store, logger: deps.logger });
    // Frames from git have a replay space of their own: the link's window (5 min) and its
    // sequence high-water marks are not theirs.
    const routed = <H extends { sender: string }>(h: H): H => ({ ...h, sender: `git:${h.sender}` });
    this.route = {
      guard: { check: (h) => inner.check(routed(h)), record: (h) => inner.record(routed(h)) },
      types: new Set(['events', 'ack']),
      // Kept in the database: a restart before the next push would otherwise lose them, and
      // the sender's outbox would wait for the link although git brought its events.
      sendAck: async (peer, ack) => {
        await store.write(() => {
          const list = this.acks.get(peer) ?? [];
          list.push({ id: Number(this.s.addAck.run(peer, ack).lastInsertRowid), frame: ack });
          if (list.length > MAX_PENDING_ACKS) this.s.dropAck.run((list.shift() as { id: number }).id);
          this.acks.set(peer, list);
        });
      },
    };
    const db = store.db;
    this.s = {
      imported: db.prepare('SELECT ref, commit_id AS commitId, commits, frames, refused, at FROM fallback_imported WHERE ref = ?'),
      allImported: store.reader.prepare('SELECT ref, commit_id AS "commit", commits, frames, refused, at FROM fallback_imported ORDER BY ref'),
      setImported: db.prepare(
        `INSERT INTO fallback_imported (ref, commit_id, commits, frames, refused, at) VALUES (?, ?, 1, ?, ?, ?)
         ON CONFLICT(ref) DO UPDATE SET commit_id = excluded.commit_id, commits = commits + 1, frames = frames + excluded.frames, refused = refused + excluded.refused, at = excluded.at`,
      ),
      sent: db.prepare('SELECT outbox_id AS outboxId, commit_id AS commitId, events, since FROM fallback_sent WHERE peer = ?'),
      setSent: db.prepare(
        `INSERT INTO fallback_sent (peer, outbox_id, commit_id, events, since, at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(peer) DO UPDATE SET outbox_id = excluded.outbox_id, commit_id = excluded.commit_id, events = events + excluded.events, at = excluded.at`,
      ),
      addAck: db.prepare('INSERT INTO fallback_acks (peer, frame) VALUES (?, ?)'),
      dropAck: db.prepare('DELETE FROM fallback_acks WHERE id = ?'),
    };
    for (const row of db.prepare('SELECT id, peer, frame FROM fallback_acks ORDER BY id').all() as Array<{ id: number; peer: string; frame: Buffer }>) {
      const list = this.acks.get(row.peer) ?? [];
      list.push({ id: row.id, frame: new Uint8Array(row.frame) });
      this.acks.set(row.peer, list);
    }
    if (!isGitRefSafe(computer)) {
      throw new WeftError('WEFT_CONFIG', `the git fallback needs a computer name that can be a git ref (letters, digits, '-', '_', single dots); '${computer}' cannot`);
    }
  }

  /** This node's ref on the remote. */
  get refName(): string {
    return `${REMOTE_PREFIX}${this.deps.node.self.computer}`;
  }

  /** Creates the local repository and runs a round every interval (the first at once). */
  start(): Promise<void> {
    this.stopTimer = every(this.deps.clock, this.intervalMs, () => void this.round().catch(() => undefined), { unref: true });
    void this.round().catch(() => undefined);
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopTimer?.();
    // A fetch or push to a slow remote is not waited out: the next start does it again.
    this.git.killAll();
    await this.current?.catch(() => undefined);
  }

  /** One round now (or the one running): fetch, import every peer's ref, write and push what waits. */
  round(): Promise<FallbackRound> {
    if (this.stopped) return Promise.reject(new WeftError('WEFT_STOPPED', 'the git fallback is stopped'));
    if (this.current === undefined) {
      this.currentSince = this.deps.clock.now();
      this.current = this.runRound().finally(() => {
        this.current = undefined;
        this.currentSince = null;
      });
    }
    return this.current;
  }

  private async runRound(): Promise<FallbackRound> {
    const t0 = this.deps.clock.now();
    this.ready ??= this.git.ensure();
    try {
      await this.ready;
    } catch (err) {
      this.ready = undefined;
      throw await this.failed('init', err as Error);
    }
    const imported = { commits: 0, frames: 0, refused: 0 };
    try {
      await this.fetch();
    } catch (err) {
      throw await this.failed('fetch', err as Error);
    }
    const refs = await this.git.refs(LOCAL_PREFIX);
    // One ref that cannot be read must not stop the others, nor this node's own writing.
    let importFailed = false;
    for (const [ref, tip] of refs) {
      if (this.stopped) break;
      const computer = ref.slice(LOCAL_PREFIX.length);
      if (computer === this.deps.node.self.computer) continue;
      try {
        const r = await this.importRef(computer, tip);
        imported.commits += r.commits;
        imported.frames += r.frames;
        imported.refused += r.refused;
      } catch (err) {
        if (this.stopped) break;
        importFailed = true;
        await this.failed('import', err as Error, `import of ${REMOTE_PREFIX}${computer}`);
      }
    }
    let pushed: FallbackRound['pushed'] = { commit: null, events: 0, acks: 0, peers: [] };
    if (!this.stopped) {
      try {
        pushed = await this.write(refs.get(`${LOCAL_PREFIX}${this.deps.node.self.computer}`));
      } catch (err) {
        throw await this.failed('push', err as Error);
      }
    }
    if (!importFailed) {
      this.lastError = null;
      this.failures = 0;
    }
    const round = { at: t0, ms: this.deps.clock.now() - t0, imported, pushed };
    this.lastRound = round;
    if (imported.commits > 0 || pushed.commit) this.logger.info({ imported, pushed: { ...pushed, peers: pushed.peers.length } }, 'git fallback round');
    return round;
  }

  /** Whether a computer's ref is read here: this node's own, or a peer's the mesh knows by that name. */
  private importable(computer: string): boolean {
    if (!REF_SAFE.test(computer)) return false;
    if (computer === this.deps.node.self.computer) return true;
    const peer = this.deps.peers.byName(computer);
    return peer !== undefined && peer.wire !== 'teleclaude';
  }

  /**
   * Fetches this node's ref and its known peers' refs, nothing else: whoever can write the
   * remote can add refs under any name, and fetching them all (`refs/weft/*`) filled this
   * node's disk with their objects. The remote's refs are listed first (a listing of more than
   * LIST_BYTES is asked again by name, so many refs cannot stop the round); the names of
   * unknown computers are kept for the status. A ref gone from the remote is deleted here, as
   * `--prune` did.
   */
  private async fetch(): Promise<void> {
    const wanted = new Set<string>();
    const unknown = new Set<string>();
    let listed: Buffer;
    let whole = true;
    try {
      listed = await this.git.run(['ls-remote', '--refs', this.remote, `${REMOTE_PREFIX}*`], { maxOutputBytes: this.maxListBytes });
    } catch (err) {
      if (!(err instanceof GitError && err.overflowed)) throw err;
      whole = false;
      const names = [this.deps.node.self.computer, ...this.deps.peers.getAllPeers().map((p) => p.computer)].filter((c) => this.importable(c));
      listed = await this.git.run(['ls-remote', '--refs', this.remote, ...names.map((c) => `${REMOTE_PREFIX}${c}`)], { maxOutputBytes: this.maxListBytes });
    }
    for (const line of listed.toString('utf8').split('\n')) {
      const ref = line.split('\t')[1];
      if (ref === undefined || !ref.startsWith(REMOTE_PREFIX)) continue;
      const computer = ref.slice(REMOTE_PREFIX.length);
      if (this.importable(computer)) wanted.add(computer);
      else if (unknown.size < MAX_UNKNOWN_REFS) unknown.add(computer);
    }
    // The unknown names come from a whole listing only; one by name keeps the last.
    if (whole) {
      this.unknownRefs.clear();
      for (const c of unknown) this.unknownRefs.add(c);
    }
    if (wanted.size > 0) {
      const specs = [...wanted].map((c) => `+${REMOTE_PREFIX}${c}:${LOCAL_PREFIX}${c}`);
      await this.git.run(['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', this.remote, ...specs]);
    }
    for (const ref of (await this.git.refs(LOCAL_PREFIX)).keys()) {
      if (!wanted.has(ref.slice(LOCAL_PREFIX.length))) await this.git.run(['update-ref', '-d', ref]);
    }
  }

  /** Notes a failed step; raised as mesh.fallback.failed at most every 10 minutes per step. */
  private async failed(step: string, err: Error, label = step): Promise<Error> {
    const now = this.deps.clock.now();
    if (this.failures === 0) this.failingSince = now;
    this.failures++;
    const message = redactUrls(err.message);
    this.lastError = `${label}: ${message}`;
    this.logger.warn({ step, err: message }, 'git fallback round failed; events wait in the outbox');
    const last = this.lastNoticeAt.get(step);
    if (last === undefined || now - last >= FAILURE_NOTICE_MS) {
      this.lastNoticeAt.set(step, now);
      await this.deps.node
        .emit({ event: 'mesh.fallback.failed', payload: { step, since: this.failingSince, remote: redactUrls(this.remote).slice(0, 2000), error: message.slice(0, 2000), failures: this.failures } })
        .catch(() => undefined);
    }
    return err instanceof GitError || err instanceof WeftError ? err : new WeftError('WEFT_INTERNAL', message);
  }

  /** Imports the commits of one node's ref after the last one imported, oldest first. */
  private async importRef(computer: string, tip: string): Promise<{ commits: number; frames: number; refused: number }> {
    const done = { commits: 0, frames: 0, refused: 0 };
    const ref = `${REMOTE_PREFIX}${computer}`;
    const peer = this.deps.peers.byName(computer);
    if (!peer || peer.wire === 'teleclaude' || !REF_SAFE.test(computer)) {
      if (this.unknownRefs.size < MAX_UNKNOWN_REFS) this.unknownRefs.add(computer);
      return done;
    }
    this.unknownRefs.delete(computer);
    const last = this.s.imported.get(ref) as { commitId: string } | undefined;
    if (last?.commitId === tip) return done;
    // After a rewrite of the ref (its last import is no ancestor of the tip), its whole history
    // is read again: what was applied already is recognised by the replay guard and by id.
    const continued = last !== undefined && (await this.git.isAncestor(last.commitId, tip));
    const list = (await this.git.text(['rev-list', '--first-parent', tip, ...(continued ? [`^${last.commitId}`] : [])])).split('\n').filter(Boolean).reverse();
    for (const commit of list.slice(0, MAX_COMMITS_PER_ROUND)) {
      if (this.stopped) break;
      const r = await this.importCommit(computer, peer, ref, commit, last !== undefined && !continued);
      done.commits++;
      done.frames += r.frames;
      done.refused += r.refused;
    }
    return done;
  }

  /**
   * Imports one commit. `again`: the ref was rewritten (or this node's copy of the repository
   * lost), so its history is read anew: frames applied before are recognised by the replay
   * guard as deliveries again (counted, not refused), and commits older than
   * `fallback.max_age` are passed over (every frame in them would be refused as too old; what
   * they carried and was never acknowledged still waits in the sender's outbox).
   */
  private async importCommit(computer: string, peer: KnownPeer, ref: string, commit: string, again: boolean): Promise<{ frames: number; refused: number }> {
    const { mesh, node } = this.deps;
    const me = node.self.computer;
    const now = () => this.deps.clock.now();
    const record = (frames: number, refused: number) => () => this.s.setImported.run(ref, commit, frames, refused, now());
    const refuse = async (code: string, why: string, raw: string): Promise<{ frames: number; refused: number }> => {
      await mesh.reject(peer.nodeId, computer, code, `commit ${commit.slice(0, 12)} of ${ref}: ${why}`, { ref: `git:${ref}:${commit}`, raw });
      await node.ns.store.write(record(0, 1));
      return { frames: 0, refused: 1 };
    };
    const commitBytes = Number(await this.git.text(['cat-file', '-s', commit]));
    if (!(commitBytes <= MAX_COMMIT_BYTES)) {
      return refuse('FALLBACK_COMMIT_FORGED', `a commit of ${commitBytes} bytes (a fallback commit has at most ${MAX_COMMIT_BYTES}); not read`, '');
    }
    const raw = (await this.git.run(['cat-file', 'commit', commit])).toString('utf8');
    const headEnd = raw.indexOf('\n\n');
    const head = headEnd < 0 ? raw : raw.slice(0, headEnd);
    const message = headEnd < 0 ? '' : raw.slice(headEnd + 2);
    const parents = head
      .split('\n')
      .filter((l) => l.startsWith('parent '))
      .map((l) => l.slice(7));
    const m = parseManifest(message);
    if (typeof m === 'string') return refuse('FALLBACK_COMMIT_FORGED', m, raw.slice(0, 4096));
    const key = publicKeyFromNodeId(m.node);
    if (m.node !== peer.nodeId || m.computer !== computer) {
      return refuse('FALLBACK_COMMIT_FORGED', `the manifest names ${m.computer} (${m.node}), not the pinned key of ${computer}`, raw.slice(0, 4096));
    }
    if (!key || !verifySignature(key, Buffer.from(m.text, 'utf8'), m.signature)) {
      return refuse('FALLBACK_COMMIT_FORGED', `the manifest's signature does not verify against ${computer}'s pinned key`, raw.slice(0, 4096));
    }
    if ((parents[0] ?? null) !== m.parent) {
      return refuse('FALLBACK_COMMIT_FORGED', `the commit's parent ${parents[0] ?? 'none'} is not the signed one (${m.parent ?? 'none'})`, raw.slice(0, 4096));
    }
    const entry = m.files.get(me);
    if (!entry || (again && this.deps.clock.now() - m.at > this.maxAgeMs)) {
      await node.ns.store.write(record(0, 0));
      return { frames: 0, refused: 0 };
    }
    const tree = await this.git.text(['ls-tree', '-l', commit, '--', me]);
    const match = /^\d+ blob ([0-9a-f]+)\s+(\d+)\t/.exec(tree);
    if (!match) return refuse('FALLBACK_COMMIT_FORGED', `the manifest lists a file for ${me} that the commit does not hold`, raw.slice(0, 4096));
    const size = Number(match[2]);
    if (size !== entry.bytes) return refuse('FALLBACK_COMMIT_FORGED', `the file for ${me} has ${size} bytes; the manifest signed ${entry.bytes}`, raw.slice(0, 4096));
    if (size > this.maxFileBytes) return refuse('FALLBACK_BUNDLE_TOO_LARGE', `the file for ${me} has ${size} bytes (at most ${this.maxFileBytes})`, raw.slice(0, 4096));
    const file = await this.git.readBlob(match[1] as string);
    if (sha256(file) !== entry.sha256) return refuse('FALLBACK_COMMIT_FORGED', `the file for ${me} does not hash to the signed SHA-256`, raw.slice(0, 4096));
    const frames = splitFrames(file, mesh.limits.maxFrameBytes);
    if (typeof frames === 'string') return refuse('FALLBACK_BAD_BUNDLE', `the file for ${me} holds ${frames}`, raw.slice(0, 4096));
    const inbound: InboundFrame[] = frames.map((bytes, i) => ({
      from: computer,
      bytes,
      deliveryId: `git:${commit.slice(0, 12)}:${i}`,
      deliveryCount: again ? 2 : 1,
      ack: () => Promise.resolve(),
    }));
    const r = await mesh.acceptRouted(inbound, { ...this.route, inTransaction: () => void this.s.setImported.run(ref, commit, frames.length, 0, now()) });
    return { frames: frames.length, refused: r.refused };
  }

  /**
   * Writes one commit with what waits for every due peer (and the acks owed to peers) on top
   * of the remote's tip of this node's ref, and pushes it. The per-peer marks move only after
   * the push: a failed one writes the same events again next round.
   */
  private async write(remoteTip: string | undefined): Promise<FallbackRound['pushed']> {
    const { mesh, node, peers } = this.deps;
    const now = this.deps.clock.now();
    const files = new Map<string, { bytes: Buffer; events: number; lastId: number; acks: number }>();
    const acksTaken = new Map<string, Array<{ id: number; frame: Uint8Array }>>();
    /** Peers whose waiting rows were all too big for any frame: their mark moves past them. */
    const passedOver = new Map<string, number>();
    // This node's ref on the remote must name a commit to build on. Something else there (a
    // blob, a tree, a tag someone wrote in its place) would fail every round for good: the
    // ref starts again from this node's own last commit, pushed over what is there.
    let based: { parent: string | undefined; force: boolean } | undefined;
    const base = async (): Promise<{ parent: string | undefined; force: boolean }> => {
      if (based) return based;
      based = { parent: remoteTip, force: false };
      if (remoteTip !== undefined && (await this.git.text(['cat-file', '-t', remoteTip])) !== 'commit') {
        based = { parent: await this.git.resolve(this.refName), force: true };
        this.logger.warn({ ref: this.refName, found: remoteTip, parent: based.parent ?? null }, "this node's ref on the git remote does not name a commit: written again from this node's last commit");
      }
      return based;
    };
    for (const p of peers.getAllPeers()) {
      if (p.wire === 'teleclaude' || p.nodeId === this.deps.identity().nodeId || !REF_SAFE.test(p.computer)) continue;
      const frames: Uint8Array[] = [];
      let events = 0;
      let lastId = 0;
      // Room is kept for the acks owed to this peer, written in the same file.
      let fileBytes = (this.acks.get(p.computer) ?? []).reduce((n, a) => n + 4 + a.frame.length, 0);
      const due = this.isDue(p.computer, now);
      const key = mesh.linkKey(p.computer);
      if (due && key) {
        if (!this.engaged.has(p.computer)) {
          this.engaged.add(p.computer);
          const oldest = mesh.outbox.oldest(p.computer);
          await node
            .emit({
              event: 'mesh.fallback.engaged',
              payload: { peer: p.computer, waitingSince: oldest?.createdAt ?? now, waiting: mesh.outbox.depth(p.computer), remote: redactUrls(this.remote).slice(0, 2000) },
            })
            .catch(() => undefined);
        }
        const sent = this.s.sent.get(p.computer) as { outboxId: number; commitId: string } | undefined;
        let cursor = sent?.outboxId ?? 0;
        // The last commit that carried events for this peer is gone from this node's ref (an
        // operator deleted the ref, someone rewrote it): what the peer has not acked yet may
        // never have reached it, so everything still waiting is written again (the peer
        // recognises by id what it has).
        if (cursor > 0 && sent?.commitId) {
          const { parent } = await base();
          if (parent === undefined || !(await this.git.isAncestor(sent.commitId, parent))) {
            this.logger.warn({ peer: p.computer, commit: sent.commitId, ref: this.refName }, "what was written to git for a peer is no longer on this node's ref: what waits for it is written again");
            cursor = 0;
          }
        }
        while (events < this.maxEvents) {
          const rows = mesh.outbox.peek(p.computer, cursor, Math.min(mesh.limits.maxFrameEnvelopes, this.maxEvents - events));
          if (rows.length === 0) break;
          const sequence = await mesh.nextSequence();
          const { bytes, take } = encodeEventsFrame(rows, mesh.limits.maxFrameBytes, (envelopes) =>
            encodeFrame(
              { type: 'events', sequence, timestamp: this.deps.clock.now(), body: { envelopes } },
              { identity: this.deps.identity(), crc32c: true, deflate: { minBytes: 512 }, aead: { key } },
            ),
          );
          // One the link cannot carry either: the sender dead-letters it; git skips it.
          const skip = bytes.length > mesh.limits.maxFrameBytes;
          // The peer reads a file of at most maxFileBytes: the rest goes in the next round.
          if (!skip && frames.length > 0 && fileBytes + 4 + bytes.length > this.maxFileBytes) break;
          cursor = (take[take.length - 1] as { id: number }).id;
          lastId = cursor;
          if (skip) continue;
          frames.push(bytes);
          fileBytes += 4 + bytes.length;
          events += take.length;
        }
      } else if (!due) {
        this.engaged.delete(p.computer);
      }
      const acks = this.acks.get(p.computer) ?? [];
      if (acks.length > 0) {
        acksTaken.set(p.computer, acks.slice());
        for (const a of acks) frames.push(a.frame);
      }
      if (frames.length > 0) files.set(p.computer, { bytes: joinFrames(frames), events, lastId, acks: acks.length });
      else if (lastId > 0) passedOver.set(p.computer, lastId);
    }
    if (passedOver.size > 0) {
      await node.ns.store.write(() => {
        for (const [peer, id] of passedOver) this.s.setSent.run(peer, id, '', 0, now, now);
      });
    }
    if (files.size === 0) return { commit: null, events: 0, acks: 0, peers: [] };
    const names = [...files.keys()].sort();
    const self = node.self;
    const { parent, force } = await base();
    const identity = this.deps.identity();
    let manifest = `${MANIFEST_MAGIC}\nnode ${identity.nodeId}\ncomputer ${self.computer}\nparent ${parent ?? '-'}\nat ${now}\n`;
    const treeLines: string[] = [];
    for (const name of names) {
      const f = files.get(name) as { bytes: Buffer; events: number };
      manifest += `file ${name} ${sha256(f.bytes)} ${f.bytes.length} ${f.events}\n`;
      treeLines.push(`100644 blob ${await this.git.blob(f.bytes)}\t${name}`);
    }
    const signature = Buffer.from(identity.sign(Buffer.from(manifest, 'utf8'))).toString('base64');
    const events = names.reduce((n, k) => n + (files.get(k)?.events ?? 0), 0);
    const acks = names.reduce((n, k) => n + (files.get(k)?.acks ?? 0), 0);
    const message = `weft fallback: ${events} events, ${acks} acks for ${names.join(', ')}\n\n${manifest}sig ${signature}\n`;
    const tree = await this.git.text(['mktree'], { input: `${treeLines.join('\n')}\n` });
    const commit = await this.git.text(['commit-tree', tree, ...(parent ? ['-p', parent] : []), '-F', '-'], { input: message });
    await this.git.run(['update-ref', this.refName, commit]);
    await this.git.run(['push', '--quiet', '--no-verify', this.remote, `${force ? '+' : ''}${commit}:${this.refName}`]);
    // The acks are on the remote only now: a failed push keeps them for the next round (dropped
    // there, the sender's outbox would wait for the link, since its events are in git already).
    for (const [peer, taken] of acksTaken) {
      const left = (this.acks.get(peer) ?? []).filter((a) => !taken.includes(a));
      if (left.length > 0) this.acks.set(peer, left);
      else this.acks.delete(peer);
    }
    if (acksTaken.size > 0) {
      await node.ns.store.write(() => {
        for (const taken of acksTaken.values()) for (const a of taken) this.s.dropAck.run(a.id);
      });
    }
    // What the remote has now: the next round builds on it even before its fetch.
    await this.git.run(['update-ref', `${LOCAL_PREFIX}${self.computer}`, commit]);
    await node.ns.store.write(() => {
      for (const [peer, f] of files) {
        if (f.events === 0) continue;
        this.s.setSent.run(peer, f.lastId, commit, f.events, now, now);
      }
    });
    return { commit, events, acks, peers: names };
  }

  /** The peer's oldest unacknowledged event has waited `fallback.after`, and some are not in git yet. */
  private isDue(peer: string, now: number): boolean {
    const oldest = this.deps.mesh.outbox.oldest(peer);
    return oldest !== undefined && now - oldest.createdAt >= this.afterMs;
  }

  /** What `weft status` lists while rounds fail: events for unreachable peers then wait in the outbox. */
  problems(): string[] {
    if (this.lastError === null) return [];
    const first = this.lastError.split('\n')[0] ?? '';
    return [
      `fallback: the git fallback's last ${this.failures === 1 ? 'round' : `${this.failures} rounds`} failed (${first.slice(0, 300)}); what waits for an unreachable peer stays in the outbox ('weft recovery fallback')`,
    ];
  }

  status(): FallbackStatus {
    const { mesh, peers } = this.deps;
    const now = this.deps.clock.now();
    const views: FallbackPeerView[] = [];
    for (const p of peers.getAllPeers()) {
      if (p.wire === 'teleclaude' || p.nodeId === this.deps.identity().nodeId) continue;
      const oldest = mesh.outbox.oldest(p.computer);
      const sent = this.s.sent.get(p.computer) as { commitId: string; events: number } | undefined;
      const due = this.isDue(p.computer, now);
      views.push({
        peer: p.computer,
        due,
        waiting: mesh.outbox.depth(p.computer),
        waitingSince: oldest?.createdAt ?? null,
        sentEvents: sent?.events ?? 0,
        lastCommit: sent?.commitId ?? null,
        blocked: !REF_SAFE.test(p.computer)
          ? 'its computer name cannot be a git file name'
          : mesh.linkKey(p.computer) === undefined
            ? 'no link key from it yet (frames in git are sealed; its hello has never arrived)'
            : null,
      });
    }
    return {
      remote: redactUrls(this.remote),
      refName: this.refName,
      afterMs: this.afterMs,
      intervalMs: this.intervalMs,
      running: this.current !== undefined,
      runningSince: this.currentSince,
      lastRound: this.lastRound,
      lastError: this.lastError,
      failures: this.failures,
      peers: views,
      refs: this.s.allImported.all() as FallbackStatus['refs'],
      unknownRefs: [...this.unknownRefs].sort(),
    };
  }
}
