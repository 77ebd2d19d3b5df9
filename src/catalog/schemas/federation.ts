/**
 * federation: mounts, the mirror and invoke organs, their health events (the seed's CEI
 * topics `tp_*` under our `transport.*` names, see FEDERATION_HEALTH_MAP), the security
 * refusals of invoke (`sec.*`), candidates found on the local network, and log pruning.
 */
import { Type } from '@sinclair/typebox';
import type { Catalog } from '../catalog.js';

/** Type names, so the organs and the routes do not spell them twice. */
export const FEDERATION_EVENTS = {
  mountOpened: 'federation.mount.opened',
  mountClosed: 'federation.mount.closed',
  mountFailed: 'federation.mount.failed',
  backpressure: 'transport.backpressure',
  fatal: 'transport.fatal',
  invokeTimeout: 'transport.invoke.timeout',
  invokeRejected: 'transport.invoke.rejected',
  limitHit: 'sec.limit.hit',
  pipelineReject: 'sec.pipeline.reject',
  edgeDeny: 'sec.edge.deny',
  mirrorGap: 'mirror.gap',
  mirrorStalled: 'mirror.stalled',
  mirrorResumed: 'mirror.resumed',
  candidateFound: 'mesh.peer.candidate',
  peerPinned: 'mesh.peer.pinned',
  logPruned: 'system.log.pruned',
} as const;

/**
 * The seed's health topics (CEI) and the event type each is raised as here. `tp_schema` has
 * no event: a mount record that does not validate is refused at its creation (HTTP 400).
 */
export const FEDERATION_HEALTH_MAP: Readonly<Record<string, string>> = {
  tp_noprov: 'transport.noprov',
  tp_flatneg: 'transport.flatneg',
  tp_backpr: FEDERATION_EVENTS.backpressure,
  tp_fatal: FEDERATION_EVENTS.fatal,
  tp_inv_timeout: FEDERATION_EVENTS.invokeTimeout,
  tp_inv_reject: FEDERATION_EVENTS.invokeRejected,
};

const peer = Type.String({ minLength: 1, maxLength: 200 });
const mount = Type.String({ minLength: 1, maxLength: 300, description: 'peer/mode/name' });
const short = (max = 2000) => Type.String({ maxLength: max });
const mode = Type.Union([Type.Literal('link'), Type.Literal('mirror'), Type.Literal('invoke')]);
const budget = Type.Union([
  Type.Literal('deadline'),
  Type.Literal('hops'),
  Type.Literal('bytes'),
  Type.Literal('cpu_ms'),
  Type.Literal('wall_ms'),
]);

