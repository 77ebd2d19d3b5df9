import { existsSync, readFileSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import type { parse as ParseToml } from 'smol-toml';
import { ConfigError } from '../errors/index.js';
import { didYouMean, displayUrl, maskUrlPasswords } from '../util/index.js';
import { redisKeys } from './redis-keys.js';

/** The TOML parser, loaded only when a config file exists (a CLI call without one never pays for it). */
const parseToml = (text: string): Record<string, unknown> => (createRequire(import.meta.url)('smol-toml') as { parse: typeof ParseToml }).parse(text);

type Kind = 'string' | 'integer' | 'enum' | 'boolean' | 'string[]' | 'map' | 'table[]';

interface KeySpec {
  kind: Kind;
  default?: unknown;
  values?: readonly string[];
  min?: number;
  max?: number;
  secret?: boolean;
  help: string;
}

/**
 * Every config key, its type, default and meaning. The TOML file, the environment
 * (`api.port` → `WEFT_API_PORT`) and `weft config show` all derive from this table.
 */
export const CONFIG_KEYS = {
  'computer.name': { kind: 'string', help: 'this computer\'s name in the mesh (default: hostname)' },
  'computer.cluster': { kind: 'string', help: 'cluster this computer belongs to (cluster events go to its members)' },
  data_dir: { kind: 'string', help: 'where the node keeps its SQLite file, keys, token and logs' },
  'redis.url': { kind: 'string', secret: true, help: 'use Redis Streams for the local bus and mesh (e.g. redis://127.0.0.1:6379)' },
  'redis.prefix': { kind: 'string', default: 'weft:', help: 'prefix of every key Weft writes on Redis (streams, groups, registry, claims)' },
  'redis.stream': { kind: 'string', help: 'the local bus stream (default {prefix}events:{computer}, on a Redis Cluster {prefix}{{computer}}:events; "teleclaude:events" reads TeleClaude\'s producers)' },
  'redis.group': { kind: 'string', help: 'consumer group of the pipeline (default {prefix}pipeline:{computer})' },
  'redis.cluster': {
    kind: 'boolean',
    default: false,
    help: 'redis.url names a Redis Cluster: one or more seed nodes, comma separated (redis://a:7000,redis://b:7001); keys carry hash tags so each computer\'s inbox and its group share a slot while computers spread over the slots',
  },
  'nats.url': { kind: 'string', secret: true, help: 'NATS server(s) for mesh.provider = "nats", comma separated (nats://127.0.0.1:4222; credentials as nats://user:password@host:4222 or nats://token@host:4222); JetStream must be enabled (nats-server -js)' },
  'nats.prefix': { kind: 'string', default: 'weft', help: 'prefix of every stream, subject, consumer and KV bucket Weft makes on NATS (two fleets on one server keep apart by it)' },
  'daemon.stop_timeout': { kind: 'integer', default: 10, min: 1, max: 600, help: 'seconds a stop may take; what is not sent yet stays durable in the journal and outboxes' },
  'store.max_dead_letters': { kind: 'integer', default: 10_000, min: 100, max: 10_000_000, help: 'dead letters kept (events a cartridge failed on, newest first); older ones are deleted, the per-cartridge failure counts stay' },
  'api.host': { kind: 'string', default: '127.0.0.1', help: 'address the HTTP API binds to (loopback by default)' },
  'api.port': { kind: 'integer', default: 9237, min: 0, max: 65535, help: 'HTTP API port (0 picks a free one)' },
  'api.max_connections': { kind: 'integer', default: 1024, min: 1, max: 100_000, help: 'HTTP and WebSocket connections the API keeps open at once; one more is answered 429 and closed (each holds a file descriptor before its token is checked)' },
  'api.dashboard': { kind: 'boolean', default: true, help: 'serve the web dashboard at / (weft dashboard opens it with a one-time login link)' },
  'autonomy.cartridge_install': { kind: 'enum', values: ['L1', 'L2', 'L3'], default: 'L1', help: 'L1 human approves, L2 guardian decides, L3 autonomous' },
  'autonomy.guardian_command': { kind: 'string', help: 'program that judges cartridges at L2 (JSON on stdin, {"approve":bool} out)' },
  'autonomy.promotion_threshold': { kind: 'integer', default: 10, min: 1, max: 1_000_000, help: 'invocations before a promotion is suggested' },
  'autonomy.domain_default': { kind: 'enum', values: ['L1', 'L2', 'L3'], default: 'L3', help: 'level of a domain cartridge\'s actions when no rule is more specific: L1 held for a human, L2 done and the domain\'s admins told, L3 done (weft config autonomy)' },
  'domains.enabled': { kind: 'boolean', default: true, help: 'run the domain and personal pipelines found under <data_dir>/company and <data_dir>/personal' },
  'domains.inbox_limit': { kind: 'integer', default: 100_000, min: 100, max: 100_000_000, help: 'events waiting for one domain or personal lane; past it new events skip that lane only (counted, domains.inbox.overflow)' },
  'domains.batch': { kind: 'integer', default: 64, min: 1, max: 4096, help: 'events a domain sends its cartridges per sandbox round trip' },
  'trust.strictness': { kind: 'enum', values: ['permissive', 'standard', 'strict'], default: 'standard', help: 'how the trust evaluator treats unknown or odd events' },
  'trust.rate_per_second': { kind: 'integer', default: 2000, min: 1, max: 10_000_000, help: 'events per second one local source or unknown peer may send before it is throttled' },
  'trust.rate_burst': { kind: 'integer', default: 10000, min: 1, max: 100_000_000, help: 'events such a source may send at once' },
  'telegram.bot_token': { kind: 'string', secret: true, help: 'Telegram bot token; delivery is off without it' },
  'telegram.chat_id': { kind: 'string', help: 'chat to deliver notifications to' },
  'telegram.min_level': { kind: 'integer', default: 2, min: 0, max: 3, help: 'lowest level delivered (0..3)' },
  'telegram.base_url': { kind: 'string', default: 'https://api.telegram.org', help: 'Bot API base URL' },
  'discord.webhook_url': { kind: 'string', secret: true, help: 'Discord incoming webhook URL (https://discord.com/api/webhooks/{id}/{token}); Discord delivery is on with it, or with a bot token and channel id' },
  'discord.username': { kind: 'string', help: 'name the Discord webhook posts as (webhook only)' },
  'discord.bot_token': { kind: 'string', secret: true, help: 'Discord bot token, instead of a webhook (needs discord.channel_id)' },
  'discord.channel_id': { kind: 'string', help: 'Discord channel the bot posts to (its id, quoted)' },
  'discord.min_level': { kind: 'integer', default: 2, min: 0, max: 3, help: 'lowest level delivered to Discord (0..3)' },
  'discord.base_url': { kind: 'string', default: 'https://discord.com', help: 'Discord API base URL for the bot' },
  'whatsapp.token': { kind: 'string', secret: true, help: 'WhatsApp Cloud API access token; delivery is on with it, whatsapp.phone_number_id and whatsapp.to' },
  'whatsapp.phone_number_id': { kind: 'string', help: 'id of the sending number in the Cloud API (quoted), not the number itself' },
  'whatsapp.to': { kind: 'string', help: 'number to deliver to, international format (e.g. "31612345678")' },
  'whatsapp.min_level': { kind: 'integer', default: 2, min: 0, max: 3, help: 'lowest level delivered to WhatsApp (0..3)' },
  'whatsapp.base_url': { kind: 'string', default: 'https://graph.facebook.com', help: 'Graph API base URL' },
  'whatsapp.api_version': { kind: 'string', default: 'v21.0', help: 'Graph API version' },
  'webhook.url': { kind: 'string', secret: true, help: 'URL notifications are POSTed to (an ntfy topic URL or any endpoint); webhook delivery is on with it' },
  'webhook.token': { kind: 'string', secret: true, help: 'sent as Authorization: Bearer <token> to the webhook' },
  'webhook.format': { kind: 'enum', values: ['ntfy', 'json'], default: 'ntfy', help: 'ntfy: the message as the body with Title/Priority/Tags headers; json: the notification as JSON' },
  'webhook.min_level': { kind: 'integer', default: 2, min: 0, max: 3, help: 'lowest level delivered to the webhook (0..3)' },
  'log.level': { kind: 'enum', values: ['trace', 'debug', 'info', 'warn', 'error', 'fatal'], default: 'info', help: 'log level' },
  'mesh.provider': { kind: 'enum', values: ['none', 'tls', 'redis', 'nats', 'memory'], default: 'none', help: 'how this node reaches peers: tls (direct links), redis (Redis Streams, also a Redis Cluster with redis.cluster), nats (NATS JetStream at nats.url)' },
  'mesh.tls_host': { kind: 'string', default: '127.0.0.1', help: 'address the TLS link listens on' },
  'mesh.tls_port': { kind: 'integer', default: 9238, min: 0, max: 65535, help: 'port of the direct TLS link' },
  'mesh.caps_required': { kind: 'string[]', default: [], help: 'serializer caps a link must have (crc32c, deflate, aead); a peer or provider without one: no link, transport.noprov. aead here seals frames on every provider, TLS too' },
  'mesh.caps_preferred': {
    kind: 'string[]',
    default: ['crc32c', 'aead'],
    help: 'caps a link should have; missing ones raise transport.flatneg. aead (default on) seals every frame with a per-link key agreed by X25519 through signed hellos, so a shared Redis sees no payloads; over TLS the channel already encrypts, so a preferred aead is met by it (no sealing twice, no flatneg). Setting this list replaces the default: keep aead in it on a shared Redis',
  },
  'mesh.warn_down': { kind: 'boolean', default: true, help: 'raise transport.flatneg when a preferred cap is dropped (e.g. aead with a peer that cannot seal: its frames cross Redis readable)' },
  'mesh.frame_envelopes': { kind: 'integer', default: 256, min: 1, max: 10_000, help: 'envelopes per signed frame' },
  'mesh.max_inflight_frames': { kind: 'integer', default: 64, min: 1, max: 100_000, help: 'unacknowledged frames per peer before the sender waits' },
  'mesh.peers': { kind: 'string[]', default: [], help: 'static peers: "computer[/cluster]@host:port#weft:ed25519:<key>[!trust]"' },
  'mesh.teleclaude_peers': { kind: 'string[]', default: [], help: 'TeleClaude nodes reached over the seed\'s plain JSON wire on Redis: "computer[/cluster]" (unsigned: accepted only from this cluster)' },
  'mesh.enable_mdns': { kind: 'boolean', default: false, help: 'announce this node as _weft._tcp on the local network and list nodes found there as candidates (no trust, no events until weft peers pin)' },
  'federation.enclave': { kind: 'string', help: 'this node\'s enclave for invoke policy (default: its cluster, else its computer name)' },
  'federation.enclaves': { kind: 'map', default: {}, help: 'enclave of a peer by computer name, node id or fingerprint (default: the peer\'s cluster): { saturn = "lab" }' },
  'federation.edges': { kind: 'string[]', default: [], help: 'cross-enclave invoke edges this node accepts, "from->to" (e.g. "lab->prod"); an invoke across enclaves needs one and approved pipeline metadata' },
  'federation.pipelines': { kind: 'table[]', default: [], help: 'approved pipelines for cross-enclave invoke: [[federation.pipelines]] id = "demo/ingest", stages = ["StageA"], handlers = ["node.health"]' },
  'federation.invoke_max_concurrent': { kind: 'integer', default: 32, min: 1, max: 10_000, help: 'invoke calls this node runs for peers at once; more are refused at once (tp_inv_reject)' },
  'federation.invoke_max_deadline': { kind: 'integer', default: 600_000, min: 10, max: 86_400_000, help: 'ms: the longest deadline an invoke may ask for (longer ones are cut to it)' },
  'federation.invoke_forward': {
    kind: 'boolean',
    default: false,
    help: 'serve invoke.forward (call onward for a peer: two-hop calls). Off by default; on, each onward call carries the chain of callers and the next hop judges every one of them (trust, enclave edges)',
  },
  'federation.mirror_beat': { kind: 'integer', default: 1000, min: 10, max: 600_000, help: 'ms between a caught-up mirror\'s polls (its heartbeat); no progress for two beats with lag raises mirror.stalled' },
  'federation.mirror_window': { kind: 'integer', default: 512, min: 1, max: 100_000, help: 'source sequences one mirror batch covers (beat_window)' },
  'federation.mirror_in_flight': { kind: 'integer', default: 4, min: 1, max: 4, help: 'mirror batches requested ahead of the one being applied (max_in_flight; at most 4: a node handles 8 messages from one peer at once, and the rest are left for its other messages)' },
  'fallback.git_remote': {
    kind: 'string',
    secret: true,
    help: 'a git remote (a path or URL your own git can reach) the mesh falls back to when a peer has been unreachable for fallback.after: this node writes what waits for that peer as signed commits on refs/weft/<computer> (one ref per node) and imports its peers\' refs on every fetch, through the same verification, replay guard and trust gate as any frame. Unset: no fallback',
  },
  'fallback.after': { kind: 'integer', default: 300, min: 1, max: 604_800, help: 'seconds an event may wait for a peer (its oldest unacknowledged one) before it also goes through the git fallback' },
  'fallback.interval': { kind: 'integer', default: 30, min: 1, max: 86_400, help: 'seconds between two rounds of the git fallback (fetch and import every peer\'s ref, then push what waits)' },
  'fallback.max_age': { kind: 'integer', default: 604_800, min: 60, max: 31_536_000, help: 'seconds: frames found in git older than this are refused as too old (the mesh\'s own window is 5 min; git may carry a frame for days)' },
  'fallback.max_events': { kind: 'integer', default: 20_000, min: 1, max: 1_000_000, help: 'events per peer one fallback round writes at most (the rest go in the next round)' },
  'recovery.enabled': { kind: 'boolean', default: true, help: 'emit recovery beacons and journal notification states and cartridges to the cluster, so a wiped node can be rebuilt from its peers (weft recovery restore)' },
  'recovery.beacon_interval': { kind: 'integer', default: 300, min: 1, max: 86_400, help: 'seconds between two recovery beacons (mesh.recovery.beacon: what is needed to rebuild this node, and which peers hold copies); one is also sent at start' },
  'recovery.min_copies': { kind: 'integer', default: 2, min: 1, max: 64, help: 'peers that should hold each range of a node\'s cluster events; weft recovery status warns below it' },
  'recovery.block_events': { kind: 'integer', default: 10_000, min: 100, max: 10_000_000, help: 'events per digest range of a beacon (grown so a beacon lists at most 200 ranges); partial copies are compared range by range' },
  'observe.enabled': { kind: 'boolean', default: true, help: 'read the shell hooks\' spool into terminal.command events (weft observe install adds a hook)' },
  'observe.spool_dir': { kind: 'string', help: 'where shell hooks leave commands (default $XDG_RUNTIME_DIR/weft-spool, else /dev/shm/weft-spool-<uid>: RAM, never disk)' },
  'observe.exclude': { kind: 'string[]', default: [], help: 'regular expressions: matching commands are never recorded' },
  'observe.rules': { kind: 'table[]', default: [], help: 'extra classification rules: [[observe.rules]] name, pattern (regex), category, risk, final' },
  'observe.secret_patterns': { kind: 'table[]', default: [], help: 'extra secrets to redact: [[observe.secret_patterns]] name, pattern (regex)' },
  'signals.enabled': { kind: 'boolean', default: true, help: 'poll the sources in signals.sources into signal.ingest.received, cluster and synthesise them' },
  'signals.sources': { kind: 'table[]', default: [], help: 'feeds: [[signals.sources]] type = "rss"|"atom"|"json"|"youtube"|"x"|"opml"|"csv", url (or path for opml/csv; a channel id for youtube, a handle for x), label, tags' },
  'signals.x_feed_template': { kind: 'string', help: 'feed URL of an X account, {handle} replaced (X has no public feed: e.g. a self-hosted RSS bridge)' },
  'signals.min_interval': { kind: 'integer', default: 300, min: 10, max: 86_400, help: 'seconds: the shortest time between two polls of one feed' },
  'signals.max_interval': { kind: 'integer', default: 21_600, min: 60, max: 604_800, help: 'seconds: the longest time between two polls of one feed (quiet feeds drift towards it)' },
  'signals.per_host': { kind: 'integer', default: 1, min: 1, max: 16, help: 'requests at once to one host' },
  'signals.max_body_bytes': { kind: 'integer', default: 5_242_880, min: 1024, max: 104_857_600, help: 'largest feed read; past it the poll is refused' },
  'signals.timeout': { kind: 'integer', default: 15_000, min: 100, max: 600_000, help: 'ms one poll may take in all' },
  'signals.max_parse_errors': { kind: 'integer', default: 5, min: 1, max: 1000, help: 'parse failures in a row before a source is given up on (signal.source.disabled)' },
  'signals.max_new_per_poll': { kind: 'integer', default: 1000, min: 1, max: 10_000, help: 'new items one poll of one source may bring in; the rest wait for its next poll' },
  'signals.max_new_per_day': { kind: 'integer', default: 10_000, min: 1, max: 1_000_000, help: 'new items one source may bring in per 24 hours; once spent, the source is next polled when the day is over (signal.source.flooding)' },
  'signals.flood_polls': { kind: 'integer', default: 3, min: 1, max: 100, help: 'polls in a row on which every item of a source (10 or more) was new before it is flagged (signal.source.flooding) and its interval backs off' },
  'signals.cluster_interval': { kind: 'integer', default: 900, min: 5, max: 86_400, help: 'seconds between clustering passes' },
  'signals.summarizer_command': { kind: 'string', help: 'program that writes a synthesis: the cluster as JSON on stdin, {summary, key_points, confidence} out (default: the built-in extractive summariser)' },
  'signals.retention_days': { kind: 'integer', default: 30, min: 1, max: 3650, help: 'days ingested items and clusters are kept for clustering (the events stay in the log)' },
  'privacy.max_level': { kind: 'enum', values: ['summarized', 'aggregated'], default: 'summarized', help: 'the most detailed class shared: summarized (summaries + aggregates) or aggregated (query answers only); raw never leaves' },
  'privacy.default_trust': { kind: 'enum', values: ['untrusted', 'share_to', 'query_from', 'peer', 'supervisor'], default: 'share_to', help: 'trust of a discovered node outside this cluster that no rule names' },
  'privacy.node_trust': { kind: 'map', default: {}, help: 'trust by computer name, node id or fingerprint: { laptop = "peer" }' },
  'privacy.subnet_trust': { kind: 'map', default: {}, help: 'trust by the peer address\'s subnet: { "10.0.1.0/24" = "query_from" }' },
  'privacy.allowed_categories': { kind: 'string[]', default: [], help: 'command categories that may appear in summaries and answers (empty: all)' },
  'privacy.denied_categories': { kind: 'string[]', default: [], help: 'command categories never shared (deny wins)' },
  'privacy.min_contributors': { kind: 'integer', default: 3, min: 1, max: 1000, help: 'an aggregate bucket built from fewer nodes is suppressed; a query uses the largest of the asker\'s and every answering node\'s, so this also protects this node\'s counts in other nodes\' queries' },
  'privacy.share_summaries': { kind: 'boolean', default: false, help: 'push hourly/daily/weekly summaries to peers trusted share_to or peer (preview: weft summaries show)' },
  'privacy.query_timeout': { kind: 'integer', default: 3000, min: 50, max: 600_000, help: 'ms a mesh query waits for answers' },
  'privacy.queries_per_minute': { kind: 'integer', default: 120, min: 1, max: 1_000_000, help: 'queries one peer may send this node per minute; the rest are dropped (one audit entry a minute)' },
} as const satisfies Record<string, KeySpec>;

export type ConfigKey = keyof typeof CONFIG_KEYS;

/** The effective configuration. */
export interface WeftConfig {
  computer: { name: string; cluster?: string };
  data_dir: string;
  redis: { url?: string; prefix: string; stream: string; group: string; cluster: boolean };
  nats: { url?: string; prefix: string };
  daemon: { stop_timeout: number };
  store: { max_dead_letters: number };
  api: { host: string; port: number; dashboard: boolean; max_connections: number };
  autonomy: { cartridge_install: 'L1' | 'L2' | 'L3'; guardian_command?: string; promotion_threshold: number; domain_default: 'L1' | 'L2' | 'L3' };
  domains: { enabled: boolean; inbox_limit: number; batch: number };
  signals: {
    enabled: boolean;
    sources: Array<Record<string, unknown>>;
    x_feed_template?: string;
    min_interval: number;
    max_interval: number;
    per_host: number;
    max_body_bytes: number;
    timeout: number;
    max_parse_errors: number;
    max_new_per_poll: number;
    max_new_per_day: number;
    flood_polls: number;
    cluster_interval: number;
    summarizer_command?: string;
    retention_days: number;
  };
  trust: { strictness: 'permissive' | 'standard' | 'strict'; rate_per_second: number; rate_burst: number };
  telegram: { bot_token?: string; chat_id?: string; min_level: number; base_url: string };
  discord: { webhook_url?: string; username?: string; bot_token?: string; channel_id?: string; min_level: number; base_url: string };
  whatsapp: { token?: string; phone_number_id?: string; to?: string; min_level: number; base_url: string; api_version: string };
  webhook: { url?: string; token?: string; format: 'ntfy' | 'json'; min_level: number };
  log: { level: string };
  mesh: {
    provider: 'none' | 'tls' | 'redis' | 'nats' | 'memory';
    tls_host: string;
    tls_port: number;
    peers: string[];
    teleclaude_peers: string[];
    caps_required: string[];
    caps_preferred: string[];
    warn_down: boolean;
    frame_envelopes: number;
    max_inflight_frames: number;
    enable_mdns: boolean;
  };
  federation: {
    enclave?: string;
    enclaves: Record<string, string>;
    edges: string[];
    pipelines: Array<Record<string, unknown>>;
    invoke_max_concurrent: number;
    invoke_max_deadline: number;
    invoke_forward: boolean;
    mirror_beat: number;
    mirror_window: number;
    mirror_in_flight: number;
  };
  recovery: { enabled: boolean; beacon_interval: number; min_copies: number; block_events: number };
  fallback: { git_remote?: string; after: number; interval: number; max_age: number; max_events: number };
  observe: {
    enabled: boolean;
    spool_dir?: string;
    exclude: string[];
    rules: Array<Record<string, unknown>>;
    secret_patterns: Array<Record<string, unknown>>;
  };
  privacy: {
    max_level: 'summarized' | 'aggregated';
    default_trust: 'untrusted' | 'share_to' | 'query_from' | 'peer' | 'supervisor';
    node_trust: Record<string, string>;
    subnet_trust: Record<string, string>;
    allowed_categories: string[];
    denied_categories: string[];
    min_contributors: number;
    share_summaries: boolean;
    query_timeout: number;
    queries_per_minute: number;
  };
  /** The file it was read from, if any. */
  source?: string;
  /** Keys whose value came from an environment variable, and that variable: error lines name it. */
  fromEnv?: Partial<Record<ConfigKey, string>>;
}

export function envNameOf(key: string): string {
  return `WEFT_${key.replace(/\./g, '_').toUpperCase()}`;
}

/** Environment variables Weft reads besides the config keys' own (`WEFT_API_PORT` and the like). */
const OTHER_ENV_NAMES = ['WEFT_CONFIG', 'WEFT_URL', 'WEFT_TOKEN', 'WEFT_PASSPHRASE', 'WEFT_SESSION', 'WEFT_PARENT_SESSION'] as const;

/**
 * Names a user guesses from the WEFT_API_* config variables that are too far from the right
 * one for the edit distance (WEFT_API_TOKEN is four edits from WEFT_TOKEN): the token would be
 * ignored without a word.
 */
const GUESSED_ENV_NAMES: Readonly<Record<string, string>> = {
  WEFT_API_TOKEN: 'WEFT_TOKEN',
  WEFT_API_URL: 'WEFT_URL',
  WEFT_DAEMON_URL: 'WEFT_URL',
  WEFT_DAEMON_TOKEN: 'WEFT_TOKEN',
};

/**
 * The `WEFT_*` variables set in `env` that Weft does not read but that are one slip away from
 * a name it does (`WEFT_API_PROT`), each with the name meant: such a variable is ignored, and
 * without a word the node would run on the default. Names far from every Weft name (a script's
 * own `WEFT_TEST_…`) are not listed.
 * @example
 * misspeltEnv({ WEFT_API_PROT: '9000' }); // [{ name: 'WEFT_API_PROT', meant: 'WEFT_API_PORT' }]
 */
export function misspeltEnv(env: NodeJS.ProcessEnv): Array<{ name: string; meant: string }> {
  const known = new Set<string>([...OTHER_ENV_NAMES, ...Object.keys(CONFIG_KEYS).map((k) => envNameOf(k as ConfigKey))]);
  const out: Array<{ name: string; meant: string }> = [];
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('WEFT_') || known.has(name) || value === undefined || value === '') continue;
    const meant = GUESSED_ENV_NAMES[name] ?? didYouMean(name, known);
    if (meant) out.push({ name, meant });
  }
  return out;
}

