import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** The names discarded trees wait under until their deleter is done. */
export const DISCARDED_PREFIX = '.kiln-discarded-';

// Run by a detached node: it outlives kiln, and node is there wherever kiln runs (in the
// executor image `/` is the built image, which may have no `rm`).
const DELETER = "require('node:fs').rmSync(process.argv[1], { recursive: true, force: true, maxRetries: 3 })";

/**
 * Removes a directory tree kiln made without making the build wait for it. Deleting a root
 * filesystem of 100,000 files takes seconds on many filesystems, and nothing after a build
 * needs them gone: the tree is renamed into `holdingDir` (on the same filesystem, outside
 * any directory kiln removes itself) and deleted there by a process of its own, which
 * finishes after kiln has exited. When that cannot start, kiln deletes the tree itself.
 */
export async function discardTree(dir: string, holdingDir: string): Promise<void> {
  const discarded = join(holdingDir, DISCARDED_PREFIX + randomBytes(6).toString('hex'));
  try {
    await rename(dir, discarded);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    await rm(dir, { recursive: true, force: true });
    return;
  }
  if (!(await startDeleter(discarded))) await rm(discarded, { recursive: true, force: true });
}

function startDeleter(dir: string): Promise<boolean> {
  return new Promise((resolve) => {
    const deleter = spawn(process.execPath, ['-e', DELETER, dir], { detached: true, stdio: 'ignore' });
    deleter.once('spawn', () => {
      deleter.unref();
      resolve(true);
    });
    deleter.once('error', () => resolve(false));
  });
}
