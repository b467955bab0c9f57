const CHUNK_SIZE = 1 << 20;

/**
 * Chunks handed back once their content has been consumed, to be filled again. A layer of
 * hundreds of MiB written through fresh 1 MiB chunks leaves the garbage collector tens of
 * MB of dead buffers to find at any time; through a pool it reuses a handful.
 */
export class ChunkPool {
  private readonly free: Buffer[] = [];

  constructor(
    readonly chunkSize: number = CHUNK_SIZE,
    private readonly keep: number = 8,
  ) {}

  take(): Buffer | undefined {
    return this.free.pop();
  }

  /**
   * Gives back a chunk (or a view of one from its start) that nothing will read again.
   * Chunks of another size (a TarBuffer grows one for an entry larger than a chunk) are
   * left to the garbage collector.
   */
  give(chunk: Buffer): void {
    if (chunk.byteOffset !== 0 || chunk.buffer.byteLength !== this.chunkSize || this.free.length >= this.keep) return;
    this.free.push(Buffer.from(chunk.buffer, 0, this.chunkSize));
  }
}

/**
 * Collects a tar stream into large chunks so that downstream streams (hashing, compression,
 * the file) see a few calls per MiB instead of two per entry. Callers reserve space, write
 * headers and file content directly into it, then commit what they used.
 */
export class TarBuffer {
  private chunk: Buffer;
  private used = 0;
  private ready: Buffer[] = [];
  private readonly chunkSize: number;

  /** With a pool, chunks come from it (and whoever consumes them gives them back). */
  constructor(private readonly pool?: ChunkPool) {
    this.chunkSize = pool?.chunkSize ?? CHUNK_SIZE;
    this.chunk = pool?.take() ?? Buffer.allocUnsafe(this.chunkSize);
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
    this.chunk = this.pool?.take() ?? Buffer.allocUnsafe(this.chunkSize);
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
