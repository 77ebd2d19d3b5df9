import { type Envelope, envelopeWith, serializeEnvelope } from '../envelope/index.js';
import { type Cartridge, INGRESS_FACT } from '../pipeline/index.js';
import type { Logger } from '../util/index.js';
import type { MeshOutbox } from './outbox.js';
import type { KnownPeer } from './peers.js';

/** Event types of the recovery organ (mesh.recovery.beacon, .notifications, .cartridge). */
const RECOVERY_PREFIX = 'mesh.recovery.';

export interface PublisherDeps {
  /** Routing; undefined when this node has no mesh configured. */
  peers: { getClusterPeers(): KnownPeer[]; getAllPeers(): KnownPeer[] } | undefined;
  outbox: () => MeshOutbox | undefined;
  self: { computer: string; nodeId?: string };
  logger: Logger;
  /**
   * The sharing policy's say per event and peer (the privacy layer: nothing to an untrusted
   * peer, summaries only where they may go). Default: every peer the visibility names.
   */
  allow?: (e: Envelope, peer: KnownPeer) => boolean;
}

export interface PublisherStats {
  queued: number;
  skippedRaw: number;
  skippedNoPeers: number;
  /** Copies the sharing policy kept from a peer. */
  skippedPolicy: number;
}

/**
 * The mesh publisher, after notification projection: `local` never leaves; `cluster` is
 * queued for each peer of this node's cluster; `public` for every known peer; never self,
 * never an event that came from a peer (no re-forwarding, so no loops). Raw-class data never
 * leaves, whatever its visibility says. Rows go to the per-peer outbox in the batch
 * transaction; sending happens after the commit, so the pipeline never waits on a peer.
 */
export function meshPublisher(deps: PublisherDeps): Cartridge & { stats: PublisherStats } {
  const stats: PublisherStats = { queued: 0, skippedRaw: 0, skippedNoPeers: 0, skippedPolicy: 0 };
  const warned = new Set<string>();
  const warnOnce = (cause: string, msg: string) => {
    if (warned.has(cause)) return;
    warned.add(cause);
    deps.logger.warn({ cause }, msg);
  };
  return {
    name: 'mesh-publisher',
    stats,
    process(e: Envelope, ctx) {
      if (e.visibility === 'local' || ctx.facts.get(INGRESS_FACT) !== undefined) return e;
      if (ctx.catalog.get(e.event)?.dataClass === 'raw') {
        stats.skippedRaw++;
        warnOnce(`raw:${e.event}`, `events of type ${e.event} are raw-class data and never leave this node, whatever their visibility`);
        return e;
      }
      const outbox = deps.outbox();
      if (!deps.peers || !outbox) {
        stats.skippedNoPeers++;
        warnOnce('no-mesh', `no mesh provider configured: ${e.visibility} events stay on this node`);
        return e;
      }
      const targets = e.visibility === 'cluster' ? deps.peers.getClusterPeers() : deps.peers.getAllPeers();
      if (targets.length === 0) {
        stats.skippedNoPeers++;
        warnOnce(`no-peers:${e.visibility}`, `no ${e.visibility === 'cluster' ? 'cluster ' : ''}peers known yet for ${e.visibility} events`);
        return e;
      }
      const wire: Envelope = envelopeWith(e, { sourceComputer: deps.self.computer });
      if (deps.self.nodeId) wire.origin = deps.self.nodeId;
      const body = serializeEnvelope(wire);
      const to: string[] = [];
      for (const t of targets) {
        if (t.computer === deps.self.computer) continue;
        // Recovery beacons and journals (notification states, cartridges) are for Weft peers,
        // which verify and keep them; a TeleClaude node can use none of it and is not given it.
        if (t.wire === 'teleclaude' && e.event.startsWith(RECOVERY_PREFIX)) continue;
        if (deps.allow && !deps.allow(e, t)) {
          stats.skippedPolicy++;
          continue;
        }
        to.push(t.computer);
      }
      // One stored body for all of them, a row per peer.
      if (to.length > 0) outbox.addFor(to, e.id, body, ctx.clock.now());
      stats.queued += to.length;
      return e;
    },
  };
}
