/**
 * The mesh part of a node's assembly, from the config: the provider, static and TeleClaude
 * peers, caps and federation. Pure: it builds providers but opens nothing, so checkConfig runs
 * it too.
 */
import type { WeftConfig } from '../config/index.js';
import { ConfigError } from '../errors/index.js';
import { NatsPeerRegistry, parsePeerSpec } from '../mesh/index.js';
import { NATS_MAX_FRAME_BYTES, NATS_PREFIX_PATTERN, natsConnectTarget, natsProvider, redisProvider, tlsProvider } from '../transport/index.js';
import { tlsConnectionCap } from './fd-limit.js';
import type { AssembleInit } from './assemble.js';
/** The mesh part of a node's assembly, from the config. */
export function meshFromConfig(cfg: WeftConfig): Pick<AssembleInit, 'mesh'> {
  const peers = cfg.mesh.peers.map(parsePeerSpec);
  const teleclaude = cfg.mesh.teleclaude_peers.map((spec) => {
    const m = /^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\/([A-Za-z0-9._-]+))?$/.exec(spec.trim());
    if (!m) throw new ConfigError(`config key mesh.teleclaude_peers: ${JSON.stringify(spec)} is not allowed; expected "computer[/cluster]"`, { key: 'mesh.teleclaude_peers' });
    return { computer: m[1] as string, ...(m[2] ? { cluster: m[2] } : {}) };
  });
  if (teleclaude.length > 0 && cfg.mesh.provider !== 'redis') {
    throw new ConfigError('config key mesh.teleclaude_peers: TeleClaude peers are reached through Redis; set mesh.provider = "redis" (and redis.url)', { key: 'mesh.teleclaude_peers' });
  }
  if (teleclaude.length > 0 && cfg.redis.cluster) {
    // TeleClaude's names (messages:<computer>, teleclaude:events) are another program's, with no hash tags, on one server.
    throw new ConfigError('config key mesh.teleclaude_peers: TeleClaude peers cannot be reached over a Redis Cluster (redis.cluster = true); use one Redis server for them, or leave mesh.teleclaude_peers empty', { key: 'mesh.teleclaude_peers' });
  }
  const caps = (key: string, list: string[]) => {
    const bad = list.filter((c) => !['crc32c', 'deflate', 'aead'].includes(c));
    if (bad.length) throw new ConfigError(`config key ${key}: ${JSON.stringify(bad[0])} is not allowed; expected crc32c, deflate or aead`, { key });
    return list as Array<'crc32c' | 'deflate' | 'aead'>;
  };
  const f = cfg.federation;
  const federation = {
    invoke: {
      enclave: f.enclave ?? cfg.computer.cluster ?? cfg.computer.name,
      enclaves: f.enclaves,
      edges: f.edges,
      pipelines: f.pipelines.map((p, i) => {
        const id = p.id;
        if (typeof id !== 'string' || id.length === 0) throw new ConfigError(`config key federation.pipelines: entry ${i + 1} needs an id = "..."`, { key: 'federation.pipelines' });
        const list = (k: string) => {
          const v = p[k];
          if (v === undefined) return undefined;
          if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new ConfigError(`config key federation.pipelines: ${id}: ${k} must be a list of strings`, { key: 'federation.pipelines' });
          return v as string[];
        };
        const stages = list('stages');
        const handlers = list('handlers');
        return { id, ...(stages ? { stages } : {}), ...(handlers ? { handlers } : {}) };
      }),
      maxConcurrent: f.invoke_max_concurrent,
      maxDeadlineMs: f.invoke_max_deadline,
      forward: f.invoke_forward,
    },
    mirror: { beatMs: f.mirror_beat, window: f.mirror_window, inFlight: f.mirror_in_flight },
  };
  for (const e of f.edges) {
    if (!/^[^\s>]+->[^\s>]+$/.test(e)) throw new ConfigError(`config key federation.edges: ${JSON.stringify(e)} is not allowed; expected "from->to"`, { key: 'federation.edges' });
  }
  const options = {
    maxFrameEnvelopes: cfg.mesh.frame_envelopes,
    maxInflightFrames: cfg.mesh.max_inflight_frames,
    caps: {
      required: caps('mesh.caps_required', cfg.mesh.caps_required),
      preferred: caps('mesh.caps_preferred', cfg.mesh.caps_preferred),
      warnDown: cfg.mesh.warn_down,
    },
  };
  switch (cfg.mesh.provider) {
    case 'none':
      return {};
    case 'redis': {
      if (!cfg.redis.url) throw new ConfigError('config key mesh.provider: "redis" needs redis.url to be set', { key: 'mesh.provider' });
      return {
        mesh: {
          provider: redisProvider({ url: cfg.redis.url, computer: cfg.computer.name, prefix: cfg.redis.prefix, cluster: cfg.redis.cluster }),
          peers,
          registryUrl: cfg.redis.url,
          options,
          federation,
          ...(teleclaude.length ? { teleclaude: { url: cfg.redis.url, peers: teleclaude } } : {}),
        },
      };
    }
    case 'tls': {
      const tlsPeers = peers.flatMap((p) => {
        if (!p.address) return [{ computer: p.computer, nodeId: p.nodeId }];
        const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(p.address);
        return m ? [{ computer: p.computer, nodeId: p.nodeId, host: m[1] as string, port: Number(m[2]) }] : [{ computer: p.computer, nodeId: p.nodeId }];
      });
      const host = cfg.mesh.tls_host;
      const cap = tlsConnectionCap();
      const tlsCap = cap === undefined ? {} : { maxConnections: cap, maxConnectionsPerAddress: Math.min(64, cap) };
      return {
        mesh: {
          provider: tlsProvider({ computer: cfg.computer.name, host, port: cfg.mesh.tls_port, peers: tlsPeers, ...tlsCap }),
          peers,
          ...(cfg.redis.url ? { registryUrl: cfg.redis.url } : {}),
          announce: [`${host}:${cfg.mesh.tls_port}`],
          options,
          federation,
        },
      };
    }
    case 'nats': {
      const url = cfg.nats.url;
      if (!url) throw new ConfigError('config key mesh.provider: "nats" needs nats.url to be set (WEFT_NATS_URL)', { key: 'mesh.provider' });
      const prefix = cfg.nats.prefix;
      if (!NATS_PREFIX_PATTERN.test(prefix)) {
        throw new ConfigError(`config key nats.prefix: ${JSON.stringify(prefix)} is not allowed; expected 1 to 32 letters, digits, '_' or '-' (it is part of stream names)`, { key: 'nats.prefix' });
      }
      try {
        // Credentials and schemes the client would ignore are refused here, before a start.
        natsConnectTarget(url);
      } catch (err) {
        throw new ConfigError(`config key nats.url: ${(err as Error).message.replace(/^nats\.url /, '')}`, { key: 'nats.url' });
      }
      return {
        mesh: {
          provider: natsProvider({ url, computer: cfg.computer.name, prefix }),
          peers,
          discovery: ({ self, logger, clock }) => new NatsPeerRegistry({ url, self, ttlMs: 15_000, prefix }, { logger, clock }),
          // NATS refuses messages over its max_payload (1 MiB by default): frames are cut below it.
          options: { ...options, maxFrameBytes: NATS_MAX_FRAME_BYTES },
          federation,
        },
      };
    }
    case 'memory':
      throw new ConfigError('config key mesh.provider: "memory" only exists inside one process (weft demo, tests)', { key: 'mesh.provider' });
  }
}
