// What the layers of an image in an OCI layout contain, read with tar-stream and zlib rather
// than kiln's own code: the entry names of each layer, in order.
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extract } from 'tar-stream';

interface Descriptor {
  digest: string;
  mediaType?: string;
  annotations?: Record<string, string>;
}

function blobPath(layoutDir: string, digest: string): string {
  return join(layoutDir, 'blobs', ...digest.split(':'));
}

/** The manifest of `tag` in the layout (a single-image layout as skopeo writes it). */
export async function layoutManifest(layoutDir: string, tag: string): Promise<{ config: Descriptor; layers: Descriptor[] }> {
  const index = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!entry) throw new Error(`${layoutDir} has no image tagged ${tag}`);
  return JSON.parse(await readFile(blobPath(layoutDir, entry.digest), 'utf8'));
}

export interface ImageConfig {
  config?: { Env?: string[]; Entrypoint?: string[]; Cmd?: string[]; WorkingDir?: string; Volumes?: Record<string, unknown> };
}

/** The image configuration of `tag` in the layout. */
export async function layoutConfig(layoutDir: string, tag: string): Promise<ImageConfig> {
  const manifest = await layoutManifest(layoutDir, tag);
  return JSON.parse(await readFile(blobPath(layoutDir, manifest.config.digest), 'utf8')) as ImageConfig;
}

/** Entry names of every layer, without a leading `./` or `/`. */
export async function layerEntries(layoutDir: string, tag: string): Promise<string[][]> {
  const manifest = await layoutManifest(layoutDir, tag);
  const result: string[][] = [];
  for (const layer of manifest.layers) {
    const names: string[] = [];
    const parser = extract();
    parser.on('entry', (header, stream, next) => {
      names.push(header.name.replace(/^\.?\//, ''));
      stream.on('end', next);
      stream.resume();
    });
    const gzipped = !layer.mediaType || layer.mediaType.endsWith('gzip');
    const blob = createReadStream(blobPath(layoutDir, layer.digest));
    if (gzipped) await pipeline(blob, createGunzip(), parser);
    else await pipeline(blob, parser);
    result.push(names);
  }
  return result;
}
