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
  /**
   * Where a blob will be once an upload already under way elsewhere (the layer cache's) is
   * done: waiting for it and mounting beats uploading the same bytes a second time.
   */
  pendingLocation?: (digest: string) => Promise<BlobLocation | undefined>;
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
  const mountable = (location: BlobLocation | undefined): location is BlobLocation =>
    location !== undefined && location.registry === ref.registry && location.repository !== ref.repository;
  const mountSource = async (layer: Layer | undefined): Promise<string | undefined> => {
    const known = [layer?.location, ...(options.knownLocations ?? [])].find(mountable);
    if (known || !layer || !options.pendingLocation) return known?.repository;
    const pending = await options.pendingLocation(layer.digest);
    return mountable(pending) ? pending.repository : undefined;
  };
  const pushable = image.layers.filter((layer) => !isForeignLayer(layer.mediaType));
  const blobs = await mapLimited(pushable, options.concurrency ?? 3, async (layer) => {
    const mountFrom = await mountSource(layer);
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
  const configMount = await mountSource(undefined);
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
