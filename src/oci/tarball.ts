import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pack as tarPack, type Pack } from 'tar-stream';
import { KilnError, describeError } from '../util/errors.js';
import { fileLayer, streamLayer } from './blob-layer.js';
import { COMPRESSION_MAGIC_LENGTH, detectCompression } from './compression.js';
import { DigestingStream, isDigest, parseDigest, sha256, type Digest } from './digest.js';
import type { Image } from './image.js';
import { imageFromParts, parseConfig } from './image-builder.js';
import type { Layer } from './layer.js';
import { MediaType, isForeignLayer, layerMediaType } from './mediatypes.js';
import { indexTar, resolveTarFile, type TarEntry } from './tar-index.js';
import type { Descriptor, Manifest } from './types.js';

/** One image of a `docker load` archive and the names it is loaded under. */
export interface TarballEntry {
  image: Image;
  /** Full references, e.g. `registry.example/app:1.0`. */
  tags: readonly string[];
}

/** One record of the archive's manifest.json, as `docker save` and go-containerregistry write it. */
interface TarballManifestRecord {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
  LayerSources?: Record<string, Descriptor>;
}

// Every entry gets the same header apart from name and size, so the archive's bytes depend on
// the images only (what kaniko's --tar-path writes through go-containerregistry).
const ENTRY_HEADER = { mode: 0o644, mtime: new Date(0), uid: 0, gid: 0, type: 'file' as const };

/**
 * Writes images in the `docker load` format: the config as `sha256:<hex>`, each compressed
 * layer blob as `<hex>.tar.gz` (the name go-containerregistry uses whatever the compression),
 * then manifest.json. Layers are streamed, never held in memory; a layer shared by several
 * images is written once. A path destination appears only once complete.
 */
export async function writeDockerTarball(destination: string | Writable, entries: readonly TarballEntry[]): Promise<void> {
  const images = mergeByDigest(entries);
  const manifestJson = Buffer.from(JSON.stringify(tarballManifest(images)));
  if (typeof destination !== 'string') {
    await writeArchive(destination, images, manifestJson);
    return;
  }
  const temporary = join(dirname(destination), `.${basename(destination)}.kiln-tmp-${randomBytes(6).toString('hex')}`);
  try {
    await writeArchive(createWriteStream(temporary, { flags: 'wx' }), images, manifestJson);
    await rename(temporary, destination);
  } catch (err) {
    await unlink(temporary).catch(() => undefined);
    if (err instanceof KilnError) throw err;
    throw new KilnError('IO', `Cannot write the image tarball ${destination}: ${describeError(err)}.`, { cause: err });
  }
}

function mergeByDigest(entries: readonly TarballEntry[]): { image: Image; tags: string[] }[] {
  const byDigest = new Map<string, { image: Image; tags: string[] }>();
  for (const { image, tags } of entries) {
    const known = byDigest.get(image.digest);
    if (known) known.tags.push(...tags.filter((tag) => !known.tags.includes(tag)));
    else byDigest.set(image.digest, { image, tags: [...tags] });
  }
  return [...byDigest.values()];
}

function tarballManifest(images: readonly { image: Image; tags: string[] }[]): TarballManifestRecord[] {
  const records = images.map(({ image, tags }) => {
    const record: TarballManifestRecord = {
      Config: image.manifest.config.digest,
      RepoTags: tags.length > 0 ? tags : null,
      Layers: image.layers.map(layerFileName),
    };
    const foreign = image.layers.filter((layer) => isForeignLayer(layer.mediaType));
    if (foreign.length > 0) {
      record.LayerSources = Object.fromEntries(foreign.map((layer) => [layer.diffId, foreignDescriptor(layer)]));
    }
    return record;
  });
  // Sorted by tags, as go-containerregistry does, so the same images give the same archive.
  return records.sort((a, b) => compareStrings((a.RepoTags ?? []).join(','), (b.RepoTags ?? []).join(',')));
}

function foreignDescriptor(layer: Layer): Descriptor {
  const descriptor: Descriptor = { mediaType: layer.mediaType, size: layer.size, digest: layer.digest };
  if (layer.urls) descriptor.urls = [...layer.urls];
  if (layer.annotations) descriptor.annotations = { ...layer.annotations };
  return descriptor;
}

function layerFileName(layer: Layer): string {
  return `${parseDigest(layer.digest).hex}.tar.gz`;
}

