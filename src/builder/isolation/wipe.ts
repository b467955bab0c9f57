// kaniko's model builds every stage in the executor's own `/`: before a stage's base image is
// extracted there, the previous stage's files must go. Only what kiln itself or the pod put
// there survives: the ignore list (the executor's directory, kernel filesystems, every mount
// point: the build context, secrets, volumes).
import { lstat, readdir, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { IgnoreList } from '../../snapshot/ignore.js';
import { KilnError, describeError } from '../../util/errors.js';

/**
 * Deletes everything under `rootDir` (`/` in the executor) except ignored paths and the
 * directories leading to them. Never follows a symlink and never crosses into a mount point:
 * mount points are on the ignore list.
 */
export async function wipeRoot(rootDir: string, ignore: IgnoreList): Promise<void> {
  await wipeDir(rootDir, '/', ignore);
}

async function wipeDir(hostDir: string, imageDir: string, ignore: IgnoreList): Promise<void> {
  for (const name of await readdir(hostDir)) {
    const imagePath = posix.join(imageDir, name);
    const hostPath = join(hostDir, name);
    if (ignore.isIgnored(imagePath)) continue;
    try {
      const stats = await lstat(hostPath);
      if (stats.isDirectory() && ignore.hasIgnoredBelow(imagePath)) await wipeDir(hostPath, imagePath, ignore);
      else await rm(hostPath, { recursive: true, force: true });
    } catch (err) {
      throw new KilnError('IO', `cannot remove ${imagePath} before the next stage: ${describeError(err)}.`, { cause: err });
    }
  }
}
