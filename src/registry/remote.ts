import { KilnError } from '../util/errors.js';
import { readLimited } from '../util/read-limited.js';
import type { Image } from '../oci/image.js';
import type { Layer } from '../oci/layer.js';
import { imageFromParts, parseIndex, parseManifest } from '../oci/image-builder.js';
import { descriptorMetadata, streamLayer } from '../oci/blob-layer.js';
import { isForeignLayer, isImageIndex } from '../oci/mediatypes.js';
import { formatPlatform, hostPlatform, selectManifest } from '../oci/platform.js';
import type { Descriptor, Platform } from '../oci/types.js';
import type { RegistryClient } from './client.js';
import { formatReference, referenceWithDigest, type Reference } from './reference.js';

/** Image configs are small; a config this large is a malicious or broken registry. */
const MAX_CONFIG_BYTES = 64 * 1024 * 1024;

export interface RemoteImage {
  image: Image;
  /** The reference pinned to the digest of the single-platform manifest that was chosen. */
  resolved: Reference;
  /** The digest the user's reference pointed at: an index's digest when it was an index. */
  topDigest: string;
}

/**
 * Reads an image from a registry: the manifest (an index is resolved to `platform`, by
 * default the host's) and the config now, layer content lazily and verified as it streams.
 */
export async function fetchRemoteImage(client: RegistryClient, ref: Reference, options: { platform?: Platform } = {}): Promise<RemoteImage> {
  const top = await client.getManifest(ref);
  let manifest = top;
  let resolved = referenceWithDigest(ref, top.digest);
  if (isImageIndex(top.mediaType)) {
    const platform = options.platform ?? hostPlatform();
    const { index } = parseIndex(top.raw, top.mediaType, `the index of ${formatReference(ref)}`);
    const descriptor = selectManifest(index, platform, formatReference(ref));
    resolved = referenceWithDigest(ref, descriptor.digest);
    manifest = await client.getManifest(resolved);
    if (isImageIndex(manifest.mediaType)) {
      throw new KilnError('UNSUPPORTED_MEDIA_TYPE', `the ${formatPlatform(platform)} entry of ${formatReference(ref)} is itself an index; kiln expects an image manifest there.`);
    }
  }
  const { manifest: parsed } = parseManifest(manifest.raw, manifest.mediaType, `the manifest of ${formatReference(resolved)}`);
  const configStream = await client.getBlob(ref, parsed.config);
  const rawConfig = await readLimited(configStream, Math.min(parsed.config.size, MAX_CONFIG_BYTES), 'INVALID_CONFIG', `the config of ${formatReference(resolved)}`);
  const image = imageFromParts({
    rawManifest: manifest.raw,
    rawConfig,
    mediaType: manifest.mediaType,
    source: formatReference(resolved),
    layers: (descriptor, diffId) => registryLayer(client, ref, descriptor, diffId),
  });
  return { image, resolved, topDigest: top.digest };
}

/**
 * A layer whose blob is in the repository of `ref`. Its stream and its `writeTo` (a download
 * straight into a file's sink) are both verified by the client as the bytes arrive.
 */
export function registryLayer(client: RegistryClient, ref: Reference, descriptor: Descriptor, diffId: string): Layer {
  return streamLayer({
    ...descriptorMetadata(descriptor, diffId),
    ...(isForeignLayer(descriptor.mediaType) ? {} : { location: { registry: ref.registry, repository: ref.repository } }),
    open: () => client.getBlob(ref, descriptor),
    writeTo: (sink, options) => client.fetchBlob(ref, descriptor, sink, options),
  });
}
