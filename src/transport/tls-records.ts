/**
 * The record layer inside a TLS link: `u32 length | u8 kind | payload`, where kind is a data
 * frame, a credit grant, a ping or a pong. Records larger than the limit are a protocol error.
 */

/** A frame. */
export const K_DATA = 1;
/** Credits granted to the sender (u32). */
export const K_CREDIT = 2;
/** Heartbeat request and answer (u32 id). */
export const K_PING = 3;
export const K_PONG = 4;

/** One record. */
export function record(kind: number, payload: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(5 + payload.length);
  b.writeUInt32BE(1 + payload.length, 0);
  b.writeUInt8(kind, 4);
  b.set(payload, 5);
  return b;
}

/** A u32, big-endian. */
export function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

/** Splits a socket's byte stream into records; refuses records larger than the limit. */
export class RecordReader {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly maxRecord: number) {}

  /** Returns complete records, or an error string on a protocol violation. */
  push(chunk: Buffer): Array<{ kind: number; payload: Buffer }> | string {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Array<{ kind: number; payload: Buffer }> = [];
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32BE(0);
      if (len < 1 || len > this.maxRecord)
        return `record of ${len} bytes exceeds the limit of ${this.maxRecord}`;
      if (this.buf.length < 4 + len) break;
      out.push({ kind: this.buf.readUInt8(4), payload: this.buf.subarray(5, 4 + len) });
      this.buf = this.buf.subarray(4 + len);
    }
    return out;
  }
}
