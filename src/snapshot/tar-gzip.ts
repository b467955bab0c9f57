import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { constants, crc32, createDeflateRaw, type ZlibOptions } from 'node:zlib';
import { DEFAULT_COMPRESSION_LEVEL } from '../oci/compression.js';
import { KilnError } from '../util/errors.js';

/**
 * Compressed independently, one block keeps a thread-pool thread busy for ~15 ms at level 1;
 * the last 32 KiB of the block before it serve as its dictionary, so the ratio is within a
 * fraction of a percent of one continuous stream.
 */
const BLOCK_SIZE = 1 << 20;
const WINDOW = 32 << 10;
// Compressed output comes in pieces of this size: a few per block, each sent on as it is.
const OUT_CHUNK = 64 << 10;

export interface ParallelGzipOptions {
  level?: number;
  /** Blocks compressed at once (default: the machine's parallelism, 2 to 4). */
  concurrency?: number;
  /**
   * Told when an input chunk has been copied into a block and will not be read again, so
   * its owner can fill it anew (see `ChunkPool`).
   */
  release?: (chunk: Buffer) => void;
}

/** One block on its way through zlib. */
interface Job {
  block: Buffer;
  output: Promise<Buffer[]>;
}

/**
 * A gzip compressor that deflates several blocks at once on libuv's thread pool, the way
 * pigz does: each block is raw deflate ending in a sync flush, the last one finishes the
 * stream, and one gzip header and trailer wrap them. A single zlib stream compresses about
 * 60 MiB/s, which would make compression the bottleneck of every large snapshot; two
 * blocks in flight roughly double that on a two-core runner.
 *
 * The output is one ordinary gzip member that any gunzip reads. It depends only on the
 * input bytes and the level (block boundaries sit at fixed offsets), never on how many
 * blocks ran in parallel, so reproducible builds stay reproducible.
 *
 * Blocks are filled by copying into a few buffers that are used again and again: a layer
 * of hundreds of MiB then leaves no trail of dead MiB-sized buffers for the garbage
 * collector, which would otherwise hold tens of MB of them at a time.
 */
export class ParallelGzip extends Transform {
  private readonly level: number;
  private readonly concurrency: number;
  private readonly release: ((chunk: Buffer) => void) | undefined;
  private block: Buffer | undefined;
  private filled = 0;
  private readonly spare: Buffer[] = [];
  private dictionary: Buffer | undefined;
  private readonly jobs: Job[] = [];
  private crc = 0;
  private totalBytes = 0;

  constructor(options: ParallelGzipOptions = {}) {
    super();
    this.level = options.level ?? DEFAULT_COMPRESSION_LEVEL.gzip;
    if (!Number.isInteger(this.level) || this.level < 0 || this.level > 9) {
      throw new KilnError('USAGE', `Compression level ${this.level} is out of range for gzip: use a whole number from 0 to 9.`);
    }
    this.concurrency = options.concurrency ?? Math.min(4, Math.max(2, availableParallelism()));
    this.release = options.release;
    this.push(gzipHeader(this.level));
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.crc = crc32(chunk, this.crc);
    this.totalBytes += chunk.length;
    this.fill(chunk).then(() => {
      this.release?.(chunk);
      callback();
    }, callback);
  }

  override _flush(callback: TransformCallback): void {
    this.finish().then(() => callback(), callback);
  }

  /** Copies `chunk` into blocks, handing each full block to zlib. */
  private async fill(chunk: Buffer): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      this.block ??= this.spare.pop() ?? Buffer.allocUnsafe(BLOCK_SIZE);
      const copied = chunk.copy(this.block, this.filled, offset);
      offset += copied;
      this.filled += copied;
      if (this.filled < BLOCK_SIZE) continue;
      this.submit(false);
      // Waiting here is the backpressure: at most `concurrency` blocks are in flight.
      while (this.jobs.length >= this.concurrency) await this.emitOldest();
    }
  }

  private async finish(): Promise<void> {
    this.submit(true);
    while (this.jobs.length > 0) await this.emitOldest();
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(this.crc >>> 0, 0);
    trailer.writeUInt32LE(this.totalBytes % 2 ** 32, 4);
    this.push(trailer);
  }

  private submit(last: boolean): void {
    const block = this.block?.subarray(0, this.filled) ?? Buffer.alloc(0);
    const options: ZlibOptions = {
      level: this.level,
      chunkSize: OUT_CHUNK,
      finishFlush: last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH,
    };
    if (this.dictionary !== undefined) options.dictionary = this.dictionary;
    // A copy, not a view: the block is filled anew once zlib is done with it.
    if (block.length > 0) this.dictionary = Buffer.from(block.subarray(Math.max(0, block.length - WINDOW)));
    const output = deflateBlock(block, options);
    // Failures surface when the job is awaited in order; this only keeps an early failure
    // of a later block from counting as an unhandled rejection meanwhile.
    output.catch(() => undefined);
    this.jobs.push({ block: this.block ?? block, output });
    this.block = undefined;
    this.filled = 0;
  }

  private async emitOldest(): Promise<void> {
    const job = this.jobs.shift()!;
    for (const piece of await job.output) this.push(piece);
    if (job.block.length === BLOCK_SIZE) this.spare.push(job.block);
  }
}

/** Raw deflate of one block, as the pieces zlib produced. */
function deflateBlock(block: Buffer, options: ZlibOptions): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const pieces: Buffer[] = [];
    const deflate = createDeflateRaw(options);
    deflate.on('data', (piece: Buffer) => pieces.push(piece));
    deflate.on('error', reject);
    deflate.on('end', () => resolve(pieces));
    deflate.end(block);
  });
}

/** RFC 1952 header with no name and no time, marked "fastest"/"best" like zlib's own. */
function gzipHeader(level: number): Buffer {
  const extraFlags = level === 9 ? 2 : level < 2 ? 4 : 0;
  return Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, extraFlags, 3]);
}
