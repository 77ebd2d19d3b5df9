/**
 * Frame codec. Layout (big-endian):
 *
 *   0  magic "WEFT" (4)        4  version u8      5  type u8      6  flags u8     7  reserved u8 (0)
 *   8  sequence u64            16 timestamp u64   24 nonce (16)   40 sender length u16
 *   42 sender (utf-8)          .. body length u32 .. body
 *   .. crc32c u32 over everything before it (flag 0x01)
 *   .. Ed25519 signature (64) over everything before it
 *
 * Body = msgpack, then deflate-raw (flag 0x02), then AEAD (0x04 ChaCha20-Poly1305, 0x08
 * AES-256-GCM; iv = first 12 bytes of the nonce, aad = the fixed header, 16-byte tag appended).
 * An events frame's envelopes are maps, or their JSON text when the receiver's hello offered
 * `json-envelopes` (the sender's outbox holds that text: it is sent as it is); decoding parses it.
 * The signature covers the sealed body, so a receiver checks it before decrypting or inflating.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { createRequire } from 'node:module';
import type { Packr, Unpackr } from 'msgpackr';
import { isNodeId, type NodeIdentity, type PublicKeyLike, verifySignature } from '../identity/index.js';
import { crc32c } from './crc32c.js';
import { type FrameError, type FrameErrorCode, TransportError } from './errors.js';
import {
  type AeadAlgorithm,
  DEFAULT_MAX_FRAME_SIZE,
  FRAME_MAGIC,
  FRAME_TYPE_CODES,
  FRAME_TYPES,
  type Frame,
  type FrameHeader,
  type FrameType,
  type OutgoingFrame,
  PROTOCOL_VERSION,
} from './frame.js';

const FLAG_CRC32C = 0x01;
const FLAG_DEFLATE = 0x02;
const FLAG_CHACHA = 0x04;
const FLAG_AESGCM = 0x08;
const KNOWN_FLAGS = FLAG_CRC32C | FLAG_DEFLATE | FLAG_CHACHA | FLAG_AESGCM;
const FIXED = 42;
const SIG = 64;
const TAG = 16;
/** Smallest possible frame: fixed header, empty sender, body length, signature. */
const MIN_FRAME = FIXED + 4 + SIG;
const MAX_SENDER = 128;

const TYPE_BY_CODE = new Map<number, FrameType>(FRAME_TYPES.map((t) => [FRAME_TYPE_CODES[t], t]));

// msgpack is loaded with the first frame: a node that never links to a peer never loads it.
let codec: { packr: Packr; unpackr: Unpackr } | undefined;
function msgpack(): { packr: Packr; unpackr: Unpackr } {
  if (!codec) {
    const m = createRequire(import.meta.url)('msgpackr') as typeof import('msgpackr');
    codec = {
      packr: new m.Packr({ useRecords: false, variableMapSize: true }),
      unpackr: new m.Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' }),
    };
  }
  return codec;
}

/** How to encode: who signs, and which serializer features to use. */
export interface EncodeOptions {
  identity: NodeIdentity;
  crc32c?: boolean;
  /** Compress the body with deflate-raw; `true` or the smallest body size worth compressing. */
  deflate?: boolean | { minBytes: number };
  aead?: { key: Uint8Array; algorithm?: AeadAlgorithm };
  maxFrameSize?: number;
}

/** How to decode: whose keys we accept, which link key opens sealed bodies. */
export interface DecodeOptions {
  /** The public key of a sender we accept, or undefined for an unknown sender. */
  lookupKey: (sender: string) => PublicKeyLike | undefined;
  /** Link key for AEAD frames, fixed or per sender. */
  aeadKey?: Uint8Array | ((sender: string) => Uint8Array | undefined);
  maxFrameSize?: number;
}

export type DecodeResult = { ok: true; frame: Frame } | { ok: false; error: FrameError };

function fail(code: FrameErrorCode, message: string): { ok: false; error: FrameError } {
  return { ok: false, error: { code, message } };
}

function aeadSeal(
  alg: AeadAlgorithm,
  key: Uint8Array,
  iv: Uint8Array,
  aad: Uint8Array,
  plain: Uint8Array,
): Uint8Array {
  const c =
    alg === 'chacha20-poly1305'
      ? createCipheriv('chacha20-poly1305', key, iv, { authTagLength: TAG })
      : createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG });
  c.setAAD(aad, { plaintextLength: plain.length });
  const out = Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
  return out;
}

