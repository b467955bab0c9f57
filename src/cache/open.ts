import { resolve } from 'node:path';
import type { RegistryClient } from '../registry/client.js';
import { parseReference, type Reference } from '../registry/reference.js';
import { KilnError, isKilnError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { LayoutLayerCache } from './layout-cache.js';
import { RegistryLayerCache } from './registry-cache.js';
import type { LayerCache } from './types.js';

const LAYOUT_PREFIX = 'oci:';

export interface LayerCacheDeps {
  client: RegistryClient;
  ttlMs: number;
  /** False for --no-push-cache. */
  push: boolean;
  logger: Logger;
  now?: () => Date;
}

export type CacheLocation = { kind: 'layout'; dir: string } | { kind: 'registry'; repo: Reference };

/**
 * Reads a `--cache-repo` value: `oci:/path` is a local OCI layout, anything else a registry
 * repository, which must not name a tag or digest (each entry gets a tag of its own).
 */
export function parseCacheRepo(spec: string): CacheLocation {
  if (spec.startsWith(LAYOUT_PREFIX)) {
    const dir = spec.slice(LAYOUT_PREFIX.length);
    if (dir === '') throw new KilnError('USAGE', '--cache-repo oci: needs a directory, e.g. --cache-repo oci:/cache/layers.');
    return { kind: 'layout', dir: resolve(dir) };
  }
  // The last path component holds any tag or digest; a ':' before it is a registry port.
  const lastComponent = spec.slice(spec.lastIndexOf('/') + 1);
  if (lastComponent.includes('@') || lastComponent.includes(':')) {
    throw new KilnError('USAGE', `--cache-repo ${spec} names a tag or digest; give a repository only, e.g. registry.example.com/team/app/cache.`);
  }
  let parsed: Reference;
  try {
    parsed = parseReference(spec);
  } catch (err) {
    const problem = isKilnError(err) ? err.message : String(err);
    throw new KilnError('USAGE', `--cache-repo ${spec} is not a repository: ${problem}`, { cause: err });
  }
  return { kind: 'registry', repo: { registry: parsed.registry, repository: parsed.repository } };
}

/** The layer cache a `--cache-repo` value names. */
export function openLayerCache(spec: string, deps: LayerCacheDeps): LayerCache {
  const location = parseCacheRepo(spec);
  const common = { ttlMs: deps.ttlMs, push: deps.push, logger: deps.logger, ...(deps.now ? { now: deps.now } : {}) };
  if (location.kind === 'layout') return new LayoutLayerCache({ dir: location.dir, ...common });
  return new RegistryLayerCache({ client: deps.client, repo: location.repo, ...common });
}

/** kaniko's default cache repository when --cache is on without --cache-repo: `<destination>/cache`. */
export function defaultCacheRepo(destination: Reference): string {
  return `${destination.registry}/${destination.repository}/cache`;
}
