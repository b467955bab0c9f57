/**
 * index.json of the base-image cache, safe for several warmers at once (a CI matrix, a
 * DaemonSet on a shared volume): every change re-reads the file under a lock file and writes
 * the result to a temporary that is renamed over it, so a reader sees the old or the new
 * index, never half of one, and no warmer drops another's entry.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseIndex } from '../oci/image-builder.js';
import { MediaType } from '../oci/mediatypes.js';
import type { Index } from '../oci/types.js';
import { KilnError, describeError } from '../util/errors.js';
import { withFileLock } from './file-lock.js';
import { WORK_DIR } from './warm-blob.js';

// The name kiln's layer cache locks its layouts with too, so the two never race on one directory.
const LOCK_NAME = 'index.json.lock';

/** Makes `dir` an OCI layout (blobs/, oci-layout, an empty index.json) if it is not one yet. */
export async function ensureCacheLayout(dir: string): Promise<void> {
  try {
    await mkdir(join(dir, 'blobs'), { recursive: true });
    await mkdir(join(dir, WORK_DIR), { recursive: true });
    if (!(await exists(join(dir, 'oci-layout')))) {
      await writeAtomically(dir, join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    }
  } catch (err) {
    if (err instanceof KilnError) throw err;
    throw new KilnError('IO', `Cannot create the cache directory ${dir}: ${describeError(err)}; check --cache-dir and its permissions.`, { cause: err });
  }
  if (!(await exists(join(dir, 'index.json')))) await updateCacheIndex(dir, (index) => index);
}

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined)) !== undefined;
}

/** Applies `change` to the current index.json of the layout at `dir`, under the lock. */
export async function updateCacheIndex(dir: string, change: (index: Index) => Index): Promise<Index> {
  return withFileLock(join(dir, LOCK_NAME), async () => {
    const updated = change(await readCurrentIndex(dir));
    await writeAtomically(dir, join(dir, 'index.json'), JSON.stringify(updated));
    return updated;
  });
}

async function readCurrentIndex(dir: string): Promise<Index> {
  let raw: Buffer;
  try {
    raw = await readFile(join(dir, 'index.json'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] };
    throw new KilnError('IO', `Cannot read ${join(dir, 'index.json')}: ${describeError(err)}.`, { cause: err });
  }
  return parseIndex(raw, undefined, `index.json of the cache directory ${dir}`).index;
}

async function writeAtomically(dir: string, path: string, content: string): Promise<void> {
  const temporary = join(dir, WORK_DIR, `write-${randomBytes(8).toString('hex')}`);
  try {
    await writeFile(temporary, content, { flag: 'wx' });
    await rename(temporary, path);
  } catch (err) {
    await unlink(temporary).catch(() => undefined);
    throw new KilnError('IO', `Cannot write ${path}: ${describeError(err)}.`, { cause: err });
  }
}
