import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { KilnError, describeError } from '../util/errors.js';
import { pourStream, type BlobSink, type BlobTransferOptions } from './blob-sink.js';
import { decompress } from './compression.js';
import { VerifyingStream, parseDigest, type Digest } from './digest.js';
import type { BlobLocation, Layer, LocalBlob } from './layer.js';
import { layerCompression } from './mediatypes.js';
import { chain } from './streams.js';
import type { Descriptor } from './types.js';

const READ_CHUNK = 1 << 20;

/** What every layer source knows before reading a byte of content. */
export interface LayerMetadata {
  digest: Digest;
  diffId: Digest;
  size: number;
  mediaType: string;
  annotations?: Readonly<Record<string, string>>;
  urls?: readonly string[];
  location?: BlobLocation;
  file?: LocalBlob;
}

export interface FileLayerOptions extends LayerMetadata {
  path: string;
  /** Where the blob starts inside `path` (a layer stored inside a tar archive); default 0. */
  offset?: number;
}

export interface StreamLayerOptions extends LayerMetadata {
  /** Opens the blob exactly as stored (compressed, when the media type says so). */
  open: () => Promise<Readable>;
  /**
   * Check the bytes `open` yields against digest and size. Off by default because sources
   * such as the registry client verify while downloading already.
   */
  verify?: boolean;
  /** The source's own way to hand the blob to a sink, verified; see Layer.writeTo. */
  writeTo?: (sink: BlobSink, options?: BlobTransferOptions) => Promise<void>;
}

/** What a manifest says of a layer (its descriptor), with its diffId from the config. */
export function descriptorMetadata(descriptor: Descriptor, diffId: Digest): LayerMetadata {
  const metadata: LayerMetadata = { digest: descriptor.digest, diffId, size: descriptor.size, mediaType: descriptor.mediaType };
  if (descriptor.annotations) metadata.annotations = descriptor.annotations;
  if (descriptor.urls) metadata.urls = descriptor.urls;
  return metadata;
}

/** Everything a layer says of itself before its content is read. */
export function layerMetadata(layer: Layer): LayerMetadata {
  const metadata: LayerMetadata = { digest: layer.digest, diffId: layer.diffId, size: layer.size, mediaType: layer.mediaType };
  if (layer.annotations) metadata.annotations = layer.annotations;
  if (layer.urls) metadata.urls = layer.urls;
  if (layer.location) metadata.location = layer.location;
  if (layer.file) metadata.file = layer.file;
  return metadata;
}

/**
 * A layer whose blob is a local file (an OCI layout blob, a tar entry). Every read is checked
 * against digest and size: a file on disk can be truncated or edited behind kiln's back, and a
 * consumer must never act on such content.
 */
export function fileLayer(options: FileLayerOptions): Layer {
  const { path, offset = 0 } = options;
  const what = `layer ${options.digest} in ${path}`;
  const openVerified = async (): Promise<Readable> => {
    const handle = await open(path, 'r').catch((err: unknown) => {
      throw new KilnError('IO', `Cannot open ${what}: ${describeError(err)}.`, { cause: err });
    });
    if (options.size === 0) {
      await handle.close();
      return chain(Readable.from([]), new VerifyingStream(options.digest, 0, what));
    }
    const file = handle.createReadStream({ start: offset, end: offset + options.size - 1, highWaterMark: READ_CHUNK });
    return chain(file, new VerifyingStream(options.digest, options.size, what));
  };
  // The stream is verified already: handing it to a sink needs no second hash.
  return makeLayer({ ...options, file: { path, offset } }, openVerified, async (sink, transfer) => pourStream(await openVerified(), sink, undefined, transfer));
}

/** A layer whose blob comes from any "open the blob" function (a registry, a cache). */
export function streamLayer(options: StreamLayerOptions): Layer {
  const { open: openBlob, verify = false } = options;
  const openCompressed = async (): Promise<Readable> => {
    const blob = await openBlob();
    return verify ? chain(blob, new VerifyingStream(options.digest, options.size, `layer ${options.digest}`)) : blob;
  };
  return makeLayer(options, openCompressed, options.writeTo);
}

/** The same layer under another media type: the blob is untouched, only its label changes. */
export function relabelLayer(layer: Layer, mediaType: string): Layer {
  if (layer.mediaType === mediaType) return layer;
  if (layerCompression(layer.mediaType) !== layerCompression(mediaType)) {
    throw new KilnError('UNSUPPORTED_MEDIA_TYPE', `Layer ${layer.digest} cannot be relabelled from ${layer.mediaType} to ${mediaType}: the compression differs, so the blob would have to be rewritten.`);
  }
  const writeTo = layer.writeTo;
  return makeLayer({ ...layerMetadata(layer), mediaType }, () => layer.compressed(), writeTo ? (sink, options) => writeTo.call(layer, sink, options) : undefined);
}

function makeLayer(metadata: LayerMetadata, openCompressed: () => Promise<Readable>, writeTo?: Layer['writeTo']): Layer {
  parseDigest(metadata.digest);
  parseDigest(metadata.diffId);
  if (!Number.isSafeInteger(metadata.size) || metadata.size < 0) {
    throw new KilnError('INVALID_MANIFEST', `Layer ${metadata.digest} declares size ${metadata.size}; a size must be a whole number of bytes.`);
  }
  const compression = layerCompression(metadata.mediaType);
  const layer: Layer = {
    digest: metadata.digest,
    diffId: metadata.diffId,
    size: metadata.size,
    mediaType: metadata.mediaType,
    ...(metadata.urls ? { urls: Object.freeze([...metadata.urls]) } : {}),
    ...(metadata.annotations ? { annotations: Object.freeze({ ...metadata.annotations }) } : {}),
    ...(metadata.location ? { location: Object.freeze({ ...metadata.location }) } : {}),
    ...(metadata.file ? { file: Object.freeze({ ...metadata.file }) } : {}),
    compressed: openCompressed,
    async uncompressed() {
      return chain(await openCompressed(), decompress(compression));
    },
    ...(writeTo ? { writeTo } : {}),
  };
  return Object.freeze(layer);
}
