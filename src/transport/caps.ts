/**
 * Caps negotiation for a mount (a link to one peer): required serializer caps must be offered
 * or the link fails with `transport.noprov`; preferred caps pick between providers and, when
 * missing, are dropped with a `transport.flatneg` event unless the mount says `warnDown: false`.
 * Pure functions: the caller turns the events into catalog events and audit records.
 */
import type { EncodeOptions } from './frame-codec.js';
import type { TransportCap } from './transport.js';

/** The serializer features a frame may use. */
export type SerializerCap = 'crc32c' | 'deflate' | 'aead';

export const SERIALIZER_CAPS: readonly SerializerCap[] = ['crc32c', 'deflate', 'aead'];

/** What a mount asks for. */
export interface MountCaps {
  required?: SerializerCap[];
  preferred?: SerializerCap[];
  /** Emit `transport.flatneg` when a preferred cap is dropped (default true). */
  warnDown?: boolean;
}

/** One provider that could carry the mount, with what it (and the remote end) can do. */
export interface CapsOffer {
  provider: string;
  caps: ReadonlySet<TransportCap> | readonly TransportCap[];
}

/** The serializer features both ends agreed to use. */
export interface NegotiatedCaps {
  crc32c: boolean;
  deflate: boolean;
  aead: boolean;
  /** Events frames carry the envelopes' JSON text (the peer's signed hello offered `json-envelopes`). */
  jsonEnvelopes?: boolean;
}

export type NegotiationEvent =
  | { type: 'transport.noprov'; peer: string; missing: SerializerCap[]; message: string }
  | { type: 'transport.flatneg'; peer: string; provider: string; dropped: SerializerCap[]; message: string };

export type Negotiation =
  | { ok: true; peer: string; provider: string; caps: NegotiatedCaps; events: NegotiationEvent[] }
  | { ok: false; peer: string; event: Extract<NegotiationEvent, { type: 'transport.noprov' }> };

function has(caps: CapsOffer['caps'], c: TransportCap): boolean {
  return caps instanceof Set ? caps.has(c) : (caps as readonly TransportCap[]).includes(c);
}

/**
 * The caps both ends offer: a provider's caps intersected with what the remote node
 * announced in its hello.
 */
export function intersectCaps(local: CapsOffer['caps'], remote: readonly string[]): TransportCap[] {
  const r = new Set(remote);
  return [...local].filter((c) => r.has(c));
}

/**
 * Picks a provider and the serializer caps for a mount to `peer`.
 * Among providers with every required cap, the one with the most preferred caps wins; ties go
 * to the lexicographically smallest provider name, so both ends choose alike.
 * @example
 * const n = negotiateCaps('saturn', { required: ['crc32c'], preferred: ['deflate', 'aead'] }, [{ provider: 'tls', caps: tls.caps }]);
 * if (!n.ok) emit(n.event); else n.events.forEach(emit);
 */
export function negotiateCaps(peer: string, mount: MountCaps, offers: readonly CapsOffer[]): Negotiation {
  const required = [...new Set(mount.required ?? [])];
  const preferred = [...new Set(mount.preferred ?? [])].filter((c) => !required.includes(c));
  const eligible = offers.filter((o) => required.every((c) => has(o.caps, c)));
  if (eligible.length === 0) {
    // Report what the best offer lacks (or everything, when there is no provider at all).
    const missingPer = offers.map((o) => required.filter((c) => !has(o.caps, c)));
    const missing = missingPer.length ? missingPer.reduce((a, b) => (b.length < a.length ? b : a)) : required;
    const names = offers.map((o) => o.provider).join(', ') || 'none';
    return {
      ok: false,
      peer,
      event: {
        type: 'transport.noprov',
        peer,
        missing,
        message: `no provider for ${peer} offers the required caps ${required.join(', ')} (missing ${missing.join(', ')}; providers: ${names})`,
      },
    };
  }
  const score = (o: CapsOffer) => preferred.filter((c) => has(o.caps, c)).length;
  const best = [...eligible].sort(
    (x, y) => score(y) - score(x) || (x.provider < y.provider ? -1 : x.provider > y.provider ? 1 : 0),
  )[0]!;
  const use = new Set<SerializerCap>([...required, ...preferred.filter((c) => has(best.caps, c))]);
  const dropped = preferred.filter((c) => !use.has(c));
  const events: NegotiationEvent[] = [];
  if (dropped.length > 0 && mount.warnDown !== false) {
    events.push({
      type: 'transport.flatneg',
      peer,
      provider: best.provider,
      dropped,
      message: `link to ${peer} over ${best.provider} runs without preferred ${dropped.join(', ')}`,
    });
  }
  return {
    ok: true,
    peer,
    provider: best.provider,
    caps: { crc32c: use.has('crc32c'), deflate: use.has('deflate'), aead: use.has('aead') },
    events,
  };
}

/**
 * Encode options for negotiated caps. AEAD needs the link key; without one the frame cannot
 * be sealed, so pass the key whenever `caps.aead` is true.
 * @throws Error when aead was negotiated and no key is given.
 */
export function encodeOptionsFor(
  caps: NegotiatedCaps,
  aeadKey?: Uint8Array,
): Pick<EncodeOptions, 'crc32c' | 'deflate' | 'aead'> {
  if (caps.aead && !aeadKey) throw new Error('aead was negotiated for this link but no link key was given');
  return {
    crc32c: caps.crc32c,
    deflate: caps.deflate ? { minBytes: 512 } : false,
    ...(caps.aead && aeadKey ? { aead: { key: aeadKey } } : {}),
  };
}
