import { mkdirSync, readFileSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import xxhash from 'xxhash-wasm';
import { decompress } from '../oci/compression.js';
import type { Image } from '../oci/image.js';
import type { Layer } from '../oci/layer.js';
import { layerCompression } from '../oci/mediatypes.js';
import { chain } from '../oci/streams.js';
import { KilnError, describeError } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { LayerApplier, type ApplyContext, type ExtractStats } from './extract-apply.js';
import { capitalise } from './extract-path.js';
import { LayerSpool } from './extract-prefetch.js';
import { TarParser, tarWritable } from './extract-tar.js';
import type { FileIndex } from './file-index.js';
import type { IgnoreList } from './ignore.js';

export type { ExtractStats } from './extract-apply.js';

const READ_AHEAD = 16 << 20;

export interface ExtractOptions {
  /** The directory that is the image's root filesystem (`/` in kaniko's model); created if missing. */
  rootDir: string;
  /** Paths never written, replaced or deleted, whatever a layer says. */
  ignore: IgnoreList;
  /**
   * When given, every path written gets a record (regular files with the xxh64 of their
   * content, computed as it streams to disk) and every path removed loses its record.
   */
  index?: FileIndex;
  logger?: Logger;
  /**
   * extractImage: where each layer's blob downloads to while it is extracted (an unlinked
   * temporary file); default the system's temp directory. Without a usable directory, layers
   * are extracted straight from their streams, one after the other.
   */
  spoolDir?: string;
  /** extractLayer given a tar stream: names it in messages (default "the layer"). */
  name?: string;
  /**
   * Whether `.wh.` entries are whiteouts and opaque markers (default true, as in image
   * layers). ADD of a local archive passes false: Docker and kaniko extract such entries
   * there as ordinary files.
   */
  whiteouts?: boolean;
}

/**
 * Applies one layer to `options.rootDir`: a `Layer` (decompressed here) or an uncompressed
 * tar stream. Whiteouts and opaque directories apply to what is already in the root.
 */
export async function extractLayer(layer: Layer | Readable, options: ExtractOptions): Promise<ExtractStats> {
  const ctx = await createContext(options);
  if (isLayer(layer)) {
    await applyTar(await openLayer(layer), `layer ${layer.digest}`, ctx);
  } else {
    await applyTar(layer, options.name ?? 'the layer', ctx);
  }
  return ctx.stats;
}

/**
 * Applies every layer of `image` in order. Each layer's blob downloads into a temporary file
 * (the registry's fastest way to disk) and is extracted from there as it arrives; while one
 * layer is extracted the next one is already downloading (one layer ahead, never more), so
 * the pull's network time overlaps the extraction's disk time. A blob that is a local file
 * already is read where it is.
 */
export async function extractImage(image: Image, options: ExtractOptions): Promise<ExtractStats> {
  const ctx = await createContext(options);
  const spoolDir = options.spoolDir ?? tmpdir();
  const layers = image.layers;
  let ahead: LayerSpool | undefined = layers.length > 0 ? startSpool(layers[0]!, spoolDir, ctx) : undefined;
  try {
    for (let i = 0; i < layers.length; i++) {
      const layer = layers[i]!;
      const spooled = ahead;
      ahead = undefined;
      const tar = await layerTar(layer, spooled);
      if (i + 1 < layers.length) ahead = startSpool(layers[i + 1]!, spoolDir, ctx);
      await applyTar(tar, `layer ${layer.digest}`, ctx);
    }
  } finally {
    ahead?.abandon();
  }
  return ctx.stats;
}

function startSpool(layer: Layer, spoolDir: string, ctx: ApplyContext): LayerSpool | undefined {
  // A blob on disk already is read where it is: a copy would only add a write.
  if (layer.file !== undefined) return undefined;
  const spool = LayerSpool.start(layer, spoolDir);
  if (spool === undefined) ctx.logger.debug({ spoolDir }, 'no temporary file for a layer; it is extracted from its stream, and layers are fetched one after the other');
  return spool;
}

/** The layer's tar stream: decompressed from its spool file, or from its own stream without one. */
async function layerTar(layer: Layer, spool: LayerSpool | undefined): Promise<Readable> {
  return spool !== undefined ? chain(spool.open(), decompress(layerCompression(layer.mediaType))) : openLayer(layer);
}

function isLayer(value: Layer | Readable): value is Layer {
  return typeof (value as Layer).uncompressed === 'function' && typeof (value as Layer).digest === 'string';
}

async function createContext(options: ExtractOptions): Promise<ApplyContext> {
  let root = resolve(options.rootDir);
  try {
    mkdirSync(root, { recursive: true });
    // The root's own path may pass through symlinks; everything below it never does.
    root = realpathSync(root);
  } catch (err) {
    throw new KilnError('IO', `Cannot create the root directory ${root}: ${describeError(err)}.`, { cause: err });
  }
  return {
    root,
    ignore: options.ignore,
    index: options.index,
    logger: options.logger ?? silentLogger(),
    stats: { layers: 0, entries: 0, bytes: 0, skippedIgnored: 0, devicesSkipped: 0 },
    hasher: options.index !== undefined ? await xxhash() : undefined,
    whiteouts: options.whiteouts ?? true,
    ownership: { chown: true },
    umask: currentUmask(),
    euid: process.geteuid?.() ?? 0,
    egid: process.getegid?.() ?? 0,
  };
}

/** The umask, from /proc (reading it through process.umask() is deprecated); undefined if unknown. */
function currentUmask(): number | undefined {
  try {
    const match = /^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return match ? parseInt(match[1]!, 8) : undefined;
  } catch {
    return undefined;
  }
}

async function openLayer(layer: Layer): Promise<Readable> {
  try {
    return await layer.uncompressed();
  } catch (err) {
    if (err instanceof KilnError) throw err;
    throw new KilnError('IO', `Cannot read layer ${layer.digest}: ${describeError(err)}.`, { cause: err });
  }
}

async function applyTar(tar: Readable, what: string, ctx: ApplyContext): Promise<void> {
  const started = performance.now();
  const entriesBefore = ctx.stats.entries;
  const applier = new LayerApplier(ctx, what);
  try {
    // A bounded read-ahead, so downloading and decompressing go on while entries are written.
    await pipeline(tar, new PassThrough({ highWaterMark: READ_AHEAD }), tarWritable(new TarParser(applier, what)));
    applier.finish();
  } catch (err) {
    applier.abort();
    if (err instanceof KilnError) throw err;
    const code = (err as { code?: unknown }).code;
    // zlib and zstd report damaged compressed data with codes like Z_DATA_ERROR.
    if (typeof code === 'string' && /^Z_|ZSTD/.test(code)) {
      throw new KilnError('INVALID_LAYER', `${capitalise(what)} cannot be decompressed (${describeError(err)}); the blob is damaged.`, { cause: err });
    }
    throw new KilnError('IO', `Extracting ${what} failed: ${describeError(err)}.`, { cause: err });
  }
  ctx.stats.layers++;
  ctx.logger.debug({ layer: what, entries: ctx.stats.entries - entriesBefore, ms: Math.round(performance.now() - started) }, 'layer extracted');
}