/** The config file: WEFT_CONFIG, else ~/.weft/config.toml. An empty WEFT_CONFIG is unset, as every empty WEFT_* is. */
export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.WEFT_CONFIG || join(env.HOME ?? homedir(), '.weft', 'config.toml');
}

function describe(spec: KeySpec): string {
  switch (spec.kind) {
    case 'enum':
      return `one of ${spec.values?.join(', ')}`;
    case 'integer':
      return `an integer ${spec.min}..${spec.max}`;
    case 'boolean':
      return 'true or false';
    case 'string[]':
      return 'a list of strings';
    case 'map':
      return 'a table of name = "value" (env: name=value,name=value)';
    case 'table[]':
      return 'a list of tables (env: JSON)';
    default:
      return 'a non-empty string';
  }
}

/** Tables and lists nested deeper than this are refused: config values are a few levels deep. */
const MAX_VALUE_DEPTH = 16;

/** True when `v` nests tables or lists deeper than `max` (walked without recursion). */
function nestedDeeper(v: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[v, 0]];
  while (stack.length > 0) {
    const [x, depth] = stack.pop() as [unknown, number];
    if (x === null || typeof x !== 'object' || x instanceof Date) continue;
    if (depth >= max) return true;
    for (const y of Object.values(x)) stack.push([y, depth + 1]);
  }
  return false;
}

