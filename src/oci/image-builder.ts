import { KilnError, describeError } from '../util/errors.js';
import { isDigest, sha256, verifyBytes, type Digest } from './digest.js';
import type { Image } from './image.js';
import { layerDescriptor, type Layer } from './layer.js';
import {
  MediaType,
  configMediaType,
  isImageIndex,
  isImageManifest,
  isLayerMediaType,
  manifestMediaType,
  type ManifestFlavor,
} from './mediatypes.js';
import type { Descriptor, ImageConfig, Index, Manifest } from './types.js';

export interface CreateImageOptions {
  /** Serialised as given: key order is the caller's. rootfs.diff_ids must list the layers' diffIds. */
  config: ImageConfig;
  layers: readonly Layer[];
  flavor: ManifestFlavor;
  annotations?: Readonly<Record<string, string>>;
}

/** An image kiln writes itself: config and manifest are serialised here and digested. */
export function createImage(options: CreateImageOptions): Image {
  const { config, layers, flavor } = options;
  checkDiffIds(config, layers);
  const rawConfig = Buffer.from(JSON.stringify(config));
  const mediaType = manifestMediaType(flavor);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType,
    config: { mediaType: configMediaType(flavor), digest: sha256(rawConfig), size: rawConfig.length },
    layers: layers.map(layerDescriptor),
  };
  if (options.annotations && Object.keys(options.annotations).length > 0) manifest.annotations = { ...options.annotations };
  const rawManifest = Buffer.from(JSON.stringify(manifest));
  return assembleImage({ mediaType, manifest, rawManifest, config: structuredClone(config), rawConfig, layers });
}

function checkDiffIds(config: ImageConfig, layers: readonly Layer[]): void {
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== layers.length) {
    throw new KilnError('INVALID_CONFIG', `The image config lists ${diffIds.length} layer diff_ids but the image has ${layers.length} layers; they must correspond one to one.`);
  }
  layers.forEach((layer, i) => {
    if (diffIds[i] !== layer.diffId) {
      throw new KilnError('INVALID_CONFIG', `Layer ${i + 1} has diffId ${layer.diffId} but the image config lists ${diffIds[i]} in its place.`);
    }
  });
}

/** Builds a layer for one manifest descriptor, given the diffId the config lists for it. */
export type LayerFactory = (descriptor: Descriptor, diffId: Digest, index: number) => Layer;

export interface ImageParts {
  rawManifest: Buffer;
  rawConfig: Buffer;
  /** The image's layers in manifest order, or a factory kiln calls once per manifest layer. */
  layers: readonly Layer[] | LayerFactory;
  /** The Content-Type the manifest was served with, if any. */
  mediaType?: string;
  /** Names the image in error messages, e.g. "registry.example/app:1.0". */
  source?: string;
}

/**
 * An image read back from a registry, layout or tarball. The exact bytes are kept (digests are
 * over them) and checked to describe one runnable image: a single-image manifest, a config
 * that matches its digest and parses, and one diff_id per layer.
 */
export function imageFromParts(parts: ImageParts): Image {
  const source = parts.source ?? 'the image';
  const { mediaType, manifest } = parseManifest(parts.rawManifest, parts.mediaType, `the manifest of ${source}`);
  if (manifest.config.mediaType !== MediaType.dockerConfig && manifest.config.mediaType !== MediaType.ociConfig) {
    throw new KilnError('UNSUPPORTED_MEDIA_TYPE', `${capitalise(source)} is not a container image: its config has media type ${manifest.config.mediaType}.`);
  }
  for (const descriptor of manifest.layers) {
    if (!isLayerMediaType(descriptor.mediaType)) {
      throw new KilnError('UNSUPPORTED_MEDIA_TYPE', `${capitalise(source)} has layer ${descriptor.digest} of media type ${descriptor.mediaType}, which kiln cannot unpack.`);
    }
  }
  if (parts.rawConfig.length !== manifest.config.size) {
    throw new KilnError('SIZE_MISMATCH', `The config of ${source} has ${parts.rawConfig.length} bytes but the manifest declares ${manifest.config.size}; refusing it.`);
  }
  verifyBytes(parts.rawConfig, manifest.config.digest, `the config of ${source}`);
  const config = parseConfig(parts.rawConfig, `the config of ${source}`);
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== manifest.layers.length) {
    throw new KilnError('INVALID_CONFIG', `The config of ${source} lists ${diffIds.length} layer diff_ids but its manifest has ${manifest.layers.length} layers; the image is inconsistent.`);
  }
  const layers = typeof parts.layers === 'function' ? manifest.layers.map((d, i) => (parts.layers as LayerFactory)(d, diffIds[i]!, i)) : parts.layers;
  checkLayersMatch(manifest, diffIds, layers, source);
  return assembleImage({ mediaType, manifest, rawManifest: parts.rawManifest, config, rawConfig: parts.rawConfig, layers });
}

