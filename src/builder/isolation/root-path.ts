// Paths inside an image's root directory, resolved the way a process chrooted into it would
// see them: symlinks are followed relative to the root (an absolute link target starts at
// the root, not at the host's `/`) and `..` never climbs above the root. kiln resolves every
// path it creates, mounts over or executes this way, so an image's symlinks can never point
// kiln at the host's own files.
import { lstat, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { KilnError } from '../../util/errors.js';

/** Linux's own limit on symlinks followed while resolving one path. */
const MAX_SYMLINKS = 40;

export interface RootPath {
  /** The path as the image sees it, symlinks resolved: always absolute. */
  imagePath: string;
  /** The same path on the host: `root` joined with `imagePath`. */
  hostPath: string;
}

/**
 * Resolves `path` (absolute inside the image) below `root`. Components that do not exist are
 * kept as written, so the result also names files kiln is about to create.
 */
export async function resolveInRoot(root: string, path: string): Promise<RootPath> {
  const pending = components(path);
  let resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const hostPath = join(root, ...resolved, part);
    const stats = await lstat(hostPath).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
      throw new KilnError('IO', `Cannot read ${hostPath}: ${error.message}.`, { cause: error });
    });
    if (stats?.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) {
        throw new KilnError('ISOLATION', `Too many levels of symbolic links in ${path} inside the image.`);
      }
      const target = await readlink(hostPath);
      if (target.startsWith('/')) resolved = [];
      pending.unshift(...components(target));
      continue;
    }
    resolved.push(part);
  }
  const imagePath = '/' + resolved.join('/');
  return { imagePath, hostPath: join(root, imagePath) };
}

/** Absolute image path of `path`, relative ones taken from `cwd`. */
export function absoluteImagePath(path: string, cwd: string): string {
  return posix.resolve('/', cwd, path);
}

function components(path: string): string[] {
  return path.split('/').filter((part) => part !== '' && part !== '.');
}
