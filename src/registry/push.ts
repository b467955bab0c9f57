import { Readable } from 'node:stream';
import type { Logger } from '../util/log.js';
import { silentLogger } from '../util/log.js';
import { mapLimited } from '../util/limit.js';
import type { Image } from '../oci/image.js';
import type { BlobLocation, Layer } from '../oci/layer.js';
import { isForeignLayer } from '../oci/mediatypes.js';
import type { RegistryClient, UploadResult } from './client.js';
import { formatReference, type Reference } from './reference.js';

export interface PushOptions {
  logger?: Logger;
  /** Layers uploaded at once. */
  concurrency?: number;
  /** Repositories known to hold every blob of this image (an earlier destination): mount from them. */
  knownLocations?: readonly BlobLocation[];
  /** Called after each blob is in place, for progress output. */
  onBlob?: (event: { digest: string; size: number; result: UploadResult }) => void;
}

export interface PushResult {
  reference: Reference;
  digest: string;
  uploadedBytes: number;
  blobs: { digest: string; result: UploadResult }[];
}

/**
 * Pushes an image: every blob is put in place first (existing ones skipped, blobs held by
 * another repository of the same registry mounted, the rest uploaded), and only then the
 * manifest, so a failed push never leaves a tag pointing at missing blobs.
 */
export async function pushImage(client: RegistryClient, image: Image, ref: Reference, options: PushOptions = {}): Promise<PushResult> {
  const logger = options.logger ?? silentLogger();
  const target = client.pushEndpoint(ref);
  const mountSource = (layer: Layer | undefined): string | undefined => {
    const candidates = [...(layer?.location ? [layer.location] : []), ...(options.knownLocations ?? [])];
    const sameRegistry = candidates.find((l) => l.registry === ref.registry && l.repository !== ref.repository);
    return sameRegistry?.repository;
  };
  const pushable = image.layers.filter((layer) => !isForeignLayer(layer.mediaType));
  const blobs = await mapLimited(pushable, options.concurrency ?? 3, async (layer) => {
    const mountFrom = mountSource(layer);
    const result = await client.uploadBlob(
      ref,
      { digest: layer.digest, size: layer.size, open: () => layer.compressed() },
      mountFrom ? { mountFrom } : {},
    );
    logger.debug({ digest: layer.digest, result: result.kind, registry: target.host }, 'layer in place');
    options.onBlob?.({ digest: layer.digest, size: layer.size, result });
    return { digest: layer.digest, result };
  });
  const configDigest = image.manifest.config.digest;
  const configMount = mountSource(undefined);
  const configResult = await client.uploadBlob(
    ref,
    { digest: configDigest, size: image.rawConfig.length, open: async () => Readable.from([image.rawConfig]) },
    configMount ? { mountFrom: configMount } : {},
  );
  blobs.push({ digest: configDigest, result: configResult });
  const digest = await client.putManifest(ref, image.rawManifest, image.mediaType);
  const uploadedBytes = blobs.reduce((sum, b) => sum + (b.result.kind === 'uploaded' ? b.result.bytes : 0), 0);
  logger.debug({ digest, uploadedBytes }, `pushed ${formatReference(ref)}`);
  return { reference: ref, digest, uploadedBytes, blobs };
}
