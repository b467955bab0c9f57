import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KilnError, describeError } from '../util/errors.js';
import { writeBlobFile, type BlobContent } from './blob-file.js';
import { descriptorMetadata, fileLayer } from './blob-layer.js';
import { parseDigest, verifyBytes, type Digest } from './digest.js';
import { imageDescriptor, type Image, type ImageIndex } from './image.js';
import { imageFromParts, parseAnyManifest, parseIndex } from './image-builder.js';
import { MediaType, isForeignLayer, isImageIndex } from './mediatypes.js';
import { hostPlatform, platformMatches, platformOfConfig, selectManifest } from './platform.js';
import type { Descriptor, Index, Platform } from './types.js';

/** The index.json annotation that names an entry, e.g. a tag (OCI image-layout spec). */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

const LAYOUT_VERSION = '1.0.0';
// Manifests, indexes and configs are read into memory; real ones are far below this.
const MAX_METADATA_BLOB = 64 << 20;
// Deepest index-in-index nesting kiln follows before deciding the layout is malformed.
const MAX_NESTING = 4;

export type LayoutEntry = { image: Image; refName?: string } | { index: ImageIndex; refName?: string };

/** What happened to one blob: kiln wrote it, or an identical one was already there. */
export type BlobWriteResult = 'written' | 'present';

/**
 * Adds images (or multi-platform indexes) to the OCI image layout at `dir`, creating it if
 * needed. Blobs already present are kept; each new blob is streamed to a temporary file,
 * checked against its digest and size, and only then renamed into place, so an interrupted
 * write never leaves a blob with the wrong content under a digest name. An entry with a ref
 * name replaces any older entry of the same name. Returns the new index.json.
 */
export async function writeLayout(dir: string, entries: readonly LayoutEntry[]): Promise<Index> {
  await ensureLayout(dir);
  const descriptors: Descriptor[] = [];
  for (const entry of entries) {
    const descriptor = 'image' in entry ? await writeImageBlobs(dir, entry.image) : await writeIndexBlobs(dir, entry.index);
    if (entry.refName !== undefined) descriptor.annotations = { ...descriptor.annotations, [REF_NAME_ANNOTATION]: entry.refName };
    descriptors.push(descriptor);
  }
  const index = mergeIndex(await readIndexIfPresent(dir), descriptors);
  await writeFileAtomically(dir, join(dir, 'index.json'), Buffer.from(JSON.stringify(index)));
  return index;
}

async function writeImageBlobs(dir: string, image: Image): Promise<Descriptor> {
  for (const layer of image.layers) {
    // Non-distributable layers are fetched from their URLs by whoever runs the image.
    if (isForeignLayer(layer.mediaType)) continue;
    await writeBlob(dir, layer.digest, layer.size, layer);
  }
  await writeBlob(dir, image.manifest.config.digest, image.rawConfig.length, image.rawConfig);
  await writeBlob(dir, image.digest, image.rawManifest.length, image.rawManifest);
  return imageDescriptor(image);
}

async function writeIndexBlobs(dir: string, imageIndex: ImageIndex): Promise<Descriptor> {
  for (const { image } of imageIndex.images) await writeImageBlobs(dir, image);
  await writeBlob(dir, imageIndex.digest, imageIndex.rawIndex.length, imageIndex.rawIndex);
  return { mediaType: imageIndex.mediaType, digest: imageIndex.digest, size: imageIndex.rawIndex.length };
}

function mergeIndex(existing: Index | undefined, added: readonly Descriptor[]): Index {
  let manifests = existing ? [...existing.manifests] : [];
  for (const descriptor of added) {
    const refName = descriptor.annotations?.[REF_NAME_ANNOTATION];
    manifests = manifests.filter((old) =>
      refName !== undefined
        ? old.annotations?.[REF_NAME_ANNOTATION] !== refName
        : // An unnamed entry written again is the same entry, not a second one.
          !(old.digest === descriptor.digest && old.annotations?.[REF_NAME_ANNOTATION] === undefined),
    );
    manifests.push(descriptor);
  }
  const index: Index = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests };
  if (existing?.annotations) index.annotations = existing.annotations;
  return index;
}

/**
 * Stores one blob under blobs/<algorithm>/<hex>. `content` is the bytes (small blobs), a
 * layer (written through its fastest way to a file), or a function opening a stream.
 */