async function writeArchive(output: Writable, images: readonly { image: Image }[], manifestJson: Buffer): Promise<void> {
  const archive = tarPack();
  const drained = pipeline(archive as unknown as Readable, output);
  try {
    const written = new Set<string>();
    for (const { image } of images) {
      if (!written.has(image.manifest.config.digest)) {
        written.add(image.manifest.config.digest);
        await addBuffer(archive, image.manifest.config.digest, image.rawConfig);
      }
      for (const layer of image.layers) {
        const name = layerFileName(layer);
        if (written.has(name)) continue;
        written.add(name);
        await addStream(archive, name, layer.size, await layer.compressed());
      }
    }
    await addBuffer(archive, 'manifest.json', manifestJson);
    archive.finalize();
  } catch (err) {
    archive.destroy(err as Error);
    await drained.catch(() => undefined);
    throw err;
  }
  await drained;
}

function addBuffer(archive: Pack, name: string, content: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    archive.entry({ ...ENTRY_HEADER, name, size: content.length }, content, (err) => (err ? reject(err) : resolve()));
  });
}

/** Streams one entry whose size is known up front; tar-stream refuses a stream of another size. */
async function addStream(archive: Pack, name: string, size: number, content: Readable): Promise<void> {
  let entry!: Writable;
  const added = new Promise<void>((resolve, reject) => {
    entry = archive.entry({ ...ENTRY_HEADER, name, size }, (err) => (err ? reject(err) : resolve())) as unknown as Writable;
  });
  await Promise.all([pipeline(content, entry), added]);
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/* ---------- reading ---------- */

export interface ReadTarballOptions {
  /** Which image of a multi-image archive, by one of its RepoTags. */
  tag?: string;
}

/**
 * Reads one image from a `docker save` / `docker load` archive: what kiln and kaniko write
 * (gzip layers), and what `docker save` and `skopeo copy … docker-archive:` write
 * (uncompressed layers, possibly behind symlinks). Layers stay in the archive and are streamed
 * from their offsets; an uncompressed layer is presented as such, so its digest is its diffId.
 */
export async function readDockerTarball(path: string, options: ReadTarballOptions = {}): Promise<Image> {
  const entries = await indexTar(path);
  const records = parseTarballManifest(await readSmallEntry(path, entries, 'manifest.json'), path);
  const record = chooseRecord(records, options.tag, path);
  const rawConfig = await readSmallEntry(path, entries, record.Config);
  const config = parseConfig(rawConfig, `the config of ${path}`);
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== record.Layers.length) {
    throw new KilnError('INVALID_CONFIG', `The config in ${path} lists ${diffIds.length} layer diff_ids but manifest.json lists ${record.Layers.length} layers; the archive is inconsistent.`);
  }
  const layers: Layer[] = [];
  for (const [i, name] of record.Layers.entries()) {
    layers.push(await tarballLayer(path, entries, name, diffIds[i]!, record.LayerSources?.[diffIds[i]!]));
  }
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.dockerManifest,
    config: { mediaType: MediaType.dockerConfig, digest: sha256(rawConfig), size: rawConfig.length },
    layers: layers.map((layer) => descriptorOf(layer)),
  };
  return imageFromParts({ rawManifest: Buffer.from(JSON.stringify(manifest)), rawConfig, layers, source: `the image in ${path}` });
}

function descriptorOf(layer: Layer): Descriptor {
  const descriptor: Descriptor = { mediaType: layer.mediaType, digest: layer.digest, size: layer.size };
  if (layer.urls) descriptor.urls = [...layer.urls];
  if (layer.annotations) descriptor.annotations = { ...layer.annotations };
  return descriptor;
}

