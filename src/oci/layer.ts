import type { Readable } from 'node:stream';
import type { BlobSink, BlobTransferOptions } from './blob-sink.js';
import type { Digest } from './digest.js';
import type { Descriptor } from './types.js';

/** Where a blob already lives, so a push to the same registry can mount it instead of uploading. */
export interface BlobLocation {
  /** Registry host as used for requests, e.g. `127.0.0.1:5000` or `index.docker.io`. */
  registry: string;
  repository: string;
}

/** A blob stored in a local file, from `offset` on. */
export interface LocalBlob {
  path: string;
  offset: number;
}

/**
 * One layer of an image. Metadata is synchronous; content is only ever streamed.
 * `compressed()` yields the blob exactly as stored (its bytes hash to `digest`),
 * `uncompressed()` the tar stream (hashing to `diffId`).
 */
export interface Layer {
  readonly digest: Digest;
  readonly diffId: Digest;
  readonly size: number;
  readonly mediaType: string;
  /** Foreign layers: where the blob can be fetched instead of the registry. */
  readonly urls?: readonly string[];
  readonly annotations?: Readonly<Record<string, string>>;
  readonly location?: BlobLocation;
  /** Set when the blob is a local file already (an OCI layout, a layer kiln wrote): no download to wait for. */
  readonly file?: LocalBlob;
  compressed(): Promise<Readable>;
  uncompressed(): Promise<Readable>;
  /**
   * Hands the blob as stored to `sink`, for a source with a faster way to a file than its
   * stream (a registry download into reused memory). Resolves only once the sink has every
   * byte and digest and size matched: nothing the sink wrote is to be trusted before that.
   * Optional: `writeLayerTo` (layer-blob.ts) falls back to the stream.
   */
  writeTo?(sink: BlobSink, options?: BlobTransferOptions): Promise<void>;
}

export function layerDescriptor(layer: Layer): Descriptor {
  const descriptor: Descriptor = { mediaType: layer.mediaType, digest: layer.digest, size: layer.size };
  if (layer.urls && layer.urls.length > 0) descriptor.urls = [...layer.urls];
  if (layer.annotations) descriptor.annotations = { ...layer.annotations };
  return descriptor;
}
