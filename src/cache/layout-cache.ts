import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileLayer } from '../oci/blob-layer.js';
import { verifyBytes } from '../oci/digest.js';
import { parseIndex } from '../oci/image-builder.js';
import type { BlobLocation } from '../oci/layer.js';
import { REF_NAME_ANNOTATION, blobPath, readLayout, writeBlob } from '../oci/layout.js';
import { MediaType } from '../oci/mediatypes.js';
import type { Descriptor, Index } from '../oci/types.js';
import { KilnError, describeError } from '../util/errors.js';
import { mapLimited } from '../util/limit.js';
import type { Logger } from '../util/log.js';
import { decodeEntry, encodeEntry, identityTag, keyTag, type CacheEntry } from './entry.js';
import { withFileLock } from './file-lock.js';
import { NOT_CACHED, NO_EARLIER_BUILD, explainAgainst, oneLine, probeResultOf, unreachable, unreadableEntry } from './lookup.js';
import { BackgroundWrites } from './background-writes.js';
import type { CachedResult, LayerCache, ProbeResult, StepKey } from './types.js';

const PROBE_CONCURRENCY = 16;
/** Entries are small manifests; anything this large is not one. */
const MAX_ENTRY_BYTES = 4 << 20;
const LAYOUT_MARKER = JSON.stringify({ imageLayoutVersion: '1.0.0' });

export interface LayoutLayerCacheOptions {
  /** The OCI image layout directory; created on the first write. */
  dir: string;
  ttlMs: number;
  /** False for --no-push-cache: entries are read but never written. */
  push: boolean;
  logger: Logger;
  now?: () => Date;
}

/**
 * The layer cache in a local OCI image layout (kaniko's `--cache-repo oci:/path`), in the same
 * entry format as the registry cache: each entry is a manifest in index.json named by its key
 * tag, and again by its identity tag. Several kiln processes may share the directory: blobs
 * are written to temporary files and renamed into place, and index.json is only rewritten
 * under a lock file, re-read, merged and renamed, so no writer loses another's entries.
 */
export class LayoutLayerCache implements LayerCache {
  readonly description: string;
  private readonly dir: string;
  private readonly ttlMs: number;
  private readonly push: boolean;
  private readonly logger: Logger;
  private readonly now: () => Date;
  private readonly writes: BackgroundWrites;
  /** This cache's own index updates, one after another, so they queue here and not on the lock. */
  private indexUpdates: Promise<unknown> = Promise.resolve();

  constructor(options: LayoutLayerCacheOptions) {
    this.dir = options.dir;
    this.description = `oci:${options.dir}`;
    this.writes = new BackgroundWrites(options.logger, this.description);
    this.ttlMs = options.ttlMs;
    this.push = options.push;
    this.logger = options.logger;
    this.now = options.now ?? (() => new Date());
  }

  async probe(keys: readonly StepKey[]): Promise<ProbeResult[]> {
    const now = this.now();
    let named: Map<string, Descriptor>;
    try {
      named = await this.namedEntries();
    } catch (err) {
      this.logger.warn(`the layer cache ${this.description} could not be read, so ${keys.length} step(s) count as misses: ${oneLine(describeError(err))}`);
      return keys.map(() => unreachable(err));
    }
    return mapLimited(keys, PROBE_CONCURRENCY, async (key): Promise<ProbeResult> => {
      const descriptor = named.get(keyTag(key.digest));
      if (!descriptor) return { kind: 'miss', reason: NOT_CACHED };
      try {
        const entry = await this.readEntry(descriptor);
        if (entry.result.kind === 'layer') await this.checkBlob(entry.result.descriptor);
        return probeResultOf(entry, key, this.ttlMs, now, (layer, diffId) =>
          fileLayer({ path: blobPath(this.dir, layer.digest), digest: layer.digest, diffId, size: layer.size, mediaType: layer.mediaType }),
        );
      } catch (err) {
        return unreadableEntry(err);
      }
    });
  }

  put(key: StepKey, result: CachedResult): void {
    if (this.push) this.writes.start(key, () => this.store(key, result));
  }

  async explainMiss(key: StepKey): Promise<string> {
    try {
      const descriptor = (await this.namedEntries()).get(identityTag(key.identity));
      if (!descriptor) return NO_EARLIER_BUILD;
      return explainAgainst(await this.readEntry(descriptor), key);
    } catch {
      return NO_EARLIER_BUILD;
    }
  }

  /** Layers in a local directory have no registry location to mount from. */
  async blobLocation(_digest: string): Promise<BlobLocation | undefined> {
    return undefined;
  }

  async settle(): Promise<void> {
    await this.writes.settle();
  }

