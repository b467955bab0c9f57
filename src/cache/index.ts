// The shared layer cache: step keys, and the stores that keep layers of earlier builds.
export type { CachedResult, KeyInput, LayerCache, ProbeResult, StepKey } from './types.js';
export { diffInputs, formatExplain, hashSecret, startKey, stepKey } from './key.js';
export { expiredReason, formatTtl } from './ttl.js';
export { EntryAnnotation, identityTag, keyTag } from './entry.js';
export { RegistryLayerCache, type RegistryLayerCacheOptions } from './registry-cache.js';
export { LayoutLayerCache, type LayoutLayerCacheOptions } from './layout-cache.js';
export { defaultCacheRepo, openLayerCache, parseCacheRepo, type CacheLocation, type LayerCacheDeps } from './open.js';