function aeadOpen(
  alg: AeadAlgorithm,
  key: Uint8Array,
  iv: Uint8Array,
  aad: Uint8Array,
  sealed: Uint8Array,
): Uint8Array {
  if (sealed.length < TAG) throw new Error('sealed body shorter than its tag');
  const ct = sealed.subarray(0, sealed.length - TAG);
  const d =
    alg === 'chacha20-poly1305'
      ? createDecipheriv('chacha20-poly1305', key, iv, { authTagLength: TAG })
      : createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG });
  d.setAAD(aad, { plaintextLength: ct.length });
  d.setAuthTag(sealed.subarray(sealed.length - TAG));
  return Buffer.concat([d.update(ct), d.final()]);
}

/**
 * Encodes and signs a frame.
 * @throws TransportError TRANSPORT_FRAME_TOO_LARGE when the result exceeds the max frame size,
 *   TRANSPORT_ENCODE when a field is out of range.
 * @example
 * const bytes = encodeFrame({ type: 'events', sequence: 1, timestamp: clock.now(), body: { envelopes } }, { identity });
 */
export function encodeFrame(frame: OutgoingFrame, opts: EncodeOptions): Uint8Array {
  const max = opts.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
  if (!Number.isSafeInteger(frame.sequence) || frame.sequence < 0) {
    throw new TransportError(
      'TRANSPORT_ENCODE',
      `sequence must be a non-negative safe integer, got ${frame.sequence}`,
    );
  }
  if (!Number.isSafeInteger(frame.timestamp) || frame.timestamp < 0) {
    throw new TransportError(
      'TRANSPORT_ENCODE',
      `timestamp must be a non-negative safe integer, got ${frame.timestamp}`,
    );
  }
  const nonce = frame.nonce ?? randomBytes(16);
  if (nonce.length !== 16) throw new TransportError('TRANSPORT_ENCODE', 'nonce must be 16 bytes');
  const sender = Buffer.from(opts.identity.nodeId, 'utf8');

  let body: Uint8Array = msgpack().packr.pack(frame.body);
  let flags = 0;
  const deflateMin =
    opts.deflate === true ? 0 : opts.deflate ? opts.deflate.minBytes : Number.POSITIVE_INFINITY;
  if (body.length >= deflateMin) {
    body = deflateRawSync(body);
    flags |= FLAG_DEFLATE;
  }
  if (opts.crc32c) flags |= FLAG_CRC32C;
  const alg = opts.aead ? (opts.aead.algorithm ?? 'chacha20-poly1305') : null;
  if (alg) flags |= alg === 'chacha20-poly1305' ? FLAG_CHACHA : FLAG_AESGCM;

  const header = Buffer.alloc(FIXED + sender.length);
  header.writeUInt32BE(FRAME_MAGIC, 0);
  header.writeUInt8(PROTOCOL_VERSION, 4);
  header.writeUInt8(FRAME_TYPE_CODES[frame.type], 5);
  header.writeUInt8(flags, 6);
  header.writeUInt8(0, 7);
  header.writeBigUInt64BE(BigInt(frame.sequence), 8);
  header.writeBigUInt64BE(BigInt(frame.timestamp), 16);
  header.set(nonce, 24);
  header.writeUInt16BE(sender.length, 40);
  header.set(sender, 42);

  if (alg && opts.aead) body = aeadSeal(alg, opts.aead.key, nonce.subarray(0, 12), header, body);

  const crcLen = flags & FLAG_CRC32C ? 4 : 0;
  const total = header.length + 4 + body.length + crcLen + SIG;
  if (total > max) {
    throw new TransportError(
      'TRANSPORT_FRAME_TOO_LARGE',
      `frame of ${total} bytes exceeds the maximum of ${max}`,
      {
        details: { size: total, max },
      },
    );
  }
  const out = Buffer.allocUnsafe(total);
  header.copy(out, 0);
  let o = header.length;
  out.writeUInt32BE(body.length, o);
  o += 4;
  out.set(body, o);
  o += body.length;
  if (crcLen) {
    out.writeUInt32BE(crc32c(out.subarray(0, o)), o);
    o += 4;
  }
  out.set(opts.identity.sign(out.subarray(0, o)), o);
  return out;
}

/** Header fields read without checking the signature (for routing and logs only). */
export type PeekResult = { ok: true; header: FrameHeader; size: number } | { ok: false; error: FrameError };

