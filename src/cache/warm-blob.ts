/**
 * Blobs of the base-image cache. Each is streamed into a temporary file outside blobs/,
 * hashed on the way, and only renamed to its digest name once digest and size match: a
 * failed or interrupted download never leaves partial content in the layout, and a reader
 * (a build) never sees a blob change under it, because rename replaces atomically.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeBlobFile, type BlobContent } from '../oci/blob-file.js';
import type { Digest } from '../oci/digest.js';
import { blobPath } from '../oci/layout.js';
import { KilnError, describeError } from '../util/errors.js';

/** Where kiln keeps its temporary files inside a cache layout; nothing else lives there. */
export const WORK_DIR = '.kiln-warm';
const BLOB_PREFIX = 'blob-';
// A temporary untouched this long belongs to a warmer that died: a live download writes to it all the time.
const ABANDONED_AFTER_MS = 60 * 60 * 1000;

export interface StoreBlobOptions {
  /** Download again even when a blob of the right size is present (--force). */
  replace: boolean;
}

export async function hasBlob(dir: string, digest: Digest, size: number): Promise<boolean> {
  const file = await stat(blobPath(dir, digest)).catch(() => undefined);
  return file !== undefined && file.isFile() && file.size === size;
}

/**
 * Returns the number of bytes written: 0 when the blob was already there. A layer from a
 * registry downloads straight into the temporary file (see writeBlobFile).
 */
export async function storeBlob(dir: string, digest: Digest, size: number, content: BlobContent, options: StoreBlobOptions): Promise<number> {
  if (!options.replace && (await hasBlob(dir, digest, size))) return 0;
  const target = blobPath(dir, digest);
  const temporary = join(dir, WORK_DIR, `${BLOB_PREFIX}${randomBytes(8).toString('hex')}`);
  try {
    await mkdir(dirname(target), { recursive: true });
    await mkdir(dirname(temporary), { recursive: true });
    await writeBlobFile(temporary, digest, size, content);
    await rename(temporary, target);
  } catch (err) {
    await unlink(temporary).catch(() => undefined);
    if (err instanceof KilnError) throw err;
    throw new KilnError('IO', `Cannot store blob ${digest} in the cache directory ${dir}: ${describeError(err)}.`, { cause: err });
  }
  return size;
}

/** Removes temporaries left by warmers that were killed mid-download. */
export async function removeAbandonedTemporaries(dir: string, now: number): Promise<void> {
  const work = join(dir, WORK_DIR);
  const names = await readdir(work).catch(() => [] as string[]);
  for (const name of names) {
    const path = join(work, name);
    const file = await stat(path).catch(() => undefined);
    if (file && now - file.mtimeMs > ABANDONED_AFTER_MS) await unlink(path).catch(() => undefined);
  }
}
