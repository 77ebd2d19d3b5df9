import { type TObject, type TSchema, Type } from '@sinclair/typebox';
import { DuplicateEventTypeError, UnknownEventTypeError, ValidationError } from '../errors/index.js';
import { type ActionDescriptor, compileLazily, Envelope, type LevelName, LEVELS, type Validator, type Visibility } from '../envelope/index.js';

/** How an event type drives notifications. */
export interface NotificationLifecycle {
  /** A new notification (or, with the same idempotency key, the existing one is refreshed). */
  creates?: boolean;
  /** Updates the open notification of the same group; creates one if none is open. */
  updates?: boolean;
  /** Resolves the open notification of the same group. */
  resolves?: boolean;
  /**
   * Resolves the open notification of the same group too, unless a payload field holds one of
   * the values listed for it (`{ success: [false] }`: a build that passed resolves its work
   * item, one that failed updates it). Without an open one, `creates` / `updates` apply.
   */
  resolvesUnless?: Record<string, readonly unknown[]>;
  /** Payload field whose value groups events into one notification. */
  groupKey?: string;
  /** A change in one of these fields makes the notification unseen again. */
  meaningfulFields?: string[];
  /** Changes in these fields never make it unseen again (used when meaningfulFields is empty). */
  silentFields?: string[];
  /** Resolving by hand requires an agent to have claimed it first. */
  requiresClaim?: boolean;
}

/** Privacy class of an event's data: raw never leaves its node. */
export type DataClass = 'raw' | 'summarized' | 'aggregated';

/** Everything the catalog knows about one event type. */
export interface EventTypeDefinition {
  type: string;
  description: string;
  domain: string;
  /** TypeBox schema of the payload (an object schema). */
  payload: TObject;
  defaultLevel: LevelName | number;
  defaultVisibility?: Visibility;
  /** Payload fields whose values, with the type, make the idempotency key. */
  idempotencyFields?: string[];
  lifecycle?: NotificationLifecycle;
  actionable?: boolean;
  dataClass?: DataClass;
  actions?: Record<string, ActionDescriptor>;
  terminalWhen?: string;
  /** Shape a resolution must have: field name → 'string' | 'number' | 'boolean' | 'object' | 'array'. */
  resolutionShape?: Record<string, string>;
  /** Current schema version of the payload. */
  version?: number;
  /**
   * Only the node itself produces this type (its control and system events: cartridge installs,
   * failures, mesh and transport reports...). Installed cartridges may not emit it: peers and the
   * node's own machinery act on these events as the node's word. Default false.
   */
  control?: boolean;
}

/** A registered type: the definition with defaults applied and its compiled payload validator. */
export interface EventTypeEntry {
  readonly type: string;
  readonly description: string;
  readonly domain: string;
  readonly payload: TObject;
  readonly level: number;
  readonly visibility: Visibility;
  readonly idempotencyFields: readonly string[];
  readonly lifecycle: Readonly<NotificationLifecycle> | undefined;
  readonly actionable: boolean;
  readonly dataClass: DataClass;
  readonly actions: Record<string, ActionDescriptor> | undefined;
  readonly terminalWhen: string | undefined;
  readonly resolutionShape: Record<string, string> | undefined;
  readonly version: number;
  /** Only the node itself produces it; no installed cartridge may emit it. */
  readonly control: boolean;
  readonly validator: Validator<Record<string, unknown>>;
}

const RESOLUTION_TYPES = new Set(['string', 'number', 'boolean', 'object', 'array']);

/**
 * Another producer family's name or payload shape for one of our types (TeleClaude's
 * `domain.software-development.planning.dor_assessed` for our `…planning.todo.dor_assessed`).
 * Events arriving under the alias are rewritten to our type and shape before validation,
 * at emit, on the bus and at mesh ingress.
 */
export interface EventTypeAlias {
  /** The name the other producers use (may equal `type` when only the payload differs). */
  name: string;
  /** Our registered type it stands for. */
  type: string;
  /** Which producer family speaks it, for docs and `weft schemas list`. */
  from: string;
  /** Applies only to payloads of this shape (default: every payload under `name`). */
  matches?: (payload: Record<string, unknown>) => boolean;
  /** Rewrites their payload to ours; `at` is the event's timestamp. */
  payload?: (payload: Record<string, unknown>, at: { timestamp: string; source: string }) => Record<string, unknown>;
}

