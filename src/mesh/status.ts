/** `weft mesh status`: one read-only picture of a node's mesh, built from what the mesh holds. */
import { fingerprintOfNodeId, type NodeIdentity } from '../identity/index.js';
import type { NodeSelf } from '../pipeline/index.js';
import { JSON_ENVELOPES_CAP, type NegotiatedCaps, type PeerTelemetry, type Provider } from '../transport/index.js';
import type { FailureState } from '../util/index.js';
import type { MeshCounters } from './ingress.js';
import type { MeshOutbox } from './outbox.js';
import type { PeerBook } from './peers.js';
import type { PeerSender } from './sender.js';
import type { TeleClaudeWire } from './teleclaude-wire.js';

/** What the status is made from. */
export interface MeshStatusView {
  self: NodeSelf;
  identity: NodeIdentity;
  provider: Provider;
  outbox: MeshOutbox;
  peers: PeerBook;
  teleclaude: TeleClaudeWire | undefined;
  counters: MeshCounters;
  senders: ReadonlyMap<string, PeerSender>;
  states: ReadonlyMap<string, string>;
  negotiated: ReadonlyMap<string, NegotiatedCaps | 'noprov'>;
  /** Peers whose frames arrived unsealed on a link where this node seals (aead negotiated). */
  unsealedIn?: ReadonlySet<string>;
  /** Whether a peer's public link key is known (its hello arrived, now or before a restart). */
  linkKeyKnown: (nodeId: string) => boolean;
  /** Peer discovery failing in a row (the registry away), or null. */
  discovery: FailureState | null;
  now: number;
}

/** The status of a node's mesh, for the API and the CLI. */
export function meshStatus(v: MeshStatusView): Record<string, unknown> {
  const tel = new Map<string, PeerTelemetry>(v.provider.telemetry().map((t) => [t.peer, t]));
  const depths = v.outbox.depths();
  return {
    self: {
      computer: v.self.computer,
      cluster: v.self.cluster ?? null,
      nodeId: v.identity.nodeId,
      fingerprint: v.identity.fingerprint,
    },
    provider: v.provider.name,
    caps: [...v.provider.caps],
    teleclaude: v.teleclaude?.status() ?? null,
    discovery: v.discovery,
    counters: { ...v.counters, ...(v.provider.foreignEntries !== undefined ? { foreignEntries: v.provider.foreignEntries } : {}) },
    peers: v.peers.getAllPeers().map((p) => {
      const t = tel.get(p.computer);
      const s = v.senders.get(p.computer);
      return {
        computer: p.computer,
        cluster: p.cluster ?? null,
        nodeId: p.nodeId,
        fingerprint: fingerprintOfNodeId(p.nodeId),
        trustLevel: p.trustLevel,
        origin: p.origin,
        wire: p.wire ?? 'weft',
        state:
          p.wire === 'teleclaude'
            ? v.teleclaude?.lastError
              ? 'stalled'
              : 'teleclaude'
            : s?.keying
              ? 'keying'
              : s?.stalled(v.now)
                ? 'stalled'
                : (v.states.get(p.computer) ?? (t?.framesReceived ? 'active' : 'unknown')),
        stalledReason: p.wire === 'teleclaude' ? (v.teleclaude?.lastError ?? null) : (s?.stalled(v.now) ?? null),
        negotiatedCaps: ((): string[] | string => {
          const c = v.negotiated.get(p.computer);
          if (c === undefined) return 'pending';
          if (c === 'noprov') return 'noprov';
          const caps: string[] = (['crc32c', 'deflate', 'aead'] as const).filter((k) => c[k]);
          if (c.jsonEnvelopes) caps.push(JSON_ENVELOPES_CAP);
          return caps;
        })(),
        // What keeps payloads from third parties on this link: sealed frames, the channel itself, or nothing.
        encryption: ((): string | null => {
          if (p.wire === 'teleclaude') return 'none';
          const c = v.negotiated.get(p.computer);
          if (c === undefined || c === 'noprov') return null;
          if (c.aead) return v.unsealedIn?.has(p.computer) ? 'aead-outbound-only' : 'aead';
          return v.provider.confidential ? v.provider.name : 'none';
        })(),
        linkKey: p.wire === 'teleclaude' ? null : v.linkKeyKnown(p.nodeId) ? 'known' : 'unknown',
        rttMs: t?.rttMs ?? null,
        outbox: depths[p.computer] ?? 0,
        inflightFrames: s?.inflightFrames ?? 0,
        sent: { frames: s?.sentFrames ?? 0, envelopes: s?.sentEnvelopes ?? 0, resends: s?.resends ?? 0 },
        telemetry: t ?? null,
        lastError: s?.lastError ?? null,
      };
    }),
  };
}