/**
 * Parses the frame's header and layout without verifying anything cryptographic. Never trust
 * what it returns; use it to route or to label a rejection.
 */
export function peekFrame(bytes: Uint8Array, maxFrameSize = DEFAULT_MAX_FRAME_SIZE): PeekResult {
  const r = parseLayout(bytes, maxFrameSize);
  return r.ok ? { ok: true, header: r.header, size: bytes.length } : r;
}

interface Layout {
  ok: true;
  header: FrameHeader;
  fixedHeaderEnd: number;
  bodyStart: number;
  bodyEnd: number;
  signedEnd: number;
}

function parseLayout(input: Uint8Array, max: number): Layout | { ok: false; error: FrameError } {
  if (!(input instanceof Uint8Array)) return fail('FRAME_TRUNCATED', 'frame is not a byte array');
  if (input.length > max)
    return fail('FRAME_TOO_LARGE', `frame of ${input.length} bytes exceeds the maximum of ${max}`);
  if (input.length < 4)
    return fail('FRAME_TRUNCATED', `frame of ${input.length} bytes is shorter than its magic`);
  const b = Buffer.from(input.buffer, input.byteOffset, input.length);
  if (b.readUInt32BE(0) !== FRAME_MAGIC)
    return fail('FRAME_BAD_MAGIC', 'frame does not start with the WEFT magic');
  if (b.length < 5) return fail('FRAME_TRUNCATED', 'frame ends before its version');
  const version = b.readUInt8(4);
  if (version !== PROTOCOL_VERSION)
    return fail(
      'FRAME_BAD_VERSION',
      `protocol version ${version} is not supported (this node speaks ${PROTOCOL_VERSION})`,
    );
  if (b.length < MIN_FRAME)
    return fail(
      'FRAME_TRUNCATED',
      `frame of ${b.length} bytes is shorter than the smallest frame (${MIN_FRAME})`,
    );
  const type = TYPE_BY_CODE.get(b.readUInt8(5));
  if (!type) return fail('FRAME_BAD_TYPE', `unknown frame type ${b.readUInt8(5)}`);
  const flags = b.readUInt8(6);
  if ((flags & ~KNOWN_FLAGS) !== 0 || b.readUInt8(7) !== 0)
    return fail('FRAME_BAD_FLAGS', `unknown flag bits 0x${flags.toString(16)}`);
  if ((flags & FLAG_CHACHA) !== 0 && (flags & FLAG_AESGCM) !== 0)
    return fail('FRAME_BAD_FLAGS', 'frame claims two AEAD algorithms');
  const seq = b.readBigUInt64BE(8);
  const ts = b.readBigUInt64BE(16);
  if (seq > BigInt(Number.MAX_SAFE_INTEGER)) return fail('FRAME_BAD_FIELD', 'sequence exceeds 2^53-1');
  if (ts > BigInt(Number.MAX_SAFE_INTEGER)) return fail('FRAME_BAD_FIELD', 'timestamp exceeds 2^53-1');
  const senderLen = b.readUInt16BE(40);
  if (senderLen > MAX_SENDER) return fail('FRAME_BAD_SENDER', `sender id of ${senderLen} bytes is too long`);
  const fixedHeaderEnd = FIXED + senderLen;
  if (b.length < fixedHeaderEnd + 4 + SIG) return fail('FRAME_TRUNCATED', 'frame ends inside its header');
  const sender = b.toString('utf8', FIXED, fixedHeaderEnd);
  if (!isNodeId(sender)) return fail('FRAME_BAD_SENDER', 'sender is not a weft:ed25519 node id');
  const bodyLen = b.readUInt32BE(fixedHeaderEnd);
  const bodyStart = fixedHeaderEnd + 4;
  const bodyEnd = bodyStart + bodyLen;
  const crcLen = flags & FLAG_CRC32C ? 4 : 0;
  const expected = bodyEnd + crcLen + SIG;
  if (b.length < expected)
    return fail('FRAME_TRUNCATED', `frame of ${b.length} bytes is shorter than its declared ${expected}`);
  if (b.length > expected)
    return fail('FRAME_TRAILING_BYTES', `frame has ${b.length - expected} bytes after its signature`);
  return {
    ok: true,
    header: {
      version,
      type,
      sender,
      sequence: Number(seq),
      timestamp: Number(ts),
      nonce: new Uint8Array(b.subarray(24, 40)),
      crc32c: crcLen > 0,
      deflate: (flags & FLAG_DEFLATE) !== 0,
      aead: flags & FLAG_CHACHA ? 'chacha20-poly1305' : flags & FLAG_AESGCM ? 'aes-256-gcm' : null,
    },
    fixedHeaderEnd,
    bodyStart,
    bodyEnd,
    signedEnd: bodyEnd + crcLen,
  };
}

