import type { Digest } from './digest.js';
import type { Layer } from './layer.js';
import type { Descriptor, ImageConfig, Index, Manifest } from './types.js';

/**
 * An image: its manifest and config exactly as bytes (digests are over those bytes) plus its
 * layers. Everything here is synchronous; only layer content is fetched lazily.
 */
export interface Image {
  readonly mediaType: string;
  readonly manifest: Manifest;
  readonly rawManifest: Buffer;
  readonly digest: Digest;
  readonly config: ImageConfig;
  readonly rawConfig: Buffer;
  readonly layers: readonly Layer[];
}

/** A multi-platform index and the images it lists that kiln has at hand. */
export interface ImageIndex {
  readonly mediaType: string;
  readonly index: Index;
  readonly rawIndex: Buffer;
  readonly digest: Digest;
  readonly images: readonly { descriptor: Descriptor; image: Image }[];
}

export function imageDescriptor(image: Image): Descriptor {
  return { mediaType: image.mediaType, digest: image.digest, size: image.rawManifest.length };
}
