import type { BlobLocation, Layer } from '../oci/layer.js';

/**
 * One input of a step's cache key, as `--cache-explain` prints it and a miss names it.
 * `name` says what it is ("instruction", "build arg VERSION", "env PATH", "source src/",
 * "parent"); `value` is what entered the key. Values that may be secret (build args) are
 * hashed before they get here, because the inputs are stored in the cache repository.
 */
export interface KeyInput {
  readonly name: string;
  readonly value: string;
}

/**
 * A step's key: `digest` hashes the parent key and the inputs, so equal inputs give equal
 * keys on every node and any change anywhere up the chain changes every key after it.
 */
export interface StepKey {
  /** `sha256:<hex>`. */
  readonly digest: string;
  /** The key this one chains from: the previous step's, or the stage's start key. */
  readonly parent: string;
  readonly inputs: readonly KeyInput[];
  /**
   * Which step this is from one build to the next, independent of its inputs (Dockerfile
   * name, stage, step number): a miss is explained against the entry this identity had the
   * last time it was cached.
   */
  readonly identity: string;
  /** "Dockerfile:12 RUN make", for messages. */
  readonly label: string;
}

/** What a cached step produced: the layer it added, or nothing when it changed no file. */
export type CachedResult = { kind: 'layer'; layer: Layer } | { kind: 'empty' };

export type ProbeResult =
  | { kind: 'hit'; result: CachedResult; created: Date }
  /** `reason` is one line for the user: "not in the cache", "expired (cached 2026-11-01…)". */
  | { kind: 'miss'; reason: string };

/**
 * Where layers of earlier builds are kept: a registry repository or an OCI layout. A miss is
 * a value and a failed write is a warning: the cache never fails a build.
 */
export interface LayerCache {
  /** "registry.example.com/app/cache", for messages. */
  readonly description: string;
  /** Looks every key up at once. Never throws: an unreachable cache answers misses. */
  probe(keys: readonly StepKey[]): Promise<ProbeResult[]>;
  /**
   * Stores a step's result in the background and returns at once. A layer blob the cache
   * already holds is not uploaded again; one held by `mountFrom` is mounted.
   */
  put(key: StepKey, result: CachedResult): void;
  /**
   * Why `key` missed, in one line naming the input that differs from the entry its identity
   * had in the last build that cached it ("build arg VERSION changed", "source src/ changed:
   * src/a.js, src/b.js"), or "no earlier build of this step is cached". Never throws.
   */
  explainMiss(key: StepKey): Promise<string>;
  /**
   * Where a layer blob will be once the cache's own upload of it is done: a push of the final
   * image can mount it from there instead of uploading it a second time. Undefined when the
   * cache is not uploading that blob, or the upload failed.
   */
  blobLocation(digest: string): Promise<BlobLocation | undefined>;
  /** Waits for every background write; each failure was logged as one warning line. */
  settle(): Promise<void>;
}
