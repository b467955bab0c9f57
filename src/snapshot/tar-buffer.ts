/**
 * Collects a tar stream into large chunks so that downstream streams (hashing, compression,
 * the file) see a few calls per MiB instead of two per entry. Callers reserve space, write
 * headers and file content directly into it, then commit what they used.
 */
export class TarBuffer {
  private chunk: Buffer;
  private used = 0;
  private ready: Buffer[] = [];

  constructor(private readonly chunkSize: number = 1 << 20) {
    this.chunk = Buffer.allocUnsafe(chunkSize);
  }

  /** The current chunk; valid until the next `reserve`, `flush` or `finish`. */
  get buffer(): Buffer {
    return this.chunk;
  }

  /** Where the next reserved bytes start in `buffer`. */
  get offset(): number {
    return this.used;
  }

  /** Free bytes left in the current chunk. */
  get available(): number {
    return this.chunk.length - this.used;
  }

  /** Makes `length` contiguous bytes available at `buffer[offset]`, starting a new chunk if needed. */
  reserve(length: number): void {
    if (this.available >= length) return;
    this.flush();
    if (this.chunk.length < length) this.chunk = Buffer.allocUnsafe(length);
  }

  /** Marks `length` bytes at `offset` as written. */
  commit(length: number): void {
    this.used += length;
  }

  /** Appends `length` zero bytes. */
  zeros(length: number): void {
    this.reserve(length);
    this.chunk.fill(0, this.used, this.used + length);
    this.used += length;
  }

  /** Hands the current chunk over (if it holds anything) and starts a fresh one. */
  flush(): void {
    if (this.used === 0) return;
    this.ready.push(this.chunk.subarray(0, this.used));
    this.chunk = Buffer.allocUnsafe(this.chunkSize);
    this.used = 0;
  }

  /** Chunks completed since the last call, in order. */
  take(): Buffer[] {
    const done = this.ready;
    this.ready = [];
    return done;
  }

  get hasReady(): boolean {
    return this.ready.length > 0;
  }
}
