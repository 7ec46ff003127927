import { KasaError } from '../errors';

/** Default cap on a reply's announced length: real replies are a few KB, 1 MiB means garbage. */
export const DEFAULT_MAX_REPLY_BYTES = 1024 * 1024;

/**
 * Reassembles one length-prefixed frame (4-byte big-endian length, then that many bytes) from
 * TCP reads of any size. Long replies (an HS300 sysinfo is ~1.4 KB) and even the header itself
 * arrive split across reads, so nothing may be parsed before the announced length is in.
 */
export class FrameReader {
  /** Bytes of the last pushed chunk that came after the completed frame (0 normally). */
  extraBytes = 0;

  private readonly header = Buffer.alloc(4);
  private headerFill = 0;
  private expected = -1;
  private body: Buffer | null = null;
  private bodyFill = 0;
  private receivedAny = false;

  /** @param maxLength - largest payload accepted, bytes; default 1 MiB */
  constructor(private readonly maxLength = DEFAULT_MAX_REPLY_BYTES) {}

  /** True once any byte of the current frame has arrived. */
  get started(): boolean {
    return this.receivedAny;
  }

  /** Forgets any partial frame, ready for the next one. */
  reset(): void {
    this.headerFill = 0;
    this.expected = -1;
    this.body = null;
    this.bodyFill = 0;
    this.extraBytes = 0;
    this.receivedAny = false;
  }

  /**
   * Adds one read. Returns the complete payload (still encrypted) once the announced length
   * has arrived, null while more is needed. Throws DEVICE_BAD_REPLY for an absurd length.
   * The returned buffer may share memory with `chunk`.
   */
  push(chunk: Buffer): Buffer | null {
    if (chunk.length === 0) return null;
    this.receivedAny = true;
    let offset = 0;
    if (this.expected < 0) {
      if (this.headerFill === 0 && chunk.length >= 4) {
        this.expected = chunk.readUInt32BE(0);
        offset = 4;
      } else {
        const n = Math.min(4 - this.headerFill, chunk.length);
        chunk.copy(this.header, this.headerFill, 0, n);
        this.headerFill += n;
        offset = n;
        if (this.headerFill < 4) return null;
        this.expected = this.header.readUInt32BE(0);
      }
      if (this.expected > this.maxLength) {
        throw new KasaError(
          'DEVICE_BAD_REPLY',
          `reply length header announces ${this.expected} bytes (limit ${this.maxLength})`,
          { length: this.expected },
        );
      }
    }
    const available = chunk.length - offset;
    if (this.body === null) {
      if (available >= this.expected) {
        // The common case: the whole reply in one read, no copy needed.
        this.extraBytes = available - this.expected;
        return chunk.subarray(offset, offset + this.expected);
      }
      this.body = Buffer.allocUnsafe(this.expected);
      this.bodyFill = 0;
    }
    const n = Math.min(available, this.expected - this.bodyFill);
    chunk.copy(this.body, this.bodyFill, offset, offset + n);
    this.bodyFill += n;
    if (this.bodyFill < this.expected) return null;
    this.extraBytes = available - n;
    return this.body;
  }
}