/** A value as the error line shows it: short, and never a stack overflow on a deep table. */
function shown(value: unknown): string {
  if (isTable(value)) return 'a table';
  // TOML's inf and nan (JSON would say null).
  if (typeof value === 'number' && !Number.isFinite(value)) return Number.isNaN(value) ? 'nan' : value > 0 ? 'inf' : '-inf';
  try {
    const text = JSON.stringify(value) ?? String(value);
    return text.length > 200 ? `${text.slice(0, 200)}…` : text;
  } catch {
    return Array.isArray(value) ? 'a list' : String(value);
  }
}

function coerce(key: string, spec: KeySpec, value: unknown, fromEnv: boolean): unknown {
  if (nestedDeeper(value, MAX_VALUE_DEPTH)) {
    throw new ConfigError(`config key ${key}: nested more than ${MAX_VALUE_DEPTH} levels deep; expected ${describe(spec)}`, { key });
  }
  // A secret's value is never printed, not even a wrong one (it may be the right token in the wrong key).
  const bad = () =>
    new ConfigError(`config key ${key}: ${spec.secret ? 'the value given (a secret, not shown)' : shown(value)} is not allowed; expected ${describe(spec)}`, {
      key,
      ...(spec.secret ? {} : { value }),
      allowed: describe(spec),
    });
  switch (spec.kind) {
    case 'string':
      if (typeof value !== 'string' || value === '') throw bad();
      return value;
    case 'enum':
      if (typeof value !== 'string' || !spec.values?.includes(value)) throw bad();
      return value;
    case 'integer': {
      const n = fromEnv && typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < (spec.min ?? -Infinity) || n > (spec.max ?? Infinity)) throw bad();
      return n;
    }
    case 'boolean': {
      const b = fromEnv ? (value === 'true' ? true : value === 'false' ? false : value) : value;
      if (typeof b !== 'boolean') throw bad();
      return b;
    }
    case 'string[]': {
      const arr = fromEnv && typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter(Boolean) : value;
      if (!Array.isArray(arr) || arr.some((x) => typeof x !== 'string')) throw bad();
      return arr;
    }
    case 'map': {
      const obj =
        fromEnv && typeof value === 'string'
          ? Object.fromEntries(
              value
                .split(',')
                .map((p) => p.trim())
                .filter(Boolean)
                .map((p) => {
                  const i = p.lastIndexOf('=');
                  if (i <= 0) throw bad();
                  return [p.slice(0, i).trim(), p.slice(i + 1).trim()];
                }),
            )
          : value;
      if (obj === null || typeof obj !== 'object' || Array.isArray(obj) || Object.values(obj).some((x) => typeof x !== 'string')) throw bad();
      return obj;
    }
    case 'table[]': {
      let arr = value;
      if (fromEnv && typeof value === 'string') {
        try {
          arr = JSON.parse(value);
        } catch {
          throw bad();
        }
      }
      if (!Array.isArray(arr) || arr.some((x) => x === null || typeof x !== 'object' || Array.isArray(x))) throw bad();
      return arr;
    }
  }
}

