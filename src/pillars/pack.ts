/**
 * What a pillar pack is: a domain's settings, its starter cartridges (sandboxed packages) and
 * its README, as data. `installPillar` writes one into a data directory.
 */
import type { CartridgeManifest, CartridgePackage } from '../sovereignty/index.js';

/** The four pillars. */
export type PillarName = 'software-development' | 'marketing' | 'creative-production' | 'customer-relations';

/** One pillar pack. */
export interface PillarPack {
  /** The pillar, and the name of the domain it installs. */
  readonly name: PillarName;
  /** One line: what the pack does. */
  readonly description: string;
  /** The event-type prefixes of the pillar in the catalog (`domain.marketing.*`, ...). */
  readonly eventTypes: readonly string[];
  /** The text of `domain.toml`. */
  readonly domainToml: string;
  /** Starter cartridges, written to `cartridges/<name>/` (manifest.json + cartridge.js). */
  readonly cartridges: readonly CartridgePackage[];
  /** The text of the domain's README.md. */
  readonly readme: string;
}

/** User options of a pack. */
export interface PillarPackInit {
  /** Marketing's feed monitor: the words a synthesis must be tagged with (or mention in its title). */
  readonly keywords?: readonly string[];
}

/** Every starter cartridge is by this author. */
export const PILLAR_AUTHOR = 'weft-pillars';

/** A starter cartridge's manifest: entry point `process`, version 1.0.0. */
export function starterManifest(
  fields: Pick<CartridgeManifest, 'name' | 'description' | 'consumes' | 'emits'> & Partial<Pick<CartridgeManifest, 'dependencies' | 'outputs'>>,
): CartridgeManifest {
  return {
    name: fields.name,
    version: '1.0.0',
    author: PILLAR_AUTHOR,
    description: fields.description,
    entryPoint: 'process',
    dependencies: fields.dependencies ?? [],
    consumes: fields.consumes,
    emits: fields.emits,
    ...(fields.outputs ? { outputs: fields.outputs } : {}),
  };
}

/**
 * Helpers every starter cartridge starts with: plain ES2020, nothing of the host. Cartridge
 * memory (the maps at the top of a cartridge) lasts while its sandbox runs: a restart forgets
 * it, so a cartridge only ever uses it to say less (no "fixed" without a "failed"), never to
 * miss the first alert.
 */
export const CARTRIDGE_KIT = `// --- weft pillar kit: small helpers, no host access ---
function str(v, max) {
  if (v === undefined || v === null) return '';
  var s = typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
  // Control characters out: titles and bodies come from producers we may not trust.
  s = s.replace(/[\\u0000-\\u0008\\u000b-\\u001f\\u007f]/g, ' ');
  return s.length > max ? s.slice(0, max - 1) + '\\u2026' : s;
}
function num(v) {
  var n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return isFinite(n) ? n : NaN;
}
function alertKey(prefix, id) {
  return (prefix + ':' + str(id, 190)).slice(0, 200);
}
function alert(ctx, a) {
  var p = { title: str(a.title, 500) || 'alert' };
  if (a.body) p.body = str(a.body, 10000);
  if (a.key) p.key = a.key;
  if (a.tags) p.tags = a.tags.filter(Boolean).slice(0, 32).map(function (t) { return str(t, 64); });
  if (typeof a.url === 'string' && /^https?:\\/\\//.test(a.url)) p.url = str(a.url, 2000);
  ctx.emit('domains.alert', p);
}
function hoursBetween(from, to) {
  var a = Date.parse(from), b = Date.parse(to);
  return isNaN(a) || isNaN(b) ? 0 : (b - a) / 3600000;
}
function lines(parts) {
  return parts.filter(function (x) { return x !== undefined && x !== null && x !== ''; }).join('\\n');
}
// A bounded memory: past its size the oldest entry goes.
function memory(limit) {
  var keys = [];
  var m = Object.create(null);
  return {
    get: function (k) { return m[k]; },
    has: function (k) { return k in m; },
    set: function (k, v) {
      if (!(k in m)) { keys.push(k); if (keys.length > limit) delete m[keys.shift()]; }
      m[k] = v;
    },
    del: function (k) { if (k in m) { delete m[k]; keys.splice(keys.indexOf(k), 1); } },
    keys: function () { return keys.slice(); },
  };
}
// --- end of kit ---
`;

/** A starter cartridge: the kit, then its own code. */
export function starterCartridge(manifest: CartridgeManifest, code: string): CartridgePackage {
  return { manifest, source: `${CARTRIDGE_KIT}\n${code.trim()}\n` };
}
