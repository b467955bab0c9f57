import { sha256 } from './digest.js';
import { imageDescriptor, type Image, type ImageIndex } from './image.js';
import type { ManifestFlavor } from './mediatypes.js';
import { MediaType } from './mediatypes.js';
import { platformOfConfig } from './platform.js';
import type { Descriptor, Index, Platform } from './types.js';

export interface IndexEntry {
  image: Image;
  /** Defaults to the platform the image's config declares. */
  platform?: Platform;
}

/** A multi-platform index over images kiln has at hand (an OCI index or a Docker manifest list). */
export function createIndex(entries: readonly IndexEntry[], flavor: ManifestFlavor, annotations?: Readonly<Record<string, string>>): ImageIndex {
  const mediaType = flavor === 'docker' ? MediaType.dockerManifestList : MediaType.ociIndex;
  const images = entries.map(({ image, platform }) => {
    const descriptor: Descriptor = { ...imageDescriptor(image), platform: { ...(platform ?? platformOfConfig(image.config)) } };
    return { descriptor, image };
  });
  const index: Index = { schemaVersion: 2, mediaType, manifests: images.map(({ descriptor }) => descriptor) };
  if (annotations && Object.keys(annotations).length > 0) index.annotations = { ...annotations };
  const rawIndex = Buffer.from(JSON.stringify(index));
  return Object.freeze({ mediaType, index: structuredClone(index), rawIndex, digest: sha256(rawIndex), images: Object.freeze(images) });
}