/** Every table a key lives in: `mesh`, `federation`, ... (`data_dir` is in none). */
const SECTIONS: ReadonlySet<string> = new Set(
  Object.keys(CONFIG_KEYS).flatMap((k) => k.split('.').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('.'))),
);
/** The most dotted parts a key has (`mesh.provider`: 2); an unknown table is not walked deeper. */
const KEY_DEPTH = Math.max(...Object.keys(CONFIG_KEYS).map((k) => k.split('.').length));

function isTable(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * The document as [dotted key, value] pairs. Known keys keep their value whole (maps, lists of
 * tables); known sections are walked. An unknown table is walked only to KEY_DEPTH (so a
 * thousand-level header cannot exhaust the stack) and, when empty or deeper, is itself the
 * unknown key; a date or other non-table value is a value, never walked into.
 */
function flatten(obj: Record<string, unknown>, prefix = ''): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    const walk = isTable(v) && !(key in CONFIG_KEYS) && (SECTIONS.has(key) || (Object.keys(v).length > 0 && key.split('.').length < KEY_DEPTH));
    if (walk) out.push(...flatten(v, key));
    else out.push([key, v]);
  }
  return out;
}

/**
 * "unknown key mesh.provder (did you mean mesh.provider?)"; without a close key, the keys of its
 * section (or the sections, for an unknown one) rather than all of them.
 */
