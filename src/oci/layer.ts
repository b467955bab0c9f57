import type { Readable } from 'node:stream';
import type { Digest } from './digest.js';
import type { Descriptor } from './types.js';

/** Where a blob already lives, so a push to the same registry can mount it instead of uploading. */
export interface BlobLocation {
  /** Registry host as used for requests, e.g. `127.0.0.1:5000` or `index.docker.io`. */
  registry: string;
  repository: string;
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
  compressed(): Promise<Readable>;
  uncompressed(): Promise<Readable>;
}

export function layerDescriptor(layer: Layer): Descriptor {
  const descriptor: Descriptor = { mediaType: layer.mediaType, digest: layer.digest, size: layer.size };
  if (layer.urls && layer.urls.length > 0) descriptor.urls = [...layer.urls];
  if (layer.annotations) descriptor.annotations = { ...layer.annotations };
  return descriptor;
}