  /** Entries by ref name; empty when the layout has not been written yet. */
  private async namedEntries(): Promise<Map<string, Descriptor>> {
    const present = await stat(join(this.dir, 'index.json')).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    const named = new Map<string, Descriptor>();
    if (!present) return named;
    for (const descriptor of (await readLayout(this.dir)).manifests) {
      const name = descriptor.annotations?.[REF_NAME_ANNOTATION];
      if (name !== undefined) named.set(name, descriptor);
    }
    return named;
  }

  private async readEntry(descriptor: Descriptor): Promise<CacheEntry> {
    const what = `cache entry ${descriptor.digest} in ${this.description}`;
    if (descriptor.size > MAX_ENTRY_BYTES) throw new KilnError('INVALID_MANIFEST', `${what} declares ${descriptor.size} bytes, too large for a cache entry.`);
    const raw = await readFile(blobPath(this.dir, descriptor.digest));
    if (raw.length !== descriptor.size) throw new KilnError('SIZE_MISMATCH', `${what} has ${raw.length} bytes but index.json declares ${descriptor.size}.`);
    verifyBytes(raw, descriptor.digest, what);
    return decodeEntry(raw, descriptor.mediaType, what);
  }

  /** A hit must be usable: its layer blob has to be there, whole. */
  private async checkBlob(descriptor: Descriptor): Promise<void> {
    const found = await stat(blobPath(this.dir, descriptor.digest)).catch(() => undefined);
    if (found?.size !== descriptor.size) {
      throw new KilnError('LAYOUT', `its layer blob ${descriptor.digest} is ${found ? `${found.size} bytes, not ${descriptor.size}` : 'missing'}.`);
    }
  }

  /** Blobs first, then index.json, so an entry never names a missing blob. */
  private async store(key: StepKey, result: CachedResult): Promise<void> {
    const entry = encodeEntry(key, result, this.now());
    await this.ensureLayout();
    if (result.kind === 'layer') {
      const { layer } = result;
      await writeBlob(this.dir, layer.digest, layer.size, layer);
    }
    await writeBlob(this.dir, entry.configDigest, entry.config.length, entry.config);
    await writeBlob(this.dir, entry.manifestDigest, entry.manifest.length, entry.manifest);
    const descriptor: Descriptor = { mediaType: MediaType.ociManifest, digest: entry.manifestDigest, size: entry.manifest.length };
    await this.nameEntries(descriptor, [keyTag(key.digest), identityTag(key.identity)]);
    this.logger.debug({ key: key.digest, manifest: entry.manifestDigest }, `cached ${key.label} in ${this.description}`);
  }

  private async ensureLayout(): Promise<void> {
    await mkdir(join(this.dir, 'blobs'), { recursive: true });
    const marker = join(this.dir, 'oci-layout');
    // Every writer writes the same bytes, so a race between two of them is harmless.
    if (!(await stat(marker).catch(() => undefined))) await this.replaceFile(marker, Buffer.from(LAYOUT_MARKER));
  }

  /** Points each ref name at `descriptor` in index.json, keeping every other entry. */
  private nameEntries(descriptor: Descriptor, refNames: readonly string[]): Promise<void> {
    const update = this.indexUpdates.then(() =>
      withFileLock(join(this.dir, 'index.json.lock'), async () => {
        const index = await this.readIndexFile();
        const manifests = index.manifests.filter((old) => !refNames.includes(old.annotations?.[REF_NAME_ANNOTATION] ?? ''));
        for (const name of refNames) manifests.push({ ...descriptor, annotations: { [REF_NAME_ANNOTATION]: name } });
        const updated: Index = { ...index, schemaVersion: 2, mediaType: MediaType.ociIndex, manifests };
        await this.replaceFile(join(this.dir, 'index.json'), Buffer.from(JSON.stringify(updated)));
      }),
    );
    this.indexUpdates = update.catch(() => undefined);
    return update;
  }

  private async readIndexFile(): Promise<Index> {
    const path = join(this.dir, 'index.json');
    let raw: Buffer;
    try {
      raw = await readFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] };
      throw err;
    }
    return parseIndex(raw, undefined, `index.json of ${this.description}`).index;
  }

  // Readers see the old file or the new one, never half of one: rename is atomic.
  private async replaceFile(path: string, content: Buffer): Promise<void> {
    const temporary = join(this.dir, `.kiln-tmp-${randomBytes(8).toString('hex')}`);
    try {
      await writeFile(temporary, content, { flag: 'wx' });
      await rename(temporary, path);
    } catch (err) {
      await unlink(temporary).catch(() => undefined);
      throw err;
    }
  }
}