/** The fields of an event `normalize()` looks at and may rewrite. */
export interface Normalizable {
  event: string;
  payload?: Record<string, unknown>;
  description?: string;
  domain?: string;
  timestamp?: string;
  source?: string;
  idempotencyKey?: string;
}

/**
 * The event-type registry.
 * @example
 * const catalog = new Catalog();
 * catalog.register({ type: 'demo.thing.happened', description: 'x', domain: 'demo',
 *   payload: Type.Object({ id: Type.String() }), defaultLevel: 'operational' });
 */
export class Catalog {
  private readonly entries = new Map<string, EventTypeEntry>();
  /** Named schemas of records that are not events (Caro's NodeSummary, MeshQuery, ...), exported with the types. */
  private readonly records: Record<string, TSchema> = {};

  /**
   * Registers named record schemas for `weft schemas export` (a name registered twice fails).
   * @example
   * catalog.registerRecords({ NodeSummary });
   */
  registerRecords(schemas: Readonly<Record<string, TSchema>>): void {
    for (const [name, schema] of Object.entries(schemas)) {
      if (name in this.records) throw new DuplicateEventTypeError(`record ${name}`);
      this.records[name] = schema;
    }
  }
  private readonly aliases = new Map<string, EventTypeAlias[]>();
  private readonly payloadFilters = new Map<string, (payload: Record<string, unknown>) => Record<string, unknown>>();

  /**
   * Sets what every payload of a type goes through once it is valid, wherever the event is
   * emitted (API, CLI, in-process, a shell hook): the privacy layer's secrets filter on
   * `terminal.command`. One filter a type; setting it again replaces it.
   */
  setPayloadFilter(type: string, fn: (payload: Record<string, unknown>) => Record<string, unknown>): void {
    if (!this.entries.has(type)) throw new UnknownEventTypeError(type);
    this.payloadFilters.set(type, fn);
  }

  /** The payload after its type's filter (itself when the type has none). */
  filterPayload(type: string, payload: Record<string, unknown>): Record<string, unknown> {
    const f = this.payloadFilters.get(type);
    return f === undefined ? payload : f(payload);
  }

  /** Registers another producer family's name or payload shape for one of our types. */
  alias(a: EventTypeAlias): void {
    if (!this.entries.has(a.type)) throw new UnknownEventTypeError(a.type);
    if (a.name !== a.type && this.entries.has(a.name)) {
      throw new ValidationError(`alias '${a.name}' is a registered type itself; give it a payload matcher instead`, { field: 'name' });
    }
    const list = this.aliases.get(a.name) ?? [];
    list.push(a);
    this.aliases.set(a.name, list);
  }

  /** Every alias, for `weft schemas list` and the docs. */
  listAliases(): EventTypeAlias[] {
    return [...this.aliases.values()].flat();
  }

  /**
   * The event under our name and in our payload shape, with an empty description or domain
   * filled from the catalog (producers such as TeleClaude write '' for "the default") and a
   * missing idempotency key derived from the type's idempotency fields.
   * Returns the input itself when nothing changes.
   */
  normalize<T extends Normalizable>(e: T): T {
    let out = e;
    const list = this.aliases.get(e.event);
    if (list) {
      const payload = (e.payload ?? {}) as Record<string, unknown>;
      const a = list.find((x) => x.matches === undefined || x.matches(payload));
      if (a) {
        out = {
          ...e,
          event: a.type,
          payload: a.payload ? a.payload(payload, { timestamp: e.timestamp ?? '', source: e.source ?? '' }) : payload,
        };
      }
    }
    const entry = this.entries.get(out.event);
    if (entry && (out.description === '' || out.domain === '')) {
      out = { ...out, ...(out.description === '' ? { description: entry.description } : {}), ...(out.domain === '' ? { domain: entry.domain } : {}) };
    }
    // No key given (TeleClaude writes '', a redis-cli producer nothing): the type's own, as emit
    // derives it, so the dedup stage treats a repeat from any entrance alike.
    if (entry && !out.idempotencyKey && entry.idempotencyFields.length > 0 && out.payload && typeof out.payload === 'object') {
      const key = this.idempotencyKey(out.event, out.payload as Record<string, unknown>);
      if (key !== undefined) out = { ...out, idempotencyKey: key };
    }
    return out;
  }

