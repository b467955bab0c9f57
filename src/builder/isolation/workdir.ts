// A RUN command's working directory. Like Docker's WORKDIR, a missing directory is created
// (with its missing parents), owned by the user the command runs as, and stays in the image.
import { chown, lstat, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { KilnError } from '../../util/errors.js';
import { resolveInRoot, type RootPath } from './root-path.js';

export interface Owner {
  uid: number;
  gid: number;
}

export interface Workdir extends RootPath {
  /** The top-most directory (an image path) kiln had to create, when any. */
  created?: string;
}

/**
 * Makes sure `cwd` exists below `rootDir` and returns where it is, symlinks resolved. `owner`
 * is the host identity created directories get; without one they keep kiln's own.
 */
export async function ensureWorkdir(rootDir: string, cwd: string, owner: Owner | undefined): Promise<Workdir> {
  const resolved: Workdir = await resolveInRoot(rootDir, cwd);
  let current = rootDir;
  let imagePath = '';
  for (const part of resolved.imagePath.split('/').filter(Boolean)) {
    current = join(current, part);
    imagePath += `/${part}`;
    const stats = await lstat(current).catch(() => undefined);
    if (stats === undefined) {
      resolved.created ??= imagePath;
      await mkdir(current, { mode: 0o755 }).catch((error: NodeJS.ErrnoException) => {
        throw new KilnError('RUN_FAILED', `Cannot create the working directory ${cwd} in the image: ${error.message}.`, { cause: error });
      });
      if (owner) await chown(current, owner.uid, owner.gid);
    } else if (!stats.isDirectory()) {
      throw new KilnError('RUN_FAILED', `The working directory ${cwd} is not a directory in the image.`);
    }
  }
  return resolved;
}
