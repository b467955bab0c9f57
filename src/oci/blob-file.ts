import { open, unlink, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { KilnError } from '../util/errors.js';
import { pourStream } from './blob-sink.js';
import { DigestVerifier, type Digest } from './digest.js';
import { fileSink } from './file-sink.js';
import type { Layer } from './layer.js';
import { writeLayerTo } from './layer-blob.js';

/** A blob's content: its bytes (manifests, configs), a layer, or a function opening a stream of it. */
export type BlobContent = Buffer | Layer | (() => Promise<Readable>);

/**
 * Writes a blob into `path`, a new file, and resolves once every byte is written and digest
 * and size have matched; on any failure the file is removed. A layer goes through its own
 * `writeTo` (a registry layer downloads straight into the file, verified on the way, hashed
 * once); bytes and streams are checked here.
 */
export async function writeBlobFile(path: string, digest: Digest, size: number, content: BlobContent): Promise<void> {
  const what = `blob ${digest}`;
  if (!Buffer.isBuffer(content) && typeof content !== 'function' && (content.digest !== digest || content.size !== size)) {
    throw new KilnError('INTERNAL', `${what} of ${size} bytes was to be written from layer ${content.digest} of ${content.size} bytes.`);
  }
  const file = await open(path, 'wx');
  try {
    await fill(file, digest, size, content, what);
    await file.close();
  } catch (err) {
    await file.close().catch(() => undefined);
    await unlink(path).catch(() => undefined);
    throw err;
  }
}

async function fill(file: FileHandle, digest: Digest, size: number, content: BlobContent, what: string): Promise<void> {
  if (Buffer.isBuffer(content)) {
    const verifier = new DigestVerifier(digest, size, what);
    verifier.update(content);
    verifier.finish();
    await file.writeFile(content);
  } else if (typeof content === 'function') {
    await pourStream(await content(), fileSink(file), new DigestVerifier(digest, size, what));
  } else {
    await writeLayerTo(content, fileSink(file));
  }
}