/**
 * Decodes and verifies a frame. Never throws: every malformed input yields a distinct code.
 * Checks run cheapest first: size, layout, CRC, sender lookup, signature, AEAD, inflate,
 * msgpack, body fields. Replay checks are the caller's next step (mesh/replay-guard).
 * @example
 * const r = decodeFrame(bytes, { lookupKey: (id) => peers.get(id)?.publicKey });
 * if (!r.ok) audit.record('frame.rejected', peer, r.error, false);
 */
export function decodeFrame(bytes: Uint8Array, opts: DecodeOptions): DecodeResult {
  try {
    return decodeUnsafe(bytes, opts);
  } catch (err) {
    // Defence in depth: anything unforeseen is still a typed refusal, never a crash.
    return fail('FRAME_BAD_FIELD', `frame could not be decoded: ${(err as Error)?.message ?? String(err)}`);
  }
}

function decodeUnsafe(bytes: Uint8Array, opts: DecodeOptions): DecodeResult {
  const max = opts.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
  const l = parseLayout(bytes, max);
  if (!l.ok) return l;
  const { header } = l;
  if (header.crc32c) {
    const stored = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).readUInt32BE(l.bodyEnd);
    if (crc32c(bytes.subarray(0, l.bodyEnd)) !== stored)
      return fail('FRAME_BAD_CRC', 'CRC32C does not match: the frame was damaged in transit');
  }
  let key: PublicKeyLike | undefined;
  try {
    key = opts.lookupKey(header.sender);
  } catch {
    key = undefined;
  }
  if (!key) return fail('FRAME_UNKNOWN_SENDER', `sender ${header.sender} is not a known peer`);
  if (!verifySignature(key, bytes.subarray(0, l.signedEnd), bytes.subarray(l.signedEnd))) {
    return fail('FRAME_BAD_SIGNATURE', `signature does not verify for sender ${header.sender}`);
  }
  let body: Uint8Array = bytes.subarray(l.bodyStart, l.bodyEnd);
  if (header.aead) {
    const k = typeof opts.aeadKey === 'function' ? opts.aeadKey(header.sender) : opts.aeadKey;
    if (!k)
      return fail(
        'FRAME_AEAD_KEY_MISSING',
        `frame is sealed with ${header.aead} but no link key is known for ${header.sender}`,
      );
    try {
      body = aeadOpen(
        header.aead,
        k,
        header.nonce.subarray(0, 12),
        bytes.subarray(0, l.fixedHeaderEnd),
        body,
      );
    } catch {
      return fail(
        'FRAME_AEAD_FAILED',
        `${header.aead} could not open the body (wrong link key or altered ciphertext)`,
      );
    }
  }
  if (header.deflate) {
    try {
      body = inflateRawSync(body, { maxOutputLength: max });
    } catch (err) {
      return fail('FRAME_INFLATE_FAILED', `body does not inflate: ${(err as Error).message}`);
    }
  }
  let value: unknown;
  try {
    value = msgpack().unpackr.unpack(body);
  } catch (err) {
    return fail('FRAME_BAD_MSGPACK', `body is not valid msgpack: ${(err as Error).message}`);
  }
  const problem = (header.type === 'events' ? parseJsonEnvelopes(value) : undefined) ?? checkBody(header.type, value);
  if (problem) return fail('FRAME_BAD_FIELD', `${header.type} frame: ${problem}`);
  return { ok: true, frame: { type: header.type, header, body: value } as Frame };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

/**
 * Deepest nesting a body may have. msgpack decoding gives up a few thousand levels down, while
 * JSON text (`json-envelopes`) parses at any depth: the same bound for both keeps what follows
 * (validation, a rejection's record) from recursing without end.
 */
const MAX_BODY_DEPTH = 512;