function unknownKey(key: string): string {
  const shownKey = key.length > 100 ? `${key.slice(0, 100)}…` : key;
  if (SECTIONS.has(key)) return `${key} is a table of keys ([${key}]), not a value`;
  const known = Object.keys(CONFIG_KEYS);
  const best = didYouMean(key, known);
  if (best) return `unknown key ${shownKey} (did you mean ${best}?)`;
  const dot = key.lastIndexOf('.');
  const section = dot > 0 ? key.slice(0, dot) : '';
  if (SECTIONS.has(section)) {
    const names = known.filter((k) => k.startsWith(`${section}.`)).map((k) => k.slice(section.length + 1));
    return `unknown key ${shownKey}; [${section}] has ${names.join(', ')}`;
  }
  const top = [...new Set(known.map((k) => k.split('.')[0] as string))];
  return `unknown key ${shownKey}; the top-level keys and sections are ${top.join(', ')}`;
}

export interface LoadConfigOptions {
  /** Path from --config; falls back to WEFT_CONFIG, then ~/.weft/config.toml (optional). */
  path?: string;
  env?: NodeJS.ProcessEnv;
  /** Values that win over everything (CLI flags), by key. */
  overrides?: Partial<Record<ConfigKey, unknown>>;
}

/**
 * Loads the effective config: defaults < TOML file < environment < overrides. Unknown keys,
 * wrong types and bad values fail with an error naming the key, the value and what is allowed.
 */
