import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import xxhash from 'xxhash-wasm';
import { fileLayer } from '../oci/blob-layer.js';
import { compress } from '../oci/compression.js';
import { DigestingStream, parseDigest } from '../oci/digest.js';
import type { Layer } from '../oci/layer.js';
import { layerMediaType, type Compression, type ManifestFlavor } from '../oci/mediatypes.js';
import { KilnError, describeError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import type { ChangeSet, FileIndex } from './file-index.js';
import { sharedFileReaders } from './file-readers.js';
import { ChunkPool } from './tar-buffer.js';
import { ParallelGzip } from './tar-gzip.js';
import { planLayer } from './tar-plan.js';
import { newTarWriteStats, tarChunks } from './tar-writer.js';

export interface LayerWriteInput {
  /** The directory that is `/` of the image (`/` itself under isolation `none`). */
  rootDir: string;
  changes: ChangeSet;
  /**
   * The snapshotter's index, as the scan that produced `changes` left it: the metadata of
   * changed files, symlinks and devices is taken from it rather than read from disk again
   * (content always comes from disk). Without it every path is looked at. The caller
   * updates its index from `contentHashes`.
   */
  index?: FileIndex;
}

export interface LayerWriteOptions {
  compression: Compression;
  /**
   * Default: DEFAULT_COMPRESSION_LEVEL from src/oci/compression.ts — 1 for gzip and zstd,
   * which is also what kaniko writes when --compression-level is not given.
   */
  level?: number;
  /** All times 0 (1970-01-01): the same tree and change set give the same digest. */
  reproducible?: boolean;
  flavor: ManifestFlavor;
  /** Where the blob is written, as `<digest hex>.layer`. Created when missing. */
  tmpDir: string;
  logger?: Logger;
}

export type LayerWriteResult =
  | { kind: 'empty' }
  | {
      kind: 'layer';
      layer: Layer;
      path: string;
      /** Tar entries, whiteouts included. */
      entries: number;
      /** Bytes of the uncompressed tar stream. */
      uncompressedSize: number;
      /** xxh64 (16 lowercase hex digits) of every regular file written, by image path. */
      contentHashes: Map<string, string>;
    };

// Chunks in flight between the tar producer and the compressor (~1 MiB each).
const READ_AHEAD_CHUNKS = 4;

/** Layers with fewer entries are read on the writing thread: reader threads would not pay for their start. */
const READER_THREADS_FROM = 1024;

/**
 * Writes the layer for one snapshot: the changed paths with their parent directories and a
 * whiteout per deleted path, as a tar stream that is hashed (diffId), compressed and hashed
 * again (digest) in a single pass into a file under `tmpDir`. Nothing is held in memory but
 * a few MiB of buffers. A change set with nothing in it, or whose paths all vanished, gives
 * `{ kind: 'empty' }` and no file.
 */
export async function writeLayer(input: LayerWriteInput, options: LayerWriteOptions): Promise<LayerWriteResult> {
  const { changes } = input;
  if (changes.changed.length === 0 && changes.deleted.length === 0) return { kind: 'empty' };
  const logger = options.logger;

  // Image paths start with `/`, so the root is joined by plain concatenation.
  const root = input.rootDir.replace(/\/+$/, '');
  const plan = await planLayer(root, changes, input.index);
  for (const { path, reason } of plan.skipped) {
    if (reason === 'socket') logger?.info({ path }, 'Ignoring socket, not adding it to the layer');
    else logger?.debug({ path, reason }, 'Path left out of the layer');
  }
  if (plan.entries.length === 0) return { kind: 'empty' };

  const mediaType = layerMediaType(options.flavor, options.compression);
  await mkdir(options.tmpDir, { recursive: true }).catch((err: unknown) => {
    throw new KilnError('IO', `Cannot create the layer directory ${options.tmpDir}: ${describeError(err)}.`, { cause: err });
  });
  const tmpPath = join(options.tmpDir, `.layer-${randomBytes(8).toString('hex')}.tmp`);
  const stats = newTarWriteStats();
  const diff = new DigestingStream();
  const blob = new DigestingStream();
  const started = Date.now();
  try {
    // The gzip compressor copies what it is given, so the tar chunks can go round again;
    // other compressors keep theirs for a while, and get fresh ones.
    const chunks = options.compression === 'gzip' ? new ChunkPool() : undefined;
    const readers = plan.entries.length >= READER_THREADS_FROM ? sharedFileReaders() : undefined;
    const writeOptions = { rootDir: root, index: input.index, chunks, reproducible: options.reproducible ?? false, xxhash: await xxhash(), readers };
    const tar = Readable.from(tarChunks(plan.entries, writeOptions, stats), {
      objectMode: true,
      highWaterMark: READ_AHEAD_CHUNKS,
    });
    const compressor = chunks !== undefined ? new ParallelGzip({ level: options.level, release: (chunk) => chunks.give(chunk) }) : compress(options.compression, options.level);
    await pipeline(tar, diff, compressor, blob, createWriteStream(tmpPath));
  } catch (err) {
    await rm(tmpPath, { force: true });
    if (err instanceof KilnError) throw err;
    throw new KilnError('IO', `Cannot write the layer to ${options.tmpDir}: ${describeError(err)}.`, { cause: err });
  }
  for (const path of stats.vanished) logger?.debug({ path }, 'Path vanished before it could be written to the layer');
  if (stats.entries === 0) {
    await rm(tmpPath, { force: true });
    return { kind: 'empty' };
  }

  const path = join(options.tmpDir, `${parseDigest(blob.digest).hex}.layer`);
  await rename(tmpPath, path).catch(async (err: unknown) => {
    await rm(tmpPath, { force: true });
    throw new KilnError('IO', `Cannot move the layer into place at ${path}: ${describeError(err)}.`, { cause: err });
  });
  logger?.debug({ digest: blob.digest, entries: stats.entries, uncompressed: diff.size, size: blob.size, ms: Date.now() - started }, 'Layer written');
  return {
    kind: 'layer',
    layer: fileLayer({ path, digest: blob.digest, diffId: diff.digest, size: blob.size, mediaType }),
    path,
    entries: stats.entries,
    uncompressedSize: diff.size,
    contentHashes: stats.contentHashes,
  };
}
