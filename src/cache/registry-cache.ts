import { Readable } from 'node:stream';
import { streamLayer } from '../oci/blob-layer.js';
import type { BlobLocation, Layer } from '../oci/layer.js';
import { MediaType } from '../oci/mediatypes.js';
import type { RegistryClient } from '../registry/client.js';
import { referenceWithTag, repositoryName, type Reference } from '../registry/reference.js';
import { describeError, isKilnError } from '../util/errors.js';
import { mapLimited } from '../util/limit.js';
import type { Logger } from '../util/log.js';
import { decodeEntry, encodeEntry, identityTag, keyTag } from './entry.js';
import { NOT_CACHED, NO_EARLIER_BUILD, explainAgainst, oneLine, probeResultOf, unreachable, unreadableEntry } from './lookup.js';
import { BackgroundWrites } from './background-writes.js';
import type { CachedResult, LayerCache, ProbeResult, StepKey } from './types.js';

/** Manifest reads in flight for one probe; the client's own limit applies on top. */
const PROBE_CONCURRENCY = 16;

/** Errors that say the entry itself is bad, not that the registry could not be asked. */
const ENTRY_ERRORS = new Set(['INVALID_MANIFEST', 'UNSUPPORTED_MEDIA_TYPE', 'DIGEST_MISMATCH', 'SIZE_MISMATCH']);

export interface RegistryLayerCacheOptions {
  client: RegistryClient;
  /** The cache repository; a tag or digest in it is ignored. */
  repo: Reference;
  ttlMs: number;
  /** False for --no-push-cache: entries are read but never written. */
  push: boolean;
  logger: Logger;
  /** The clock entries are dated and judged by. */
  now?: () => Date;
}

type UploadOutcome = { ok: true } | { ok: false; error: unknown };

/**
 * The layer cache in a registry repository (kaniko's --cache-repo). Each entry is a manifest
 * tagged with its key's hex (see entry.ts), so one manifest GET answers a probe; the layer
 * blob is only fetched if the build needs its content.
 */
export class RegistryLayerCache implements LayerCache {
  readonly description: string;
  private readonly client: RegistryClient;
  private readonly repo: Reference;
  private readonly location: BlobLocation;
  private readonly ttlMs: number;
  private readonly push: boolean;
  private readonly logger: Logger;
  private readonly now: () => Date;
  private readonly writes: BackgroundWrites;
  /** Layer blobs this cache has started uploading, by digest. */
  private readonly uploads = new Map<string, Promise<UploadOutcome>>();

  constructor(options: RegistryLayerCacheOptions) {
    this.client = options.client;
    this.repo = { registry: options.repo.registry, repository: options.repo.repository };
    this.location = { registry: this.repo.registry, repository: this.repo.repository };
    this.description = repositoryName(this.repo);
    this.writes = new BackgroundWrites(options.logger, this.description);
    this.ttlMs = options.ttlMs;
    this.push = options.push;
    this.logger = options.logger;
    this.now = options.now ?? (() => new Date());
  }

  async probe(keys: readonly StepKey[]): Promise<ProbeResult[]> {
    const now = this.now();
    let failure: unknown;
    let unanswered = 0;
    const results = await mapLimited(keys, PROBE_CONCURRENCY, async (key): Promise<ProbeResult> => {
      // Once the cache failed to answer, the keys still waiting are not sent: each would
      // only wait for the same failure.
      if (failure !== undefined) {
        unanswered++;
        return unreachable(failure);
      }
      let fetched;
      try {
        fetched = await this.client.getManifest(referenceWithTag(this.repo, keyTag(key.digest)));
      } catch (err) {
        if (isKilnError(err, 'REGISTRY_NOT_FOUND')) return { kind: 'miss', reason: NOT_CACHED };
        if (isKilnError(err) && ENTRY_ERRORS.has(err.code)) return unreadableEntry(err);
        failure ??= err;
        unanswered++;
        return unreachable(err);
      }
      try {
        const entry = decodeEntry(fetched.raw, fetched.mediaType, `cache entry ${keyTag(key.digest)} of ${this.description}`);
        return probeResultOf(entry, key, this.ttlMs, now, (descriptor, diffId) => this.cachedLayer(descriptor, diffId));
      } catch (err) {
        return unreadableEntry(err);
      }
    });
    if (failure !== undefined) {
      this.logger.warn(`the layer cache ${this.description} could not be read, so ${unanswered} of ${keys.length} step(s) count as misses: ${oneLine(describeError(failure))}`);
    }
    return results;
  }

