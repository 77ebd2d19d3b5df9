/**
 * sovereign.*: the event types of the Sovereign mesh's daemons (mesh-roadmap.md: the graph
 * feeder, FO Local, the attention daemon, the resonance detector, Meta FO, and the systems
 * planned next), so they can publish to Weft.
 *
 * Their producers use bare names (`graph_update`); a Weft event type has at least two dotted
 * segments, so each is registered as `sovereign.<name>` and its bare name is an alias of it.
 * The roadmap names the events but not their fields: each payload names the fields those
 * systems plausibly send, every one optional, and keeps any other field
 * (`additionalProperties`), so nothing they send today is refused.
 */
import { type TProperties, Type } from '@sinclair/typebox';
import type { Catalog, EventTypeDefinition } from '../catalog.js';

/** The prefix of the roadmap's types. */
export const MESH_ROADMAP_PREFIX = 'sovereign';

/** The roadmap's bare names: published today, then planned. */
export const MESH_ROADMAP_EVENTS = {
  published: [
    'graph_update',
    'fo_insight',
    'attention_decision',
    'coherence_alert',
    'aha_moment',
    'economics_session_start',
    'economics_session_end',
    'resonance_detected',
    'meta_fo_update',
    'conflict_alert',
    'recovery_beacon',
  ],
  planned: [
    'mission_control_synthesis',
    'edge_discovery',
    'topology_update',
    'monologue_chunk',
    'context_enter',
    'context_exit',
    'session_debrief',
    'hygiene_check',
    'gravity_well_formed',
  ],
} as const;

const open = (props: TProperties) => Type.Object(props, { additionalProperties: true });
const s = (max: number, description?: string) => Type.Optional(Type.String({ maxLength: max, ...(description ? { description } : {}) }));
const n = (description: string) => Type.Optional(Type.Number({ description }));
const list = (description: string) => Type.Optional(Type.Array(Type.Unknown(), { maxItems: 1000, description }));
const obj = (description: string) => Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description }));
/** Which Claude instance / session sent it: every roadmap system names one. */
const who = { instance: s(200, 'the instance (computer or Claude session) that sent it'), session_id: s(200) };

type Def = Omit<EventTypeDefinition, 'type' | 'domain' | 'defaultVisibility'>;

