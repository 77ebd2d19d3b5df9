/**
 * The few DER (ASN.1 Distinguished Encoding Rules) types a self-signed Ed25519 certificate is
 * made of. Encoding only: certificates are read by `node:crypto`'s `X509Certificate`.
 */

/** One DER value: tag, minimal length, contents. */
function tlv(tag: number, content: Uint8Array): Buffer {
  const n = content.length;
  let head: number[];
  if (n < 0x80) head = [tag, n];
  else {
    const len: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) len.unshift(v & 0xff);
    head = [tag, 0x80 | len.length, ...len];
  }
  return Buffer.concat([Buffer.from(head), content]);
}

export const sequence = (...items: Uint8Array[]): Buffer => tlv(0x30, Buffer.concat(items));
export const set = (...items: Uint8Array[]): Buffer => tlv(0x31, Buffer.concat(items));
/** `[n] EXPLICIT`: a context-specific constructed tag around one value. */
export const explicit = (n: number, item: Uint8Array): Buffer => tlv(0xa0 | n, item);
export const octetString = (bytes: Uint8Array): Buffer => tlv(0x04, bytes);
export const boolean = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0x00]));
/** A BIT STRING of whole bytes (no unused bits). */
export const bitString = (bytes: Uint8Array): Buffer => tlv(0x03, Buffer.concat([Buffer.from([0]), bytes]));

/** A non-negative INTEGER from its big-endian bytes: leading zeros dropped, a zero put back where the top bit would make it negative. */
export function unsignedInteger(bytes: Uint8Array): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const b = Buffer.from(bytes.subarray(i));
  return tlv(0x02, b.length === 0 || (b[0] as number) & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
}

/** An OBJECT IDENTIFIER from its dotted form. */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  if (arcs.length < 2 || arcs.some((a) => !Number.isSafeInteger(a) || a < 0))
    throw new TypeError(`not an object identifier: ${dotted}`);
  const out: number[] = [(arcs[0] as number) * 40 + (arcs[1] as number)];
  for (const arc of arcs.slice(2)) {
    const groups: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) groups.unshift(0x80 | (v & 0x7f));
    out.push(...groups);
  }
  return tlv(0x06, Buffer.from(out));
}

/** PrintableString where the text allows it (RFC 5280's preference for names it fits), else UTF8String. */
export function directoryString(text: string): Buffer {
  return /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(text)
    ? tlv(0x13, Buffer.from(text, 'latin1'))
    : tlv(0x0c, Buffer.from(text, 'utf8'));
}

/** A certificate's time (RFC 5280 4.1.2.5): UTCTime through 2049, GeneralizedTime from 2050; whole seconds, UTC. */
export function time(ms: number): Buffer {
  const iso = new Date(ms).toISOString(); // 2026-12-07T02:55:44.123Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, ''); // 20261207025544
  const year = new Date(ms).getUTCFullYear();
  if (year < 1950 || year > 9999) throw new RangeError(`certificate time out of range: ${iso}`);
  return year < 2050
    ? tlv(0x17, Buffer.from(`${digits.slice(2)}Z`, 'latin1'))
    : tlv(0x18, Buffer.from(`${digits}Z`, 'latin1'));
}