export function loadConfig(opts: LoadConfigOptions = {}): WeftConfig {
  const env = opts.env ?? process.env;
  const explicit = opts.path ?? (env.WEFT_CONFIG || undefined);
  const path = explicit ?? defaultConfigPath(env);
  const values = new Map<string, unknown>();
  let source: string | undefined;
  if (existsSync(path)) {
    let doc: Record<string, unknown>;
    try {
      doc = parseToml(readFileSync(path, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      // smol-toml's TomlError: "Invalid TOML document: <what>\n\n<excerpt>", with line and column.
      const { message, line, column } = err as Error & { line?: number; column?: number };
      const what = (message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '');
      const at = typeof line === 'number' ? ` line ${line}${typeof column === 'number' ? `, column ${column}` : ''}` : '';
      throw new ConfigError(`config file ${path}${at}: ${what}`, { path, ...(typeof line === 'number' ? { line, column } : {}) });
    }
    for (const [key, v] of flatten(doc)) {
      const spec = (CONFIG_KEYS as Record<string, KeySpec>)[key];
      if (!spec) throw new ConfigError(`config file ${path}: ${unknownKey(key)}`, { key });
      values.set(key, coerce(key, spec, v, false));
    }
    source = path;
  } else if (explicit) {
    throw new ConfigError(`config file ${path} does not exist`, { path });
  }
  const fromEnv: Partial<Record<ConfigKey, string>> = {};
  for (const [key, spec] of Object.entries(CONFIG_KEYS) as Array<[ConfigKey, KeySpec]>) {
    const ev = env[envNameOf(key)];
    if (ev !== undefined && ev !== '') {
      values.set(key, coerce(`${key} (${envNameOf(key)})`, spec, ev, true));
      fromEnv[key] = envNameOf(key);
    }
  }
  for (const [key, v] of Object.entries(opts.overrides ?? {})) {
    const spec = (CONFIG_KEYS as Record<string, KeySpec>)[key];
    if (spec && v !== undefined) {
      values.set(key, coerce(key, spec, v, typeof v === 'string'));
      delete fromEnv[key as ConfigKey];
    }
  }
  /** The key as an error line names it: with its variable when the environment set it. */
  const named = (key: ConfigKey): string => (fromEnv[key] ? `${key} (${fromEnv[key]})` : key);
  const get = <T>(key: ConfigKey): T => (values.has(key) ? values.get(key) : (CONFIG_KEYS[key] as KeySpec).default) as T;
  const home = env.HOME ?? homedir();
  const computer = get<string | undefined>('computer.name') ?? hostname();
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(computer)) {
    throw new ConfigError(
      `config key ${named('computer.name')}: ${JSON.stringify(computer)} is not allowed; expected letters, digits, '.', '_' or '-' (at most 63, starting with a letter or digit)`,
      { key: 'computer.name' },
    );
  }
  const prefix = get<string>('redis.prefix');
  // On a cluster the default bus stream carries the computer's hash tag: config show must name
  // the stream the daemon reads, which is where a producer script XADDs.
  const keys = redisKeys(prefix, computer, { cluster: get<boolean>('redis.cluster') });
  const cfg: WeftConfig = {
    computer: { name: computer },
    data_dir: resolve(get<string | undefined>('data_dir') ?? join(home, '.weft', 'data')),
    redis: {
      prefix,
      stream: get<string | undefined>('redis.stream') ?? keys.busStream,
      group: get<string | undefined>('redis.group') ?? keys.busGroup,
      cluster: get('redis.cluster'),
    },
    nats: { prefix: get('nats.prefix') },
    daemon: { stop_timeout: get('daemon.stop_timeout') },
    store: { max_dead_letters: get('store.max_dead_letters') },
    api: { host: get('api.host'), port: get('api.port'), dashboard: get('api.dashboard'), max_connections: get('api.max_connections') },
    autonomy: {
      cartridge_install: get('autonomy.cartridge_install'),
      promotion_threshold: get('autonomy.promotion_threshold'),
      domain_default: get('autonomy.domain_default'),
    },
    domains: { enabled: get('domains.enabled'), inbox_limit: get('domains.inbox_limit'), batch: get('domains.batch') },
    signals: {
      enabled: get('signals.enabled'),
      sources: get('signals.sources'),
      min_interval: get('signals.min_interval'),
      max_interval: get('signals.max_interval'),
      per_host: get('signals.per_host'),
      max_body_bytes: get('signals.max_body_bytes'),
      timeout: get('signals.timeout'),
      max_parse_errors: get('signals.max_parse_errors'),
      max_new_per_poll: get('signals.max_new_per_poll'),
      max_new_per_day: get('signals.max_new_per_day'),
      flood_polls: get('signals.flood_polls'),
      cluster_interval: get('signals.cluster_interval'),
      retention_days: get('signals.retention_days'),
    },
    trust: { strictness: get('trust.strictness'), rate_per_second: get('trust.rate_per_second'), rate_burst: get('trust.rate_burst') },
    telegram: { min_level: get('telegram.min_level'), base_url: get('telegram.base_url') },
    discord: { min_level: get('discord.min_level'), base_url: get('discord.base_url') },
    whatsapp: { min_level: get('whatsapp.min_level'), base_url: get('whatsapp.base_url'), api_version: get('whatsapp.api_version') },
    webhook: { format: get('webhook.format'), min_level: get('webhook.min_level') },
    log: { level: get('log.level') },
    mesh: {
      provider: get('mesh.provider'),
      tls_host: get('mesh.tls_host'),
      tls_port: get('mesh.tls_port'),
      peers: get('mesh.peers'),
      teleclaude_peers: get('mesh.teleclaude_peers'),
      caps_required: get('mesh.caps_required'),
      caps_preferred: get('mesh.caps_preferred'),
      warn_down: get('mesh.warn_down'),
      frame_envelopes: get('mesh.frame_envelopes'),
      max_inflight_frames: get('mesh.max_inflight_frames'),
      enable_mdns: get('mesh.enable_mdns'),
    },
    federation: {
      enclaves: get('federation.enclaves'),
      edges: get('federation.edges'),
      pipelines: get('federation.pipelines'),
      invoke_max_concurrent: get('federation.invoke_max_concurrent'),
      invoke_max_deadline: get('federation.invoke_max_deadline'),
      invoke_forward: get('federation.invoke_forward'),
      mirror_beat: get('federation.mirror_beat'),
      mirror_window: get('federation.mirror_window'),
      mirror_in_flight: get('federation.mirror_in_flight'),
    },
    recovery: {
      enabled: get('recovery.enabled'),
      beacon_interval: get('recovery.beacon_interval'),
      min_copies: get('recovery.min_copies'),
      block_events: get('recovery.block_events'),
    },
    fallback: {
      after: get('fallback.after'),
      interval: get('fallback.interval'),
      max_age: get('fallback.max_age'),
      max_events: get('fallback.max_events'),
    },
    observe: {
      enabled: get('observe.enabled'),
      exclude: get('observe.exclude'),
      rules: get('observe.rules'),
      secret_patterns: get('observe.secret_patterns'),
    },
    privacy: {
      max_level: get('privacy.max_level'),
      default_trust: get('privacy.default_trust'),
      node_trust: get('privacy.node_trust'),
      subnet_trust: get('privacy.subnet_trust'),
      allowed_categories: get('privacy.allowed_categories'),
      denied_categories: get('privacy.denied_categories'),
      min_contributors: get('privacy.min_contributors'),
      share_summaries: get('privacy.share_summaries'),
      query_timeout: get('privacy.query_timeout'),
      queries_per_minute: get('privacy.queries_per_minute'),
    },
  };
  const spool = get<string | undefined>('observe.spool_dir');
  if (spool) cfg.observe.spool_dir = resolve(spool);
  const gitRemote = get<string | undefined>('fallback.git_remote');
  if (gitRemote) cfg.fallback.git_remote = gitRemote;
  const enclave = get<string | undefined>('federation.enclave');
  if (enclave) cfg.federation.enclave = enclave;
  const cluster = get<string | undefined>('computer.cluster');
  if (cluster) cfg.computer.cluster = cluster;
  const url = get<string | undefined>('redis.url');
  if (url) {
    if (!/^rediss?:\/\//.test(url)) {
      throw new ConfigError(`config key ${named('redis.url')}: ${redisUrlRefusal(url)}`, { key: 'redis.url' });
    }
    cfg.redis.url = url;
  }
  const natsUrl = get<string | undefined>('nats.url');
  if (natsUrl) {
    if (!natsUrl.split(',').every((u) => /^(nats|tls):\/\/\S+$/i.test(u.trim()))) {
      throw new ConfigError(
        `config key ${named('nats.url')}: ${JSON.stringify(mask(natsUrl))} is not allowed; expected nats://host:port, or tls://host:port to require TLS (several comma separated; WebSocket URLs are not supported)`,
        { key: 'nats.url' },
      );
    }
    cfg.nats.url = natsUrl;
  }
  const xt = get<string | undefined>('signals.x_feed_template');
  if (xt) cfg.signals.x_feed_template = xt;
  const sc = get<string | undefined>('signals.summarizer_command');
  if (sc) cfg.signals.summarizer_command = sc;
  const gc = get<string | undefined>('autonomy.guardian_command');
  if (gc) cfg.autonomy.guardian_command = gc;
  const bt = get<string | undefined>('telegram.bot_token');
  if (bt) cfg.telegram.bot_token = bt;
  const chat = get<string | undefined>('telegram.chat_id');
  if (chat) cfg.telegram.chat_id = chat;
  // Delivery channels: a key left unset stays absent, so "is the channel on" is a presence test.
  const optional = <S extends 'discord' | 'whatsapp' | 'webhook'>(section: S, names: ReadonlyArray<keyof WeftConfig[S] & string>) => {
    for (const name of names) {
      const v = get<string | undefined>(`${section}.${name}` as ConfigKey);
      if (v !== undefined) (cfg[section] as Record<string, unknown>)[name] = v;
    }
  };
  optional('discord', ['webhook_url', 'username', 'bot_token', 'channel_id']);
  optional('whatsapp', ['token', 'phone_number_id', 'to']);
  optional('webhook', ['url', 'token']);
  if (source) cfg.source = source;
  if (Object.keys(fromEnv).length > 0) cfg.fromEnv = fromEnv;
  return cfg;
}

/** The value a dotted key names in a loaded config (`api.port` → cfg.api.port), or undefined. */
function configValue(cfg: WeftConfig, key: string): unknown {
  let v: unknown = cfg;
  for (const part of key.split('.')) v = (v as Record<string, unknown> | undefined)?.[part];
  return v;
}

/** The config as flat key → value with secrets masked, for `weft config show`. */
export function showConfig(cfg: WeftConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(CONFIG_KEYS) as Array<[string, KeySpec]>) {
    const v = configValue(cfg, key);
    if (v === undefined) continue;
    out[key] = spec.secret ? mask(String(v)) : key === 'signals.sources' && Array.isArray(v) ? v.map(maskSourceUrl) : v;
  }
  return out;
}