/** Why the body is not plain data (what JSON carries plus byte strings; no Dates, no extension objects, bounded), or undefined. */
function plainDataProblem(root: unknown): string | undefined {
  const stack: unknown[] = [root];
  const depths: number[] = [0];
  let budget = 1_000_000;
  while (stack.length > 0) {
    if (--budget < 0) return 'body holds more than 1,000,000 values';
    const v = stack.pop();
    const d = depths.pop() as number;
    if (v === null || typeof v === 'string' || typeof v === 'boolean') continue;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return 'body holds a number that is not finite';
      continue;
    }
    if (v instanceof Uint8Array) continue;
    if (d >= MAX_BODY_DEPTH) return `body nests deeper than ${MAX_BODY_DEPTH} levels`;
    if (Array.isArray(v)) {
      for (const x of v) {
        stack.push(x);
        depths.push(d + 1);
      }
      continue;
    }
    if (isPlainObject(v)) {
      for (const k in v) {
        stack.push(v[k]);
        depths.push(d + 1);
      }
      continue;
    }
    return 'body holds a value that is not plain data';
  }
  return undefined;
}

/**
 * Envelopes sent as their JSON text (`JSON_ENVELOPES_CAP`) become objects here, in place: past
 * the decoder a frame holds objects only, checked like any other (plain data, each a map).
 */
function parseJsonEnvelopes(v: unknown): string | undefined {
  // A body without an envelope list is checkBody's to describe.
  if (!isPlainObject(v) || !Array.isArray(v.envelopes)) return undefined;
  const list = v.envelopes as unknown[];
  for (let i = 0; i < list.length; i++) {
    const x = list[i];
    if (typeof x !== 'string') continue;
    try {
      list[i] = JSON.parse(x);
    } catch (err) {
      return `envelope ${i} is JSON text that does not parse (${(err as Error).message})`;
    }
  }
  return undefined;
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isStr = (v: unknown): v is string => typeof v === 'string';

function checkBody(type: FrameType, v: unknown): string | undefined {
  if (!isPlainObject(v)) return 'body is not a map';
  const plain = plainDataProblem(v);
  if (plain) return plain;
  switch (type) {
    case 'events':
      if (!Array.isArray(v.envelopes)) return 'envelopes is not an array';
      if (!v.envelopes.every(isPlainObject)) return 'an envelope is not a map';
      return undefined;
    case 'ack':
      if (!Array.isArray(v.sequences) || !v.sequences.every(isInt))
        return 'sequences is not an array of integers';
      if (v.envelopeIds !== undefined && (!Array.isArray(v.envelopeIds) || !v.envelopeIds.every(isStr)))
        return 'envelopeIds is not an array of strings';
      return undefined;
    case 'hello':
      if (!isStr(v.computer)) return 'computer is not a string';
      if (v.cluster !== undefined && !isStr(v.cluster)) return 'cluster is not a string';
      if (!Array.isArray(v.caps) || !v.caps.every(isStr)) return 'caps is not an array of strings';
      if (!Array.isArray(v.protocolVersions) || !v.protocolVersions.every(isInt))
        return 'protocolVersions is not an array of integers';
      if (v.x25519 !== undefined && !(v.x25519 instanceof Uint8Array && v.x25519.length === 32))
        return 'x25519 is not 32 bytes';
      if (v.reply !== undefined && typeof v.reply !== 'boolean') return 'reply is not a boolean';
      return undefined;
    case 'ping':
      return isInt(v.id) && isInt(v.sentAt) ? undefined : 'id and sentAt must be integers';
    case 'pong':
      return isInt(v.id) && isInt(v.pingSentAt) && isInt(v.sentAt)
        ? undefined
        : 'id, pingSentAt and sentAt must be integers';
    case 'key-rotation': {
      const r = v.record;
      if (!isPlainObject(r)) return 'record is not a map';
      return isStr(r.oldNodeId) &&
        isStr(r.newNodeId) &&
        isInt(r.timestamp) &&
        isStr(r.endorsement) &&
        isStr(r.proof)
        ? undefined
        : 'record fields have wrong types';
    }
    case 'goodbye':
      return v.reason === undefined || isStr(v.reason) ? undefined : 'reason is not a string';
    case 'message':
      return isStr(v.kind) ? undefined : 'kind is not a string';
  }
}

/** The frame type byte of an encoded frame, without any checks (routing hint only). */
export function frameTypeHint(bytes: Uint8Array): FrameType | undefined {
  return bytes.length > 5 ? TYPE_BY_CODE.get(bytes[5]!) : undefined;
}
