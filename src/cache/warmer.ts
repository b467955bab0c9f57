/**
 * kaniko's warmer for kiln: fetches base images into the `--cache-dir` layout that
 * `kiln build` reads, so builds on a node start without pulling them.
 */
import type { Digest } from '../oci/digest.js';
import type { Image } from '../oci/image.js';
import { hostPlatform } from '../oci/platform.js';
import type { Platform } from '../oci/types.js';
import type { RegistryClient } from '../registry/client.js';
import { fetchRemoteImage } from '../registry/remote.js';
import { formatReference, referenceWithDigest, type Reference } from '../registry/reference.js';
import { KilnError, isKilnError } from '../util/errors.js';
import { formatBytes } from '../util/format.js';
import type { Logger } from '../util/log.js';
import { retryOperation } from '../util/retry.js';
import { entryDescriptor } from './base-entry.js';
import { openBaseImageCache, type BaseImageCache } from './base-images.js';
import { removeAbandonedTemporaries } from './warm-blob.js';
import { ensureCacheLayout } from './warm-index.js';
import { recordEntry, storeImage } from './warm-store.js';

export interface WarmTarget {
  ref: Reference;
  /** The platform this image is wanted for (a FROM --platform); else WarmOptions.platform. */
  platform?: Platform;
}

export interface WarmOptions {
  cacheDir: string;
  client: RegistryClient;
  logger: Logger;
  /**
   * How long a warmed tag is trusted: within it the registry is not asked again. After it,
   * the tag is resolved again and only blobs the cache lacks are downloaded.
   */
  ttlMs: number;
  /** Download every image and blob again, cached or not (--force). */
  force?: boolean;
  /** --custom-platform: the image to pick from a multi-platform index; the host's by default. */
  platform?: Platform;
  /** --image-download-retry: extra attempts for an image whose download failed. */
  retries?: number;
  /** Called as each image is done, so progress shows before the last one finishes. */
  onResult?: (result: WarmResult) => void;
  /** The clock, in milliseconds since the epoch. */
  now?: () => number;
}

export interface WarmResult {
  ref: Reference;
  platform: Platform;
  /** `warmed`: downloaded now; `cached`: the cache already held it, nothing was downloaded. */
  status: 'warmed' | 'cached';
  /** The single-platform manifest now in the cache. */
  digest: Digest;
  downloadedBytes: number;
}

/**
 * Warms each target in turn and stops at the first that fails (as kaniko does), with a
 * KilnError naming the image.
 */
export async function warmImages(targets: readonly WarmTarget[], options: WarmOptions): Promise<WarmResult[]> {
  const now = options.now ?? Date.now;
  // A --cache-dir kiln cannot write is reported before any download, not after the first one.
  await ensureCacheLayout(options.cacheDir);
  await removeAbandonedTemporaries(options.cacheDir, now());
  const results: WarmResult[] = [];
  for (const target of targets) {
    const platform = target.platform ?? options.platform ?? hostPlatform();
    const result = await warmOne(target.ref, platform, options, now).catch((err: unknown) => {
      throw cannotWarm(target.ref, err);
    });
    results.push(result);
    options.onResult?.(result);
  }
  return results;
}

async function warmOne(ref: Reference, platform: Platform, options: WarmOptions, now: () => number): Promise<WarmResult> {
  const name = formatReference(ref);
  if (!options.force) {
    const cached = await findCached(ref, platform, options, now);
    if (cached) return { ref, platform, status: 'cached', digest: cached.digest, downloadedBytes: 0 };
  }
  return retryOperation(options.retries ?? 0, `warming ${name}`, options.logger, async () => {
    const remote = await fetchRemoteImage(options.client, ref, { platform });
    const downloadedBytes = await storeImage(options.cacheDir, remote.image, {
      refName: name,
      resolvedDigest: remote.topDigest,
      replace: options.force === true,
      warmedAt: new Date(now()),
    });
    options.logger.info(`warmed ${name} (${remote.image.digest}): ${formatBytes(downloadedBytes)} downloaded`);
    return { ref, platform, status: 'warmed' as const, digest: remote.image.digest, downloadedBytes };
  });
}

/**
 * The cached image when nothing needs downloading: a digest reference already stored; a tag
 * warmed within the TTL; or a tag whose current digest (one HEAD request) is already stored,
 * in which case its entry is stamped with the new time.
 */
async function findCached(ref: Reference, platform: Platform, options: WarmOptions, now: () => number): Promise<Image | undefined> {
  const cache = await openBaseImageCache(options.cacheDir, { ttlMs: options.ttlMs, logger: options.logger, now });
  if (!cache) return undefined;
  const name = formatReference(ref);
  const found = await cache.find(ref, platform);
  if (found) {
    // A digest found under another name (a tag that resolved to it) gets an entry of its own.
    if (ref.digest !== undefined) await recordEntry(options.cacheDir, entryDescriptor(found, name, ref.digest, new Date(now())));
    return found;
  }
  if (ref.digest !== undefined) return undefined;
  return findByCurrentDigest(ref, platform, cache, options, now);
}

async function findByCurrentDigest(ref: Reference, platform: Platform, cache: BaseImageCache, options: WarmOptions, now: () => number): Promise<Image | undefined> {
  // A registry that cannot answer HEAD (404 on HEAD only, odd proxies) just means a full fetch.
  const head = await options.client.headManifest(ref).catch((err: unknown) => {
    options.logger.debug(`HEAD of ${formatReference(ref)} failed (${(err as Error).message}); fetching it instead`);
    return undefined;
  });
  if (!head) return undefined;
  const found = await cache.find(referenceWithDigest({ registry: ref.registry, repository: ref.repository }, head.digest), platform);
  if (found) await recordEntry(options.cacheDir, entryDescriptor(found, formatReference(ref), head.digest, new Date(now())));
  return found;
}

function cannotWarm(ref: Reference, err: unknown): unknown {
  if (!isKilnError(err)) return err;
  // The cause becomes the second half of one sentence: "cannot warm X: cannot reach …".
  const reason = err.message.replace(/\.$/, '').replace(/^[A-Z](?=[a-z])/, (letter) => letter.toLowerCase());
  const advice = err.code === 'REGISTRY_NOT_FOUND' ? '; check the image name and tag' : '';
  return new KilnError(err.code, `cannot warm ${formatReference(ref)}: ${reason}${advice}.`, { cause: err });
}