export async function writeBlob(dir: string, digest: Digest, size: number, content: BlobContent): Promise<BlobWriteResult> {
  const path = blobPath(dir, digest);
  const existing = await stat(path).catch(() => undefined);
  if (existing?.isFile() && existing.size === size) return 'present';
  await mkdir(join(dir, 'blobs', parseDigest(digest).algorithm), { recursive: true });
  const temporary = temporaryPath(dir);
  try {
    await writeBlobFile(temporary, digest, size, content);
    await rename(temporary, path);
  } catch (err) {
    await unlink(temporary).catch(() => undefined);
    throw wrapIo(err, `Cannot write blob ${digest} into the OCI layout ${dir}`);
  }
  return 'written';
}

export function blobPath(dir: string, digest: Digest): string {
  const { algorithm, hex } = parseDigest(digest);
  return join(dir, 'blobs', algorithm, hex);
}

async function ensureLayout(dir: string): Promise<void> {
  await mkdir(join(dir, 'blobs'), { recursive: true }).catch((err: unknown) => {
    throw wrapIo(err, `Cannot create the OCI layout directory ${dir}`);
  });
  const marker = join(dir, 'oci-layout');
  const present = await stat(marker).catch(() => undefined);
  if (present) {
    await readLayoutVersion(dir);
    return;
  }
  await writeFileAtomically(dir, marker, Buffer.from(JSON.stringify({ imageLayoutVersion: LAYOUT_VERSION })));
}

async function writeFileAtomically(dir: string, path: string, content: Buffer): Promise<void> {
  const temporary = temporaryPath(dir);
  try {
    await writeFile(temporary, content, { flag: 'wx' });
    await rename(temporary, path);
  } catch (err) {
    await unlink(temporary).catch(() => undefined);
    throw wrapIo(err, `Cannot write ${path}`);
  }
}

// Temporary files live in blobs/ so the final rename never crosses a filesystem boundary.
function temporaryPath(dir: string): string {
  return join(dir, 'blobs', `.kiln-tmp-${randomBytes(8).toString('hex')}`);
}

/* ---------- reading ---------- */

/** The layout's index.json, after checking that `dir` is an OCI image layout kiln can read. */
export async function readLayout(dir: string): Promise<Index> {
  await readLayoutVersion(dir);
  const index = await readIndexIfPresent(dir);
  if (!index) throw new KilnError('LAYOUT', `The OCI layout ${dir} has no index.json; it is incomplete.`);
  return index;
}

