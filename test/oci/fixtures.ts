import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gzipSync } from 'node:zlib';
import { createRequire } from 'node:module';
import { pack as tarPack } from 'tar-stream';
import { streamLayer } from '../../src/oci/blob-layer.js';
import { sha256 } from '../../src/oci/digest.js';
import type { Layer } from '../../src/oci/layer.js';
import { layerMediaType, type Compression, type ManifestFlavor } from '../../src/oci/mediatypes.js';

/** A small tar archive built in memory (test layers are a few KiB); names ending in / are directories. */
export async function makeTar(files: Record<string, string>): Promise<Buffer> {
  const archive = tarPack();
  for (const [name, content] of Object.entries(files)) {
    if (name.endsWith('/')) archive.entry({ name, type: 'directory', mode: 0o755, mtime: new Date(0) });
    else archive.entry({ name, size: Buffer.byteLength(content), mode: 0o644, mtime: new Date(0) }, content);
  }
  archive.finalize();
  return readAll(archive as unknown as Readable);
}

export function compressBytes(data: Buffer, compression: Compression): Buffer {
  if (compression === 'gzip') return gzipSync(data);
  if (compression === 'zstd') {
    const zstd = createRequire(import.meta.url)('zstd-napi') as typeof import('zstd-napi');
    return zstd.compress(data);
  }
  return data;
}

export interface TestLayer {
  layer: Layer;
  tar: Buffer;
  blob: Buffer;
}

/** A layer holding `files`, its blob compressed as asked, served from memory. */
export async function memoryLayer(files: Record<string, string>, compression: Compression = 'gzip', flavor: ManifestFlavor = 'oci'): Promise<TestLayer> {
  const tar = await makeTar(files);
  const blob = compressBytes(tar, compression);
  const layer = streamLayer({
    digest: sha256(blob),
    diffId: sha256(tar),
    size: blob.length,
    mediaType: layerMediaType(flavor, compression),
    open: async () => Readable.from([blob]),
  });
  return { layer, tar, blob };
}

export async function readAll(stream: Readable | AsyncIterable<Buffer | Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

export function discard(): Writable {
  return new Writable({ write(_chunk, _encoding, callback) { callback(); } });
}

export async function drain(stream: Readable): Promise<void> {
  await pipeline(stream, discard());
}
