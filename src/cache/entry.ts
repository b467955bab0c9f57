// The format of one cache entry, the same in a registry repository and in an OCI layout: an
// OCI image manifest whose annotations carry everything a lookup needs, so that one manifest
// read answers a probe, and whose config is a small valid image config so that ordinary
// tools (skopeo inspect, crane) can read entries.
import { createHash } from 'node:crypto';
import { isDigest, sha256, type Digest } from '../oci/digest.js';
import { parseManifest } from '../oci/image-builder.js';
import { MediaType, isLayerMediaType } from '../oci/mediatypes.js';
import type { Descriptor, ImageConfig, Manifest } from '../oci/types.js';
import { KilnError } from '../util/errors.js';
import type { CachedResult, KeyInput, StepKey } from './types.js';

export const EntryAnnotation = {
  /** Bumped when the entry format changes; entries of another version are misses. */
  version: 'dev.kiln.cache.version',
  key: 'dev.kiln.cache.key',
  parent: 'dev.kiln.cache.parent',
  label: 'dev.kiln.cache.label',
  /** "layer" or "empty". */
  result: 'dev.kiln.cache.result',
  /** The layer's diff_id, so a hit needs no config read. */
  diffId: 'dev.kiln.cache.diff-id',
  /** The step's inputs as a JSON list of {name, value}, for explaining later misses. */
  inputs: 'dev.kiln.cache.inputs',
  /** When the entry was written: what --cache-ttl is measured from. */
  created: 'org.opencontainers.image.created',
} as const;

const FORMAT_VERSION = '1';
/** Tags that name "the last entry cached for this step identity" start with this. */
const IDENTITY_TAG_PREFIX = 'last-';
const IDENTITY_HASH_CHARS = 40;

export type EntryResult = { kind: 'layer'; descriptor: Descriptor; diffId: Digest } | { kind: 'empty' };

/** A cache entry as read back. */
export interface CacheEntry {
  key: Digest;
  parent: string;
  label: string;
  created: Date;
  inputs: KeyInput[];
  result: EntryResult;
}

/** An entry ready to store: its config blob and its manifest. */
export interface EncodedEntry {
  config: Buffer;
  configDigest: Digest;
  manifest: Buffer;
  manifestDigest: Digest;
}

/** The tag an entry is stored under: the key's hex, 64 characters of the tag grammar. */
export function keyTag(key: Digest): string {
  return key.slice(key.indexOf(':') + 1);
}

/**
 * The tag that always names the last entry cached for a step identity, so a later miss can
 * be compared with it. The identity is hashed: it may hold file names a tag cannot.
 */
export function identityTag(identity: string): string {
  const hex = createHash('sha256').update(identity).digest('hex');
  return `${IDENTITY_TAG_PREFIX}${hex.slice(0, IDENTITY_HASH_CHARS)}`;
}

export function encodeEntry(key: StepKey, result: CachedResult, created: Date): EncodedEntry {
  const createdText = created.toISOString();
  const layer = result.kind === 'layer' ? result.layer : undefined;
  const configDocument: ImageConfig = {
    created: createdText,
    // An entry is not an image of any platform; the key covers the platform already.
    architecture: 'unknown',
    os: 'unknown',
    rootfs: { type: 'layers', diff_ids: layer ? [layer.diffId] : [] },
    history: [{ created: createdText, created_by: key.label, ...(layer ? {} : { empty_layer: true }) }],
  };
  const config = Buffer.from(JSON.stringify(configDocument));
  const configDigest = sha256(config);

  const annotations: Record<string, string> = {
    [EntryAnnotation.version]: FORMAT_VERSION,
    [EntryAnnotation.key]: key.digest,
    [EntryAnnotation.parent]: key.parent,
    [EntryAnnotation.label]: key.label,
    [EntryAnnotation.result]: layer ? 'layer' : 'empty',
    ...(layer ? { [EntryAnnotation.diffId]: layer.diffId } : {}),
    [EntryAnnotation.inputs]: JSON.stringify(key.inputs.map(({ name, value }) => ({ name, value }))),
    [EntryAnnotation.created]: createdText,
  };
  const manifestDocument: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: configDigest, size: config.length },
    // The layer keeps its own media type (gzip or zstd, docker or OCI): the blob is reused as is.
    layers: layer ? [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }] : [],
    annotations,
  };
  const manifest = Buffer.from(JSON.stringify(manifestDocument));
  return { config, configDigest, manifest, manifestDigest: sha256(manifest) };
}

/**
 * Reads an entry back; throws INVALID_MANIFEST naming what is wrong when `raw` is not an
 * entry kiln can use (another tool's image under the tag, an entry of another format).
 */
export function decodeEntry(raw: Buffer, mediaType: string | undefined, what: string): CacheEntry {
  const { manifest } = parseManifest(raw, mediaType, what);
  const invalid = (problem: string) => new KilnError('INVALID_MANIFEST', `${what} is not a kiln cache entry: ${problem}.`);
  const annotations = manifest.annotations ?? {};
  const version = annotations[EntryAnnotation.version];
  if (version === undefined) throw invalid('it has no format version annotation');
  if (version !== FORMAT_VERSION) throw invalid(`it has format version ${JSON.stringify(version)}, this kiln reads ${FORMAT_VERSION}`);

  const key = annotations[EntryAnnotation.key];
  if (key === undefined || !isDigest(key)) throw invalid('its key annotation is not a digest');
  const createdText = annotations[EntryAnnotation.created] ?? '';
  const created = new Date(createdText);
  if (Number.isNaN(created.getTime())) throw invalid(`its created time ${JSON.stringify(createdText)} is not a date`);

  let result: EntryResult;
  const kind = annotations[EntryAnnotation.result];
  if (kind === 'empty') {
    if (manifest.layers.length !== 0) throw invalid('an empty entry lists layers');
    result = { kind: 'empty' };
  } else if (kind === 'layer') {
    if (manifest.layers.length !== 1) throw invalid(`a layer entry lists ${manifest.layers.length} layers, not one`);
    const descriptor = manifest.layers[0]!;
    if (!isLayerMediaType(descriptor.mediaType)) throw invalid(`its layer has media type ${descriptor.mediaType}`);
    const diffId = annotations[EntryAnnotation.diffId];
    if (diffId === undefined || !isDigest(diffId)) throw invalid('its diff_id annotation is not a digest');
    result = { kind: 'layer', descriptor, diffId };
  } else {
    throw invalid(`its result annotation is ${JSON.stringify(kind)}`);
  }

  return {
    key,
    parent: annotations[EntryAnnotation.parent] ?? '',
    label: annotations[EntryAnnotation.label] ?? '',
    created,
    inputs: decodeInputs(annotations[EntryAnnotation.inputs], invalid),
    result,
  };
}

function decodeInputs(text: string | undefined, invalid: (problem: string) => KilnError): KeyInput[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text ?? '');
  } catch {
    throw invalid('its inputs annotation is not JSON');
  }
  const isInput = (item: unknown): item is KeyInput =>
    typeof item === 'object' && item !== null && typeof (item as KeyInput).name === 'string' && typeof (item as KeyInput).value === 'string';
  if (!Array.isArray(parsed) || !parsed.every(isInput)) throw invalid('its inputs annotation is not a list of {name, value}');
  return parsed.map(({ name, value }) => ({ name, value }));
}