const DEFS: Record<string, Def> = {
  graph_update: {
    description: 'Graph feeder: nodes or edges of the knowledge graph changed',
    defaultLevel: 'infrastructure',
    payload: open({ ...who, op: s(50, 'add, update, remove, ...'), node_id: s(500), edge: obj('the edge changed'), nodes: list('nodes changed'), edges: list('edges changed'), node_count: n('nodes now'), edge_count: n('edges now') }),
  },
  fo_insight: {
    description: 'FO Local: a First Officer insight',
    defaultLevel: 'operational',
    payload: open({ ...who, insight: s(20_000), topic: s(500), confidence: n('0..1') }),
  },
  attention_decision: {
    description: 'Attention daemon: a decision was detected',
    defaultLevel: 'operational',
    payload: open({ ...who, decision: s(20_000), topic: s(500), context: s(20_000) }),
  },
  coherence_alert: {
    description: 'Attention daemon: a high-risk topic was detected',
    defaultLevel: 'workflow',
    payload: open({ ...who, topic: s(500), risk: n('how risky, 0..1'), reason: s(20_000) }),
    lifecycle: { creates: true },
  },
  aha_moment: {
    description: 'Attention daemon: a validated aha moment',
    defaultLevel: 'workflow',
    payload: open({ ...who, insight: s(20_000), topic: s(500), validated: Type.Optional(Type.Boolean()) }),
    lifecycle: { creates: true },
  },
  economics_session_start: {
    description: 'Attention daemon: a session started, with its sats',
    defaultLevel: 'operational',
    payload: open({ ...who, sats: n('sats at the start'), budget_sats: n('the session budget'), started_at: s(64) }),
  },
  economics_session_end: {
    description: 'Attention daemon: a session ended, with its sats',
    defaultLevel: 'operational',
    payload: open({ ...who, sats: n('sats at the end'), spent_sats: n('sats spent'), duration_s: n('seconds'), ended_at: s(64) }),
  },
  resonance_detected: {
    description: 'Resonance detector: a pattern resonates across threads',
    defaultLevel: 'workflow',
    payload: open({ ...who, pattern: s(20_000), threads: list('the threads it spans'), score: n('strength, 0..1') }),
    lifecycle: { creates: true },
  },
  meta_fo_update: {
    description: 'Meta FO: its state changed',
    defaultLevel: 'infrastructure',
    payload: open({ ...who, summary: s(20_000), state: obj('the new state') }),
  },
  conflict_alert: {
    description: 'Meta FO: instances conflict (the same work, contradicting changes)',
    defaultLevel: 'workflow',
    payload: open({ ...who, conflict: s(20_000), instances: list('the instances involved'), resource: s(2000), severity: s(50) }),
    lifecycle: { creates: true },
  },
  recovery_beacon: {
    description: 'Meta FO: a Phoenix resurrection seed (what another instance needs to restore a session)',
    defaultLevel: 'operational',
    payload: open({ ...who, seed: s(100_000, 'the resurrection seed'), state: obj('the session state'), lineage: list('the sessions it descends from'), created_at: s(64) }),
  },
  mission_control_synthesis: {
    description: '(planned) Mission Control: a cross-thread synthesis',
    defaultLevel: 'workflow',
    payload: open({ ...who, summary: s(20_000), threads: list('the threads synthesised') }),
    lifecycle: { creates: true },
  },
  edge_discovery: {
    description: '(planned) Principle steward: a principle edge was found',
    defaultLevel: 'operational',
    payload: open({ ...who, from: s(500), to: s(500), relation: s(200), principle: s(2000) }),
  },
  topology_update: {
    description: '(planned) Principle steward: the axiom topology changed',
    defaultLevel: 'operational',
    payload: open({ ...who, changes: list('what changed'), axioms: list('the axioms now') }),
  },
  monologue_chunk: {
    description: '(planned) Monologue sync: a chunk of the inner monologue',
    defaultLevel: 'infrastructure',
    payload: open({ ...who, seq: n('position in the monologue'), chunk: s(100_000) }),
  },
  context_enter: {
    description: '(planned) Context stream: attention entered a context',
    defaultLevel: 'infrastructure',
    payload: open({ ...who, context: s(2000), topic: s(500) }),
  },
  context_exit: {
    description: '(planned) Context stream: attention left a context',
    defaultLevel: 'infrastructure',
    payload: open({ ...who, context: s(2000), topic: s(500), duration_s: n('seconds in it') }),
  },
  session_debrief: {
    description: '(planned) Session report: the end-of-session report',
    defaultLevel: 'workflow',
    payload: open({ ...who, summary: s(50_000), highlights: list('what stood out') }),
    lifecycle: { creates: true },
  },
  hygiene_check: {
    description: '(planned) Phoenix hygiene: a system health status',
    defaultLevel: 'operational',
    payload: open({ ...who, check: s(200), status: s(50, 'ok, warn, fail'), detail: s(20_000) }),
  },
  gravity_well_formed: {
    description: '(planned) Gravity tracker: a new gravity well was detected',
    defaultLevel: 'workflow',
    payload: open({ ...who, topic: s(500), weight: n('how strong'), members: list('what it pulls together') }),
    lifecycle: { creates: true },
  },
};

/**
 * Registers the roadmap's types as `sovereign.<name>` (visible to the owner's cluster: they are
 * mesh events between one owner's instances) and each bare name as an alias.
 * @example
 * registerMeshRoadmapTypes(catalog);
 * catalog.normalize({ event: 'graph_update', payload: {} }).event; // 'sovereign.graph_update'
 */
export function registerMeshRoadmapTypes(catalog: Catalog): void {
  for (const name of [...MESH_ROADMAP_EVENTS.published, ...MESH_ROADMAP_EVENTS.planned]) {
    const def = DEFS[name] as Def;
    const type = `${MESH_ROADMAP_PREFIX}.${name}`;
    catalog.register({ ...def, type, domain: MESH_ROADMAP_PREFIX, defaultVisibility: 'cluster' });
    catalog.alias({ name, type, from: 'mesh-roadmap' });
  }
}
