import { PAYLOAD_LIMITS } from '../envelope/index.js';
import { WeftError } from '../errors/index.js';
import { type CartridgeManifest, type CartridgePackage, validatePackage } from './package.js';
import { ManifestError } from './errors.js';
import { sourceDigest } from './registry.js';

/** The payload of a `cartridge.published` event (snake_case, as the seed names it). */
export interface PublishedCartridgePayload {
  event_type: string;
  version: string;
  author: string;
  /** The UTF-8 source, base64-encoded for the wire. */
  code: string;
  entry_point: string;
  dependencies: string[];
  description: string;
  name?: string;
  consumes?: string[];
  emits?: string[];
  /** Invoke handlers it serves (manifest `invoke`). */
  invoke?: string[];
  /** SHA-256 (hex) of the UTF-8 source: with name and version, the publication's idempotency key. */
  sha256?: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The `cartridge.published` payload of a package: `event_type` is the first type it consumes
 * (or its name when it consumes none), the source travels as base64, and `sha256` names it
 * (name + version + sha256 is the idempotency key: another package is another publication).
 * @example
 * await node.emit({ event: 'cartridge.published', payload: publishedPayload(pkg) });
 */
export function publishedPayload(pkg: CartridgePackage): PublishedCartridgePayload {
  const m = validatePackage(pkg).manifest;
  return {
    event_type: m.consumes[0] ?? m.name,
    version: m.version,
    author: m.author,
    code: Buffer.from(pkg.source, 'utf8').toString('base64'),
    entry_point: m.entryPoint,
    dependencies: [...m.dependencies],
    description: m.description,
    name: m.name,
    consumes: [...m.consumes],
    emits: [...m.emits],
    ...(m.invoke ? { invoke: [...m.invoke] } : {}),
    sha256: sourceDigest(pkg.source),
  };
}

/**
 * Refuses a payload too large to be one event, saying how large the source may be: a
 * publication is a single `cartridge.published`, whose payload (the source base64-encoded, so
 * 4/3 of its size, and the manifest) is bounded like any event's (`PAYLOAD_LIMITS.bytes`,
 * 64 KiB as JSON), well below the 256 KiB a package may have when installed directly.
 * @throws `WEFT_TOO_LARGE` "cartridge source too large to publish: 60 KiB, at most ~47 KiB ...".
 * @example
 * assertPublishable(publishedPayload(pkg));
 */
export function assertPublishable(payload: PublishedCartridgePayload): void {
  const bytes = Buffer.byteLength(JSON.stringify(payload), 'utf8');
  if (bytes <= PAYLOAD_LIMITS.bytes) return;
  const overhead = bytes - payload.code.length;
  const maxSource = Math.max(0, Math.floor((PAYLOAD_LIMITS.bytes - overhead) / 4) * 3);
  const source = Math.floor((payload.code.length * 3) / 4) - (payload.code.endsWith('==') ? 2 : payload.code.endsWith('=') ? 1 : 0);
  const kib = (n: number) => (n / 1024).toFixed(1).replace(/\.0$/, '');
  throw new WeftError(
    'WEFT_TOO_LARGE',
    `cartridge source too large to publish: ${kib(source)} KiB, at most ~${kib(maxSource)} KiB (a publication is one event: the source travels base64-encoded, 4/3 of its size, in a payload of at most ${PAYLOAD_LIMITS.bytes / 1024} KiB as JSON); a larger cartridge (up to 256 KiB) can be installed on each node with weft cartridges install`,
    { details: { sourceBytes: source, maxSourceBytes: maxSource, payloadBytes: bytes, limit: PAYLOAD_LIMITS.bytes } },
  );
}

/**
 * The package a `cartridge.published` payload carries, validated like any package: the
 * sovereignty gate calls this, then `runtime.install(pkg, { origin: peerNodeId })`.
 * A payload without `name` uses `event_type` when it is a valid cartridge name.
 * @throws {ManifestError} naming the field (bad base64 or UTF-8 is reported as `code`).
 * @example
 * const pkg = packageFromPublished(event.payload as PublishedCartridgePayload);
 */
export function packageFromPublished(payload: PublishedCartridgePayload): CartridgePackage {
  let source: string;
  try {
    const bytes = Buffer.from(payload.code, 'base64');
    if (bytes.toString('base64').replace(/=+$/, '') !== payload.code.replace(/=+$/, '')) throw new Error('not base64');
    source = utf8.decode(bytes);
  } catch {
    throw new ManifestError('cartridge.published: code must be base64 of UTF-8 JavaScript', { field: 'code' });
  }
  if (payload.sha256 !== undefined && payload.sha256 !== sourceDigest(source)) {
    throw new ManifestError(`cartridge.published: sha256 ${String(payload.sha256).slice(0, 64)} is not the SHA-256 of code (${sourceDigest(source)})`, { field: 'sha256' });
  }
  const manifest: CartridgeManifest = {
    name: payload.name ?? payload.event_type,
    version: payload.version,
    author: payload.author,
    description: payload.description,
    entryPoint: payload.entry_point,
    dependencies: payload.dependencies,
    consumes: payload.consumes ?? [payload.event_type],
    emits: payload.emits ?? [],
    ...(payload.invoke ? { invoke: payload.invoke } : {}),
  };
  return validatePackage({ manifest, source });
}