async function readLayoutVersion(dir: string): Promise<void> {
  let raw: string;
  try {
    raw = await readFile(join(dir, 'oci-layout'), 'utf8');
  } catch (err) {
    throw new KilnError('LAYOUT', `${dir} is not an OCI image layout: it has no readable oci-layout file (${describeError(err)}).`, { cause: err });
  }
  let version: unknown;
  try {
    version = (JSON.parse(raw) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
  } catch (err) {
    throw new KilnError('LAYOUT', `The oci-layout file of ${dir} is not valid JSON.`, { cause: err });
  }
  if (typeof version !== 'string' || !version.startsWith('1.')) {
    throw new KilnError('LAYOUT', `The OCI layout ${dir} has imageLayoutVersion ${JSON.stringify(version)}; kiln reads version 1.x.`);
  }
}

async function readIndexIfPresent(dir: string): Promise<Index | undefined> {
  let raw: Buffer;
  try {
    raw = await readFile(join(dir, 'index.json'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw wrapIo(err, `Cannot read ${join(dir, 'index.json')}`);
  }
  return parseIndex(raw, undefined, `index.json of the OCI layout ${dir}`).index;
}

export interface LayoutSelector {
  /** The `org.opencontainers.image.ref.name` of the entry, usually a tag. */
  refName?: string;
  digest?: Digest;
  /** For entries that are indexes, the platform to pick; defaults to the host's. */
  platform?: Platform;
}

/**
 * One image from the layout at `dir`. Its layers read the blob files in place (checked
 * against their digests on every read); diffIds come from the config.
 */
export async function layoutImage(dir: string, selector: LayoutSelector = {}): Promise<Image> {
  const index = await readLayout(dir);
  const candidates = index.manifests.filter(
    (entry) =>
      (selector.refName === undefined || entry.annotations?.[REF_NAME_ANNOTATION] === selector.refName) &&
      (selector.digest === undefined || entry.digest === selector.digest),
  );
  if (index.manifests.length === 0) throw new KilnError('LAYOUT', `The OCI layout ${dir} holds no images yet.`);
  if (candidates.length === 0) throw new KilnError('LAYOUT', `The OCI layout ${dir} has no entry ${describeSelector(selector)}; it has ${describeEntries(index)}.`);
  if (candidates.length === 1) return resolveImage(dir, candidates[0]!, selector.platform, 0);
  if (selector.platform === undefined) {
    throw new KilnError('LAYOUT', `The OCI layout ${dir} has ${candidates.length} entries ${describeSelector(selector)}; choose one by ref name or digest.`);
  }
  for (const candidate of candidates) {
    if (candidate.platform && !platformMatches(selector.platform, candidate.platform)) continue;
    const image = await resolveImage(dir, candidate, selector.platform, 0).catch((err: unknown) => {
      if (err instanceof KilnError && err.code === 'PLATFORM_NOT_FOUND') return undefined;
      throw err;
    });
    if (image && platformMatches(selector.platform, platformOfConfig(image.config))) return image;
  }
  throw new KilnError('PLATFORM_NOT_FOUND', `The OCI layout ${dir} has no image for the requested platform among its entries ${describeSelector(selector)}.`);
}

async function resolveImage(dir: string, descriptor: Descriptor, platform: Platform | undefined, depth: number): Promise<Image> {
  if (depth > MAX_NESTING) throw new KilnError('LAYOUT', `The OCI layout ${dir} nests indexes more than ${MAX_NESTING} deep; refusing it.`);
  const raw = await readMetadataBlob(dir, descriptor);
  const what = `${isImageIndex(descriptor.mediaType) ? 'index' : 'manifest'} ${descriptor.digest} in the OCI layout ${dir}`;
  const parsed = parseAnyManifest(raw, descriptor.mediaType, what);
  if (parsed.kind === 'index') {
    const chosen = selectManifest(parsed.index, platform ?? hostPlatform(), what);
    return resolveImage(dir, chosen, platform, depth + 1);
  }
  const rawConfig = await readMetadataBlob(dir, parsed.manifest.config);
  return imageFromParts({
    rawManifest: raw,
    rawConfig,
    mediaType: descriptor.mediaType,
    source: `image ${descriptor.digest} in the OCI layout ${dir}`,
    layers: (layer, diffId) =>
      fileLayer({ path: blobPath(dir, layer.digest), ...descriptorMetadata(layer, diffId) }),
  });
}

async function readMetadataBlob(dir: string, descriptor: Descriptor): Promise<Buffer> {
  if (descriptor.size > MAX_METADATA_BLOB) {
    throw new KilnError('LAYOUT', `Blob ${descriptor.digest} in the OCI layout ${dir} declares ${descriptor.size} bytes, too large for a manifest or config.`);
  }
  const path = blobPath(dir, descriptor.digest);
  let raw: Buffer;
  try {
    raw = await readFile(path);
  } catch (err) {
    throw new KilnError('LAYOUT', `The OCI layout ${dir} is missing blob ${descriptor.digest} (${describeError(err)}).`, { cause: err });
  }
  if (raw.length !== descriptor.size) {
    throw new KilnError('SIZE_MISMATCH', `Blob ${descriptor.digest} in the OCI layout ${dir} has ${raw.length} bytes but its descriptor declares ${descriptor.size}; refusing it.`);
  }
  verifyBytes(raw, descriptor.digest, `blob ${descriptor.digest} in the OCI layout ${dir}`);
  return raw;
}

function describeSelector(selector: LayoutSelector): string {
  const parts = [];
  if (selector.refName !== undefined) parts.push(`named "${selector.refName}"`);
  if (selector.digest !== undefined) parts.push(`with digest ${selector.digest}`);
  return parts.length > 0 ? parts.join(' and ') : '(any)';
}

function describeEntries(index: Index): string {
  const names = index.manifests.map((entry) => entry.annotations?.[REF_NAME_ANNOTATION] ?? entry.digest);
  return names.join(', ');
}

function wrapIo(err: unknown, context: string): unknown {
  if (err instanceof KilnError) return err;
  return new KilnError('IO', `${context}: ${describeError(err)}.`, { cause: err });
}