function checkLayersMatch(manifest: Manifest, diffIds: readonly string[], layers: readonly Layer[], source: string): void {
  if (layers.length !== manifest.layers.length) {
    throw new KilnError('INTERNAL', `${layers.length} layers were given for ${source}, whose manifest lists ${manifest.layers.length}.`);
  }
  layers.forEach((layer, i) => {
    const descriptor = manifest.layers[i]!;
    if (layer.digest !== descriptor.digest || layer.size !== descriptor.size || layer.mediaType !== descriptor.mediaType || layer.diffId !== diffIds[i]) {
      throw new KilnError('INTERNAL', `Layer ${i + 1} given for ${source} (${layer.digest}) does not match its manifest descriptor and config diff_id.`);
    }
  });
}

interface ImageFields {
  mediaType: string;
  manifest: Manifest;
  rawManifest: Buffer;
  config: ImageConfig;
  rawConfig: Buffer;
  layers: readonly Layer[];
}

function assembleImage(fields: ImageFields): Image {
  return Object.freeze({
    mediaType: fields.mediaType,
    manifest: deepFreeze(fields.manifest),
    rawManifest: fields.rawManifest,
    digest: sha256(fields.rawManifest),
    config: deepFreeze(fields.config),
    rawConfig: fields.rawConfig,
    layers: Object.freeze([...fields.layers]),
  });
}

// Images are shared between stages and outputs; freezing turns an accidental in-place edit
// into an immediate TypeError instead of a silently wrong digest.
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/* ---------- parsing ---------- */

export interface ParsedManifest {
  kind: 'manifest';
  mediaType: string;
  manifest: Manifest;
}

export interface ParsedIndex {
  kind: 'index';
  mediaType: string;
  index: Index;
}

/** Parses a manifest or an index, whichever `raw` is: what a registry returns for a tag. */
export function parseAnyManifest(raw: Buffer, mediaTypeHeader?: string, what = 'the manifest'): ParsedManifest | ParsedIndex {
  const body = parseJsonObject(raw, what, 'INVALID_MANIFEST');
  const mediaType = resolveMediaType(body, mediaTypeHeader, what);
  if (isImageIndex(mediaType)) return { kind: 'index', mediaType, index: checkIndex(body, mediaType, what) };
  if (isImageManifest(mediaType)) return { kind: 'manifest', mediaType, manifest: checkManifest(body, mediaType, what) };
  throw new KilnError('UNSUPPORTED_MEDIA_TYPE', `${capitalise(what)} has media type ${mediaType}, which is neither an image manifest nor an image index.`);
}

/** Parses a single-image manifest (Docker v2 schema 2 or OCI), refusing an index. */
export function parseManifest(raw: Buffer, mediaTypeHeader?: string, what = 'the manifest'): ParsedManifest {
  const parsed = parseAnyManifest(raw, mediaTypeHeader, what);
  if (parsed.kind === 'index') {
    throw new KilnError('UNSUPPORTED_MEDIA_TYPE', `${capitalise(what)} is a multi-platform index (${parsed.mediaType}), not a single image; select one platform from it first.`);
  }
  return parsed;
}

/** Parses an image index (OCI index or Docker manifest list), refusing a single manifest. */
export function parseIndex(raw: Buffer, mediaTypeHeader?: string, what = 'the index'): ParsedIndex {
  const parsed = parseAnyManifest(raw, mediaTypeHeader, what);
  if (parsed.kind === 'manifest') {
    throw new KilnError('UNSUPPORTED_MEDIA_TYPE', `${capitalise(what)} is a single-image manifest (${parsed.mediaType}), not an index.`);
  }
  return parsed;
}

/** Parses an image config, checking the parts kiln relies on. */
export function parseConfig(raw: Buffer, what = 'the image config'): ImageConfig {
  const body = parseJsonObject(raw, what, 'INVALID_CONFIG');
  const rootfs = body.rootfs as { type?: unknown; diff_ids?: unknown } | undefined;
  if (!isObject(rootfs) || rootfs.type !== 'layers' || !Array.isArray(rootfs.diff_ids)) {
    throw new KilnError('INVALID_CONFIG', `${capitalise(what)} has no valid rootfs: expected {"type": "layers", "diff_ids": [...]}.`);
  }
  for (const diffId of rootfs.diff_ids) {
    if (typeof diffId !== 'string' || !isDigest(diffId)) {
      throw new KilnError('INVALID_CONFIG', `${capitalise(what)} lists ${JSON.stringify(diffId)} as a layer diff_id, which is not a digest.`);
    }
  }
  for (const key of ['architecture', 'os'] as const) {
    if (body[key] !== undefined && typeof body[key] !== 'string') {
      throw new KilnError('INVALID_CONFIG', `${capitalise(what)} has a non-string "${key}".`);
    }
  }
  if (body.config !== undefined && body.config !== null && !isObject(body.config)) {
    throw new KilnError('INVALID_CONFIG', `${capitalise(what)} has a "config" that is not an object.`);
  }
  if (body.history !== undefined && body.history !== null && !Array.isArray(body.history)) {
    throw new KilnError('INVALID_CONFIG', `${capitalise(what)} has a "history" that is not a list.`);
  }
  return body as unknown as ImageConfig;
}

