import { KilnError } from '../util/errors.js';
import type { Image } from '../oci/image.js';
import { imageFromParts, parseIndex, parseManifest } from '../oci/image-builder.js';
import { streamLayer } from '../oci/blob-layer.js';
import type { Layer } from '../oci/layer.js';
import { isForeignLayer, isImageIndex } from '../oci/mediatypes.js';
import { formatPlatform, hostPlatform, selectManifest } from '../oci/platform.js';
import type { Platform } from '../oci/types.js';
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
  const rawConfig = await readAll(configStream, Math.min(parsed.config.size, MAX_CONFIG_BYTES), `the config of ${formatReference(resolved)}`);
  const config = JSON.parse(rawConfig.toString('utf8')) as { rootfs?: { diff_ids?: string[] } };
  const diffIds = config.rootfs?.diff_ids ?? [];
  let diffIndex = 0;
  const layers: Layer[] = parsed.layers.map((descriptor) => {
    const foreign = isForeignLayer(descriptor.mediaType);
    const diffId = diffIds[diffIndex++] ?? '';
    return streamLayer({
      digest: descriptor.digest,
      diffId,
      size: descriptor.size,
      mediaType: descriptor.mediaType,
      ...(descriptor.annotations ? { annotations: descriptor.annotations } : {}),
      ...(descriptor.urls ? { urls: descriptor.urls } : {}),
      location: foreign ? undefined : { registry: ref.registry, repository: ref.repository },
      open: () => client.getBlob(ref, descriptor),
    });
  });
  const image = imageFromParts({ rawManifest: manifest.raw, rawConfig, layers, mediaType: manifest.mediaType, source: formatReference(resolved) });
  return { image, resolved, topDigest: top.digest };
}

async function readAll(stream: NodeJS.ReadableStream, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += (chunk as Buffer).length;
    if (total > limit) throw new KilnError('INVALID_CONFIG', `${what} is larger than its descriptor says; refusing it.`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
