/**
 * Stores one image in the base-image cache: its blobs first, then its index.json entry, so a
 * build that finds the entry always finds every blob it names.
 */
import { Readable } from 'node:stream';
import type { Image } from '../oci/image.js';
import { isForeignLayer } from '../oci/mediatypes.js';
import type { Descriptor, Index } from '../oci/types.js';
import { mapLimited } from '../util/limit.js';
import { entryDescriptor, sameSlot } from './base-entry.js';
import { storeBlob } from './warm-blob.js';
import { ensureCacheLayout, updateCacheIndex } from './warm-index.js';

// Layers of one image downloaded at once; the registry client bounds requests overall.
const PARALLEL_LAYERS = 4;

export interface StoreImageOptions {
  /** The normalised reference the entry is named after. */
  refName: string;
  /** What the reference resolved to at the registry (an index's digest for a multi-platform image). */
  resolvedDigest: string;
  /** Download every blob again, even those already present (--force). */
  replace: boolean;
  warmedAt: Date;
}

/** Returns the number of blob bytes written. */
export async function storeImage(dir: string, image: Image, options: StoreImageOptions): Promise<number> {
  await ensureCacheLayout(dir);
  const blobOptions = { replace: options.replace };
  // Non-distributable layers are fetched from their URLs by whoever runs the image.
  const layers = image.layers.filter((layer) => !isForeignLayer(layer.mediaType));
  const layerBytes = await mapLimited(layers, PARALLEL_LAYERS, (layer) => storeBlob(dir, layer.digest, layer.size, layer, blobOptions));
  const configBytes = await storeBlob(dir, image.manifest.config.digest, image.rawConfig.length, bytes(image.rawConfig), blobOptions);
  const manifestBytes = await storeBlob(dir, image.digest, image.rawManifest.length, bytes(image.rawManifest), blobOptions);
  await recordEntry(dir, entryDescriptor(image, options.refName, options.resolvedDigest, options.warmedAt));
  return layerBytes.reduce((sum, n) => sum + n, configBytes + manifestBytes);
}

/** Adds `entry` to index.json, replacing the entry of the same ref name and platform. */
export async function recordEntry(dir: string, entry: Descriptor): Promise<void> {
  await ensureCacheLayout(dir);
  await updateCacheIndex(dir, (index): Index => ({
    ...index,
    manifests: [...index.manifests.filter((old) => !sameSlot(old, entry)), entry],
  }));
}

function bytes(content: Buffer): () => Promise<Readable> {
  return async () => Readable.from([content]);
}