  put(key: StepKey, result: CachedResult): void {
    if (this.push) this.writes.start(key, () => this.store(key, result));
  }

  async explainMiss(key: StepKey): Promise<string> {
    try {
      const tag = identityTag(key.identity);
      const fetched = await this.client.getManifest(referenceWithTag(this.repo, tag));
      return explainAgainst(decodeEntry(fetched.raw, fetched.mediaType, `cache entry ${tag} of ${this.description}`), key);
    } catch {
      return NO_EARLIER_BUILD;
    }
  }

  async blobLocation(digest: string): Promise<BlobLocation | undefined> {
    const upload = this.uploads.get(digest);
    if (!upload) return undefined;
    return (await upload).ok ? { ...this.location } : undefined;
  }

  async settle(): Promise<void> {
    await this.writes.settle();
  }

  private cachedLayer(descriptor: { digest: string; size: number; mediaType: string }, diffId: string): Layer {
    return streamLayer({
      digest: descriptor.digest,
      diffId,
      size: descriptor.size,
      mediaType: descriptor.mediaType,
      location: { ...this.location },
      open: () => this.client.getBlob(this.repo, descriptor),
      writeTo: (sink, options) => this.client.fetchBlob(this.repo, descriptor, sink, options),
    });
  }

  /** Blobs first, then the manifest, so a tag never points at a missing blob. */
  private async store(key: StepKey, result: CachedResult): Promise<void> {
    const entry = encodeEntry(key, result, this.now());
    if (result.kind === 'layer') {
      const outcome = await this.uploadLayer(result.layer);
      if (!outcome.ok) throw outcome.error;
    }
    await this.client.uploadBlob(this.repo, { digest: entry.configDigest, size: entry.config.length, open: async () => Readable.from([entry.config]) });
    for (const tag of [keyTag(key.digest), identityTag(key.identity)]) {
      await againAfterRace(() => this.client.putManifest(referenceWithTag(this.repo, tag), entry.manifest, MediaType.ociManifest));
    }
    this.logger.debug({ key: key.digest, manifest: entry.manifestDigest }, `cached ${key.label} in ${this.description}`);
  }

  /** One upload per blob, shared by every step that produced it. */
  private uploadLayer(layer: Layer): Promise<UploadOutcome> {
    let upload = this.uploads.get(layer.digest);
    if (!upload) {
      const mountFrom = this.mountSource(layer);
      upload = this.client
        .uploadBlob(this.repo, { digest: layer.digest, size: layer.size, open: () => layer.compressed() }, mountFrom ? { mountFrom } : {})
        .then(
          (result): UploadOutcome => {
            this.logger.debug({ digest: layer.digest, result: result.kind }, `layer in the cache ${this.description}`);
            return { ok: true };
          },
          (error: unknown): UploadOutcome => ({ ok: false, error }),
        );
      this.uploads.set(layer.digest, upload);
    }
    return upload;
  }

  /** A repository of the same registry that holds the blob: the registry copies it, no bytes move. */
  private mountSource(layer: Layer): string | undefined {
    const from = layer.location;
    if (!from || from.registry !== this.repo.registry || from.repository === this.repo.repository) return undefined;
    return from.repository;
  }
}

/** How long a manifest push waits before its one retry after a 400. */
const RACE_PAUSE_MS = 250;

/**
 * A second try, a moment later, of a manifest push the registry refused with a 400. The
 * registry (distribution 2.8, filesystem storage) truncates and rewrites a repository's
 * link to a blob each time the blob is uploaded, so while another node stores the same
 * step, the link can read as empty and the manifest's blobs as unknown
 * (MANIFEST_BLOB_UNKNOWN, DIGEST_INVALID).
 */
async function againAfterRace<T>(push: () => Promise<T>): Promise<T> {
  try {
    return await push();
  } catch (error) {
    if (!isKilnError(error, 'REGISTRY_PROTOCOL')) throw error;
    await new Promise((resolve) => setTimeout(resolve, RACE_PAUSE_MS));
    return push();
  }
}