/** Registers the federation types. */
export function registerFederationTypes(catalog: Catalog): void {
  catalog.register({
    control: true,
    type: FEDERATION_EVENTS.mountOpened,
    description: 'A mount (link, mirror or invoke to a peer) was opened with its negotiated serializer policy',
    domain: 'transport',
    defaultLevel: 'infrastructure',
    payload: Type.Object({ mount, peer, mode, provider: short(100), serializer: Type.Record(Type.String(), Type.Unknown()) }),
  });
  catalog.register({
    control: true,
    type: FEDERATION_EVENTS.mountClosed,
    description: 'A mount was closed (its record is kept, so reopening it is cheap)',
    domain: 'transport',
    defaultLevel: 'infrastructure',
    payload: Type.Object({ mount, peer, mode, reason: Type.Optional(short()) }),
  });
  catalog.register({
    control: true,
    type: FEDERATION_EVENTS.mountFailed,
    description: 'A mount could not be opened or stopped working (tp_fatal on the mount)',
    domain: 'transport',
    defaultLevel: 'operational',
    payload: Type.Object({ mount, peer, mode, reason: short() }),
    idempotencyFields: ['mount', 'reason'],
    lifecycle: { creates: true },
  });
  catalog.register({
    control: true,
    type: FEDERATION_EVENTS.backpressure,
    description: 'A link to a peer is waiting for the receiver (tp_backpr)',
    domain: 'transport',
    defaultLevel: 'infrastructure',
    payload: Type.Object({ peer, active: Type.Boolean(), count: Type.Integer({ minimum: 0 }) }),
  });
  catalog.register({
    control: true,
    type: FEDERATION_EVENTS.fatal,
    description: 'A provider reported a fatal error on a link (tp_fatal)',
    domain: 'transport',
    defaultLevel: 'operational',
    payload: Type.Object({ peer: Type.Optional(peer), message: short() }),
    idempotencyFields: ['peer', 'message'],
    lifecycle: { creates: true },
  });
  catalog.register({
    control: true,
    type: FEDERATION_EVENTS.invokeTimeout,
    description: 'An invoke to a peer did not answer within its deadline; the callee was told to cancel (tp_inv_timeout)',
    domain: 'transport',
    defaultLevel: 'operational',
    payload: Type.Object({
      peer,
      handler: short(200),
      callId: short(100),
      deadlineMs: Type.Integer({ minimum: 0 }),
      elapsedMs: Type.Integer({ minimum: 0 }),
    }),
  });
  catalog.register({
    control: true,
    type: FEDERATION_EVENTS.invokeRejected,
    description: 'An invoke was refused before any work: no such handler, busy, or a policy said no (tp_inv_reject)',
    domain: 'transport',
    defaultLevel: 'operational',
    payload: Type.Object({
      peer,
      handler: short(200),
      callId: short(100),
      code: short(100),
      reason: short(),
      direction: Type.Union([Type.Literal('inbound'), Type.Literal('outbound')]),
    }),
  });
  const secBase = {
    peer,
    handler: short(200),
    callId: short(100),
    reason: short(),
    origin: Type.Object({
      enclave: Type.Optional(short(200)),
      pipeline_id: Type.Optional(short(200)),
      stage_id: Type.Optional(short(200)),
      dag_run_id: Type.Optional(short(200)),
      hop_index: Type.Optional(Type.Integer({ minimum: 0 })),
    }),
  };
  catalog.register({
    control: true,
    type: FEDERATION_EVENTS.limitHit,
    description: 'An invoke ran out of a budget (deadline, hops, bytes, CPU or wall time) and was refused before any work',
    domain: 'transport',
    defaultLevel: 'operational',
    payload: Type.Object({ ...secBase, budget, remaining: Type.Number(), needed: Type.Optional(Type.Number()) }),
  });
  catalog.register({
    control: true,
    type: FEDERATION_EVENTS.pipelineReject,
    description: 'An invoke across enclaves carried no approved pipeline metadata and was refused',
    domain: 'transport',
    defaultLevel: 'operational',
    payload: Type.Object(secBase),
  });
  catalog.register({
    control: true,
    type: FEDERATION_EVENTS.edgeDeny,
    description: 'An invoke came over an enclave edge this node does not accept',
    domain: 'transport',
    defaultLevel: 'operational',
    payload: Type.Object({ ...secBase, from: short(200), to: short(200) }),
  });
  catalog.register({
    control: true,
    type: FEDERATION_EVENTS.mirrorGap,
    description: 'A mirror needed source sequences the source has pruned: the range is missing here (never a silent skip)',
    domain: 'transport',
    defaultLevel: 'operational',
    payload: Type.Object({
      mount,
      peer,
      from: Type.Integer({ minimum: 1, description: 'first missing source sequence' }),
      to: Type.Integer({ minimum: 1, description: 'last missing source sequence' }),
      message: short(),
    }),
    idempotencyFields: ['mount', 'from', 'to'],
    lifecycle: { creates: true },
  });
  catalog.register({
    control: true,
    type: FEDERATION_EVENTS.mirrorStalled,
    description: 'A mirror has lag and moved nothing for two heartbeats',
    domain: 'transport',
    defaultLevel: 'operational',
    payload: Type.Object({ mount, peer, lag: Type.Integer({ minimum: 0 }), since: Type.Integer({ minimum: 0 }), reason: short() }),
    idempotencyFields: ['mount', 'since'],
    lifecycle: { creates: true },
  });
  catalog.register({
    control: true,
    type: FEDERATION_EVENTS.mirrorResumed,
    description: 'A stalled mirror moves again',
    domain: 'transport',
    defaultLevel: 'infrastructure',
    payload: Type.Object({ mount, peer, lag: Type.Integer({ minimum: 0 }) }),
  });
  catalog.register({
    control: true,
    type: FEDERATION_EVENTS.candidateFound,
    description: 'A Weft node announced itself on the local network: a candidate, with no trust and no events until it is pinned',
    domain: 'mesh',
    defaultLevel: 'operational',
    payload: Type.Object({
      computer: short(200),
      fingerprint: short(200),
      nodeId: short(200),
      addresses: Type.Array(short(300), { maxItems: 16 }),
      via: short(50),
    }),
    idempotencyFields: ['fingerprint'],
    lifecycle: { creates: true },
  });
  catalog.register({
    control: true,
    type: FEDERATION_EVENTS.peerPinned,
    description: 'A candidate became a peer: pinned by a human or admitted by policy (subnet trust)',
    domain: 'mesh',
    defaultLevel: 'operational',
    payload: Type.Object({ computer: short(200), fingerprint: short(200), by: Type.Union([Type.Literal('human'), Type.Literal('policy')]), address: Type.Optional(short(300)) }),
  });
  catalog.register({
    control: true,
    type: FEDERATION_EVENTS.logPruned,
    description: 'Old events were removed from the local log (weft events prune); mirrors behind it see a gap',
    domain: 'system',
    defaultLevel: 'infrastructure',
    payload: Type.Object({ belowSeq: Type.Integer({ minimum: 1 }), removed: Type.Integer({ minimum: 0 }) }),
  });
}
