import { KilnError } from '../util/errors.js';
import { relabelLayer } from './blob-layer.js';
import type { Image } from './image.js';
import { createImage } from './image-builder.js';
import type { Layer } from './layer.js';
import { MediaType, configMediaType, flavorOfManifest, isForeignLayer, layerCompression, layerMediaType, type ManifestFlavor } from './mediatypes.js';
import type { ContainerConfig, History, ImageConfig, Platform } from './types.js';

/*
 * Every function here returns a new Image and leaves its input untouched: a stage's image is
 * shared with the cache and the outputs, which must never see it change under them.
 */

/** The time kaniko's --reproducible writes for every timestamp. */
export const REPRODUCIBLE_TIME = '1970-01-01T00:00:00Z';

export interface LayerAddition {
  layer: Layer;
  history?: History;
}

/** Appends layers: their descriptors, their diff_ids, and one history entry each. */
export function appendLayers(image: Image, additions: readonly LayerAddition[]): Image {
  if (additions.length === 0) return image;
  const config = editableConfig(image);
  config.rootfs = { type: 'layers', diff_ids: [...config.rootfs.diff_ids, ...additions.map((a) => a.layer.diffId)] };
  config.history = [...(config.history ?? []), ...additions.map((a) => withoutEmptyLayer(a.history ?? {}))];
  return rebuild(image, config, [...image.layers, ...additions.map((a) => a.layer)]);
}

/** Records a metadata-only step (ENV, CMD, …) in the history, marked `empty_layer`. */
export function appendHistory(image: Image, history: History): Image {
  const config = editableConfig(image);
  config.history = [...(config.history ?? []), { ...history, empty_layer: true }];
  return rebuild(image, config);
}

/**
 * Changes the runtime config: either keys to merge over the current one (a key set to
 * undefined is removed), or a function from the current one to the next.
 */
export function setContainerConfig(image: Image, change: Partial<ContainerConfig> | ((current: ContainerConfig) => ContainerConfig)): Image {
  const config = editableConfig(image);
  const current = config.config ?? {};
  const next = typeof change === 'function' ? change(structuredClone(current)) : { ...current, ...change };
  for (const key of Object.keys(next)) if (next[key] === undefined) delete next[key];
  config.config = next;
  return rebuild(image, config);
}

/** Sets the image's creation time, or removes it. */
export function setCreated(image: Image, created: Date | undefined): Image {
  const config = editableConfig(image);
  if (created === undefined) delete config.created;
  else config.created = formatTime(created);
  return rebuild(image, config);
}

/** Sets the image's author (Dockerfile MAINTAINER). */
export function setAuthor(image: Image, author: string): Image {
  const config = editableConfig(image);
  config.author = author;
  return rebuild(image, config);
}

/** Sets every timestamp of the config (created and each history entry) to the Unix epoch, as --reproducible does. */
export function zeroTimes(image: Image): Image {
  const config = editableConfig(image);
  config.created = REPRODUCIBLE_TIME;
  if (config.history) config.history = config.history.map((entry) => ({ ...entry, created: REPRODUCIBLE_TIME }));
  return rebuild(image, config);
}

/** Sets os, architecture and variant (and os.version / os.features when given). */
export function setPlatform(image: Image, platform: Platform): Image {
  const config = editableConfig(image);
  config.os = platform.os;
  config.architecture = platform.architecture;
  setOrDelete(config, 'variant', platform.variant);
  setOrDelete(config, 'os.version', platform['os.version']);
  setOrDelete(config, 'os.features', platform['os.features'] && platform['os.features'].length > 0 ? [...platform['os.features']] : undefined);
  return rebuild(image, config);
}

/**
 * Rewrites the image as Docker v2 schema 2 or OCI: manifest and config media types and each
 * layer's media type. Layer blobs are untouched (only their labels change), so no layer is
 * recompressed and every diff_id stays the same.
 */
export function convertFlavor(image: Image, flavor: ManifestFlavor): Image {
  if (flavorOfManifest(image.mediaType) === flavor && image.manifest.config.mediaType === configMediaType(flavor)) return image;
  const layers = image.layers.map((layer) => relabelLayer(layer, layerMediaTypeIn(flavor, layer.mediaType)));
  return createImage({ config: editableConfig(image), layers, flavor, ...annotationsOf(image) });
}

/** The image of `FROM scratch`: no layers, no history, just a platform. */
export function emptyImage(platform: Platform, flavor: ManifestFlavor): Image {
  const config: ImageConfig = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    ...(platform['os.version'] ? { 'os.version': platform['os.version'] } : {}),
    config: {},
    rootfs: { type: 'layers', diff_ids: [] },
  };
  return createImage({ config, layers: [], flavor });
}

function layerMediaTypeIn(flavor: ManifestFlavor, mediaType: string): string {
  const compression = layerCompression(mediaType);
  if (!isForeignLayer(mediaType)) return layerMediaType(flavor, compression);
  if (flavor === 'oci') {
    return compression === 'zstd' ? MediaType.ociLayerNondistributableZstd : compression === 'none' ? MediaType.ociLayerNondistributable : MediaType.ociLayerNondistributableGzip;
  }
  if (compression !== 'gzip') {
    throw new KilnError('UNSUPPORTED_MEDIA_TYPE', `Foreign layer of media type ${mediaType} has no Docker equivalent; keep the image in the OCI format.`);
  }
  return MediaType.dockerForeignLayer;
}

/** A deep copy of the config that a mutation may edit freely. */
function editableConfig(image: Image): ImageConfig {
  return structuredClone(image.config) as ImageConfig;
}

/** Same manifest flavor and annotations as `image`, new config and (optionally) layers. */
function rebuild(image: Image, config: ImageConfig, layers: readonly Layer[] = image.layers): Image {
  return createImage({ config, layers, flavor: flavorOfManifest(image.mediaType), ...annotationsOf(image) });
}

function annotationsOf(image: Image): { annotations?: Record<string, string> } {
  return image.manifest.annotations ? { annotations: { ...image.manifest.annotations } } : {};
}

function withoutEmptyLayer(history: History): History {
  const { empty_layer: _ignored, ...rest } = history;
  return rest;
}

function setOrDelete<K extends string>(target: Record<string, unknown>, key: K, value: unknown): void {
  if (value === undefined || value === '') delete target[key];
  else target[key] = value;
}

/** RFC 3339 in UTC without fractional seconds when there are none, as Docker writes it. */
function formatTime(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new KilnError('USAGE', 'The image creation time is not a valid date.');
  return date.toISOString().replace('.000Z', 'Z');
}
