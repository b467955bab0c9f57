/**
 * The base-image cache that `kiln warm` fills and `kiln build --cache-dir` reads: one OCI image
 * layout (see base-entry.ts for its entries). Looking an image up never touches the network.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Image } from '../oci/image.js';
import { blobPath, layoutImage, readLayout } from '../oci/layout.js';
import { isForeignLayer } from '../oci/mediatypes.js';
import { formatPlatform } from '../oci/platform.js';
import type { Platform } from '../oci/types.js';
import { formatReference, type Reference } from '../registry/reference.js';
import { describeError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { readEntry, servesPlatform, staleReason, type BaseImageEntry } from './base-entry.js';

export interface BaseImageCacheOptions {
  /** How long a warmed tag is trusted (--cache-ttl). Digest references never expire. */
  ttlMs: number;
  logger: Logger;
  /** The clock, in milliseconds since the epoch. */
  now?: () => number;
}

export interface BaseImageCache {
  readonly dir: string;
  /**
   * The cached image for `ref` on `platform`, or undefined on a miss. A reference with a digest
   * is found whatever its age, since its content cannot change; a tag only when it was warmed
   * within the TTL. The image's layers read the layout's files (verified on every read) and
   * name no registry location. A damaged entry is a miss with a warning, never an error.
   */
  find(ref: Reference, platform: Platform): Promise<Image | undefined>;
}

/**
 * Opens the cache at `dir`; undefined when `dir` holds no OCI layout (nothing was warmed
 * there) or one kiln cannot read, which is logged.
 */
export async function openBaseImageCache(dir: string, options: BaseImageCacheOptions): Promise<BaseImageCache | undefined> {
  const { logger } = options;
  // Either file missing means nothing was warmed there yet (a first warmer may be writing them).
  for (const file of ['oci-layout', 'index.json']) {
    if (!(await stat(join(dir, file)).catch(() => undefined))) {
      logger.debug(`the cache directory ${dir} has no ${file}; no base image is cached there`);
      return undefined;
    }
  }
  try {
    await readLayout(dir);
  } catch (err) {
    logger.warn(`ignoring the base-image cache ${dir}: ${describeError(err)}`);
    return undefined;
  }
  return new LayoutBaseImageCache(dir, options);
}

class LayoutBaseImageCache implements BaseImageCache {
  private readonly now: () => number;

  constructor(
    readonly dir: string,
    private readonly options: BaseImageCacheOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  async find(ref: Reference, platform: Platform): Promise<Image | undefined> {
    const name = formatReference(ref);
    const entries = await this.entries();
    if (!entries) return undefined;
    const candidates = ref.digest !== undefined ? entriesForDigest(entries, ref.digest, platform) : this.entriesForTag(entries, name, platform);
    for (const entry of candidates) {
      const image = await this.load(entry, platform, name);
      if (image) {
        this.options.logger.debug(`${name} (${formatPlatform(platform)}) is cached in ${this.dir} as ${image.digest}`);
        return image;
      }
    }
    return undefined;
  }

  // Read on every look-up: a warmer may update the layout while a build runs.
  private async entries(): Promise<BaseImageEntry[] | undefined> {
    try {
      return (await readLayout(this.dir)).manifests.map(readEntry);
    } catch (err) {
      this.options.logger.warn(`ignoring the base-image cache ${this.dir}: ${describeError(err)}`);
      return undefined;
    }
  }

  private entriesForTag(entries: readonly BaseImageEntry[], name: string, platform: Platform): BaseImageEntry[] {
    const now = this.now();
    const fresh: BaseImageEntry[] = [];
    for (const entry of entries) {
      if (entry.refName !== name || !servesPlatform(entry, platform)) continue;
      const stale = staleReason(entry, this.options.ttlMs, now);
      if (stale) this.options.logger.debug(`${name} in the base-image cache ${this.dir} is not used: ${stale}`);
      else fresh.push(entry);
    }
    return fresh.sort((a, b) => b.warmedAt! - a.warmedAt!);
  }

  private async load(entry: BaseImageEntry, platform: Platform, name: string): Promise<Image | undefined> {
    try {
      const image = await layoutImage(this.dir, {
        digest: entry.descriptor.digest,
        ...(entry.refName !== undefined ? { refName: entry.refName } : {}),
        platform,
      });
      const missing = await missingLayer(this.dir, image);
      if (missing) {
        this.options.logger.warn(`the base-image cache ${this.dir} lacks layer ${missing} of ${name}; pulling it instead`);
        return undefined;
      }
      return image;
    } catch (err) {
      this.options.logger.warn(`the base-image cache ${this.dir} has a damaged entry for ${name}: ${describeError(err)}`);
      return undefined;
    }
  }
}

/**
 * Entries holding the image a digest names: the manifest itself (for any platform, since the
 * user pinned it), or the `platform` image of an index warmed under that digest.
 */
function entriesForDigest(entries: readonly BaseImageEntry[], digest: string, platform: Platform): BaseImageEntry[] {
  const manifests = entries.filter((entry) => entry.descriptor.digest === digest);
  const fromIndex = entries.filter((entry) => entry.resolvedDigest === digest && entry.descriptor.digest !== digest && servesPlatform(entry, platform));
  return [...manifests, ...fromIndex];
}

/** A layer whose blob file is absent or of the wrong size; checked up front so a build never fails half-way through extraction. */
async function missingLayer(dir: string, image: Image): Promise<string | undefined> {
  for (const layer of image.layers) {
    if (isForeignLayer(layer.mediaType)) continue;
    const file = await stat(blobPath(dir, layer.digest)).catch(() => undefined);
    if (!file?.isFile() || file.size !== layer.size) return layer.digest;
  }
  return undefined;
}