/** A feed's URL may carry a user, password or token (`https://u:p@host/feed?token=…`): shown masked. */
function maskSourceUrl(entry: unknown): unknown {
  if (entry === null || typeof entry !== 'object') return entry;
  const e = entry as Record<string, unknown>;
  return typeof e.url === 'string' ? { ...e, url: displayUrl(e.url) } : e;
}

/**
 * The values of the secret keys a config holds, with how each is shown instead (for taking them
 * out of a message that quotes one).
 * @example
 * secretValues(cfg) // [['https://ntfy.sh/my-private-topic', 'ht***ic']]
 */
export function secretValues(cfg: WeftConfig): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [key, spec] of Object.entries(CONFIG_KEYS) as Array<[string, KeySpec]>) {
    if (!spec.secret) continue;
    const v = configValue(cfg, key);
    if (typeof v === 'string' && v.length >= 4) out.push([v, mask(v)]);
  }
  // Feed URLs are no secret key, but one may carry a user, password or token.
  const sources = configValue(cfg, 'signals.sources');
  for (const e of Array.isArray(sources) ? sources : []) {
    const url = (e as Record<string, unknown> | null)?.url;
    if (typeof url === 'string' && displayUrl(url) !== url) out.push([url, displayUrl(url)]);
  }
  return out;
}