async function tarballLayer(path: string, entries: ReadonlyMap<string, TarEntry>, name: string, diffId: Digest, foreign: Descriptor | undefined): Promise<Layer> {
  const entry = resolveTarFile(entries, name);
  if (foreign && !entry) {
    // A foreign layer may be left out of the archive: whoever runs the image fetches it from its URLs.
    return streamLayer({
      digest: foreign.digest,
      diffId,
      size: foreign.size,
      mediaType: foreign.mediaType,
      ...(foreign.urls ? { urls: foreign.urls } : {}),
      open: () => Promise.reject(new KilnError('TARBALL', `Foreign layer ${foreign.digest} is not in ${path}; it can only be fetched from ${foreign.urls?.join(', ') ?? 'its URLs'}.`)),
    });
  }
  if (!entry) throw new KilnError('TARBALL', `${path} lists layer ${name} in manifest.json but does not contain it.`);
  const location = { path, offset: entry.offset };
  if (foreign) {
    return fileLayer({ ...location, digest: foreign.digest, diffId, size: foreign.size, mediaType: foreign.mediaType, ...(foreign.urls ? { urls: foreign.urls } : {}) });
  }
  const compression = detectCompression(await readRange(path, entry.offset, Math.min(COMPRESSION_MAGIC_LENGTH, entry.size)));
  if (compression === 'none') {
    return fileLayer({ ...location, digest: diffId, diffId, size: entry.size, mediaType: MediaType.dockerLayer });
  }
  // The file name carries the digest when go-containerregistry or docker wrote the archive;
  // fileLayer checks it on every read. Other names cost one hashing pass here.
  const digest = digestFromName(entry.name) ?? (await hashRange(path, entry.offset, entry.size));
  return fileLayer({ ...location, digest, diffId, size: entry.size, mediaType: layerMediaType('docker', compression) });
}

function digestFromName(name: string): Digest | undefined {
  const match = /(?:^|\/)(?:sha256[:/])?([a-f0-9]{64})(?:\.tar\.gz|\.tar\.zst|\.tgz)?$/.exec(name);
  const digest = match ? `sha256:${match[1]}` : undefined;
  return digest && isDigest(digest) ? digest : undefined;
}

async function hashRange(path: string, offset: number, size: number): Promise<Digest> {
  const digesting = new DigestingStream();
  const source = size === 0 ? [] : createReadStream(path, { start: offset, end: offset + size - 1, highWaterMark: 1 << 20 });
  await pipeline(source, digesting, async (chunks: AsyncIterable<Buffer>) => {
    for await (const _chunk of chunks);
  });
  return digesting.digest;
}

function parseTarballManifest(raw: Buffer, path: string): TarballManifestRecord[] {
  let records: unknown;
  try {
    records = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new KilnError('TARBALL', `The manifest.json of ${path} is not valid JSON.`, { cause: err });
  }
  const valid =
    Array.isArray(records) &&
    records.length > 0 &&
    records.every(
      (r: Partial<TarballManifestRecord>) =>
        r !== null && typeof r === 'object' && typeof r.Config === 'string' && Array.isArray(r.Layers) && r.Layers.every((l) => typeof l === 'string') && (r.RepoTags == null || Array.isArray(r.RepoTags)),
    );
  if (!valid) throw new KilnError('TARBALL', `The manifest.json of ${path} is not a list of {Config, RepoTags, Layers} records.`);
  return records as TarballManifestRecord[];
}

function chooseRecord(records: readonly TarballManifestRecord[], tag: string | undefined, path: string): TarballManifestRecord {
  const tagsOf = (record: TarballManifestRecord) => record.RepoTags ?? [];
  if (tag !== undefined) {
    const match = records.find((record) => tagsOf(record).includes(tag));
    if (!match) throw new KilnError('TARBALL', `${path} has no image tagged ${tag}; it has ${records.flatMap(tagsOf).join(', ') || 'only untagged images'}.`);
    return match;
  }
  if (records.length > 1) {
    throw new KilnError('TARBALL', `${path} holds ${records.length} images; name one by tag (${records.flatMap(tagsOf).join(', ') || 'none is tagged'}).`);
  }
  return records[0]!;
}

async function readSmallEntry(path: string, entries: ReadonlyMap<string, TarEntry>, name: string): Promise<Buffer> {
  const entry = resolveTarFile(entries, name);
  if (!entry) throw new KilnError('TARBALL', `${path} has no ${name}; it is not a docker save / docker load archive.`);
  if (entry.size > 64 << 20) throw new KilnError('TARBALL', `${name} in ${path} is ${entry.size} bytes, too large for a manifest or config.`);
  return readRange(path, entry.offset, entry.size);
}

async function readRange(path: string, offset: number, length: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, offset);
    if (bytesRead < length) throw new KilnError('TARBALL', `${path} is truncated: an entry ends past the end of the file.`);
    return buffer;
  } finally {
    await handle.close();
  }
}