function resolveMediaType(body: Record<string, unknown>, header: string | undefined, what: string): string {
  if (body.schemaVersion === 1) {
    throw new KilnError('UNSUPPORTED_MEDIA_TYPE', `${capitalise(what)} uses Docker image manifest schema 1, which kiln does not support; push the image again with a current tool.`);
  }
  if (body.schemaVersion !== 2) {
    throw new KilnError('INVALID_MANIFEST', `${capitalise(what)} has schemaVersion ${JSON.stringify(body.schemaVersion)}; expected 2.`);
  }
  const declared = body.mediaType;
  if (declared !== undefined && typeof declared !== 'string') {
    throw new KilnError('INVALID_MANIFEST', `${capitalise(what)} has a non-string mediaType.`);
  }
  const served = header?.split(';')[0]!.trim();
  const servedKnown = served !== undefined && (isImageManifest(served) || isImageIndex(served));
  if (declared !== undefined && servedKnown && declared !== served) {
    throw new KilnError('INVALID_MANIFEST', `${capitalise(what)} declares media type ${declared} but was served as ${served}; refusing the ambiguous document.`);
  }
  if (declared !== undefined) return declared;
  if (servedKnown) return served!;
  // OCI documents may omit mediaType; their shape tells them apart.
  return Array.isArray(body.manifests) ? MediaType.ociIndex : MediaType.ociManifest;
}

function checkManifest(body: Record<string, unknown>, mediaType: string, what: string): Manifest {
  if (!isObject(body.config)) {
    throw new KilnError('INVALID_MANIFEST', `${capitalise(what)} has no config descriptor.`);
  }
  checkDescriptor(body.config, `the config descriptor of ${what}`);
  if (!Array.isArray(body.layers)) {
    throw new KilnError('INVALID_MANIFEST', `${capitalise(what)} has no "layers" list.`);
  }
  body.layers.forEach((layer, i) => checkDescriptor(layer, `layer ${i + 1} of ${what}`));
  checkAnnotations(body.annotations, what);
  return { ...body, mediaType } as unknown as Manifest;
}

function checkIndex(body: Record<string, unknown>, mediaType: string, what: string): Index {
  if (!Array.isArray(body.manifests)) {
    throw new KilnError('INVALID_MANIFEST', `${capitalise(what)} has no "manifests" list.`);
  }
  body.manifests.forEach((entry, i) => {
    checkDescriptor(entry, `entry ${i + 1} of ${what}`);
    const platform = (entry as Record<string, unknown>).platform;
    if (platform !== undefined && (!isObject(platform) || typeof platform.os !== 'string' || typeof platform.architecture !== 'string')) {
      throw new KilnError('INVALID_MANIFEST', `Entry ${i + 1} of ${what} has a platform without "os" and "architecture".`);
    }
  });
  checkAnnotations(body.annotations, what);
  return { ...body, mediaType } as unknown as Index;
}

function checkDescriptor(value: unknown, what: string): void {
  if (!isObject(value)) throw new KilnError('INVALID_MANIFEST', `${capitalise(what)} is not an object.`);
  if (typeof value.mediaType !== 'string' || value.mediaType === '') {
    throw new KilnError('INVALID_MANIFEST', `${capitalise(what)} has no mediaType.`);
  }
  if (typeof value.digest !== 'string' || !isDigest(value.digest)) {
    throw new KilnError('INVALID_MANIFEST', `${capitalise(what)} has digest ${JSON.stringify(value.digest)}, which is not a valid digest.`);
  }
  if (typeof value.size !== 'number' || !Number.isSafeInteger(value.size) || value.size < 0) {
    throw new KilnError('INVALID_MANIFEST', `${capitalise(what)} has size ${JSON.stringify(value.size)}; expected a whole number of bytes.`);
  }
  if (value.urls !== undefined && (!Array.isArray(value.urls) || value.urls.some((url) => typeof url !== 'string'))) {
    throw new KilnError('INVALID_MANIFEST', `${capitalise(what)} has "urls" that are not a list of strings.`);
  }
  checkAnnotations(value.annotations, what);
}

function checkAnnotations(value: unknown, what: string): void {
  if (value === undefined) return;
  if (!isObject(value) || Object.values(value).some((v) => typeof v !== 'string')) {
    throw new KilnError('INVALID_MANIFEST', `${capitalise(what)} has annotations that are not a map of strings.`);
  }
}

function parseJsonObject(raw: Buffer, what: string, code: 'INVALID_MANIFEST' | 'INVALID_CONFIG'): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new KilnError(code, `${capitalise(what)} is not valid JSON (${describeError(err)}).`, { cause: err });
  }
  if (!isObject(body)) throw new KilnError(code, `${capitalise(what)} is not a JSON object.`);
  return body;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
