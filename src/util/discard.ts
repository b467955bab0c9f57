import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { renameSync, rmSync } from 'node:fs';
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
 * finishes after kiln has exited. When the rename fails, kiln deletes the tree itself.
 *
 * Synchronous, so that a process about to exit on a signal runs nothing between the rename
 * and its exit: an unfinished step could otherwise create the directory again.
 */
export function discardTree(dir: string, holdingDir: string): void {
  const discarded = join(holdingDir, DISCARDED_PREFIX + randomBytes(6).toString('hex'));
  try {
    renameSync(dir, discarded);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') rmSync(dir, { recursive: true, force: true });
    return;
  }
  const deleter = spawn(process.execPath, ['-e', DELETER, discarded], { detached: true, stdio: 'ignore' });
  // Node itself failing to start is all but impossible; kiln then deletes the tree after all.
  deleter.once('error', () => rmSync(discarded, { recursive: true, force: true }));
  deleter.unref();
}