  register(def: EventTypeDefinition): EventTypeEntry {
    if (this.entries.has(def.type)) throw new DuplicateEventTypeError(def.type);
    if (!/^[a-z][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)+$/.test(def.type)) {
      throw new ValidationError(`event type '${def.type}': name must be dotted lowercase words`, { field: 'type' });
    }
    const level = typeof def.defaultLevel === 'number' ? def.defaultLevel : LEVELS[def.defaultLevel];
    if (!Number.isInteger(level) || level < 0 || level > 3) {
      throw new ValidationError(`event type '${def.type}': defaultLevel must be 0..3`, { field: 'defaultLevel' });
    }
    const lc = def.lifecycle;
    if (lc && (lc.updates || lc.resolves || lc.resolvesUnless) && !lc.groupKey) {
      throw new ValidationError(`event type '${def.type}': lifecycle updates/resolves needs a groupKey`, {
        field: 'lifecycle.groupKey',
      });
    }
    for (const [field, kind] of Object.entries(def.resolutionShape ?? {})) {
      if (!RESOLUTION_TYPES.has(kind)) {
        throw new ValidationError(
          `event type '${def.type}': resolutionShape.${field} must be one of ${[...RESOLUTION_TYPES].join(', ')}`,
          { field: `resolutionShape.${field}` },
        );
      }
    }
    const entry: EventTypeEntry = {
      type: def.type,
      description: def.description,
      domain: def.domain,
      payload: def.payload,
      level,
      visibility: def.defaultVisibility ?? 'local',
      idempotencyFields: def.idempotencyFields ?? [],
      lifecycle: lc,
      actionable: def.actionable ?? false,
      dataClass: def.dataClass ?? 'summarized',
      actions: def.actions,
      terminalWhen: def.terminalWhen,
      resolutionShape: def.resolutionShape,
      version: def.version ?? 1,
      control: def.control ?? false,
      validator: compileLazily<Record<string, unknown>>(def.payload),
    };
    this.entries.set(def.type, entry);
    return entry;
  }

  has(type: string): boolean {
    return this.entries.has(type);
  }

  get(type: string): EventTypeEntry | undefined {
    return this.entries.get(type);
  }

  /** Whether only the node itself may produce `type` (its definition says `control`); false for unknown types. */
  isControl(type: string): boolean {
    return this.entries.get(type)?.control === true;
  }

  /** The entry, or an UnknownEventTypeError naming the type. */
  require(type: string): EventTypeEntry {
    const e = this.entries.get(type);
    if (!e) throw new UnknownEventTypeError(type);
    return e;
  }

  list(): EventTypeEntry[] {
    return [...this.entries.values()].sort((a, b) => a.type.localeCompare(b.type));
  }

  /** Validates a payload against its type's schema, naming the type and the field on failure. */
  validatePayload(type: string, payload: unknown): Record<string, unknown> {
    return this.require(type).validator.assert(payload, `event '${type}' payload`);
  }

  /** type + the idempotency fields' values, or undefined when the type declares none. */
  idempotencyKey(type: string, payload: Record<string, unknown>): string | undefined {
    const e = this.require(type);
    if (e.idempotencyFields.length === 0) return undefined;
    let key = type;
    for (const f of e.idempotencyFields) {
      const v = payload[f];
      key += ':' + (v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
    }
    return key;
  }

  /**
   * JSON Schema of every type, so other languages can produce events: one document with the
   * envelope and, per type, its payload schema and metadata.
   */
  exportJsonSchema(): Record<string, unknown> {
    const types: Record<string, unknown> = {};
    for (const e of this.list()) {
      types[e.type] = {
        description: e.description,
        domain: e.domain,
        version: e.version,
        defaultLevel: e.level,
        defaultVisibility: e.visibility,
        idempotencyFields: e.idempotencyFields,
        lifecycle: e.lifecycle ?? null,
        actionable: e.actionable,
        dataClass: e.dataClass,
        control: e.control,
        resolutionShape: e.resolutionShape ?? null,
        payload: stripSymbols(e.payload),
      };
    }
    return {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      title: 'Weft event catalog',
      envelope: stripSymbols(Envelope),
      types,
      records: Object.fromEntries(Object.entries(this.records).map(([k, v]) => [k, stripSymbols(v)])),
    };
  }
}

/** TypeBox schemas carry symbol keys; JSON.stringify drops them, this makes it explicit. */
function stripSymbols(schema: TSchema): unknown {
  return JSON.parse(JSON.stringify(schema));
}

export { Type };