/** A seed list as redis-cli takes it (host:port, comma separated): no secret in it to hide. */
const HOST_PORTS = /^\s*(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}\s*(?:,\s*(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}\s*)*$/;

/**
 * Why a redis.url without redis:// is refused. A plain host:port list (the way redis-cli and
 * cluster guides write seeds) is shown as typed with the URL to write instead; it was shown
 * as "12***01", hiding the very thing to fix. Anything else is masked, its password never shown.
 */
function redisUrlRefusal(url: string): string {
  if (HOST_PORTS.test(url)) {
    const urls = url.split(',').map((h) => `redis://${h.trim()}`).join(',');
    return `${JSON.stringify(url)} is not allowed; expected a redis:// or rediss:// URL: write ${JSON.stringify(urls)}`;
  }
  const at = url.lastIndexOf('@');
  const shown = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? maskUrlPasswords(url, true) : at >= 0 ? `***${url.slice(at)}` : mask(url);
  return `${JSON.stringify(shown)} is not allowed; expected a redis:// or rediss:// URL`;
}

function mask(v: string): string {
  // Redis and NATS URLs: the servers shown, the password (a NATS token) masked.
  const nats = /^(nats|tls):\/\//i.test(v);
  if (nats || /^rediss?:\/\//i.test(v)) return maskUrlPasswords(v, nats);
  return v.length <= 4 ? '***' : `${v.slice(0, 2)}***${v.slice(-2)}`;
}
