// Mount points a chroot RUN needs but the image may lack (/proc, /dev, /sys, /etc,
// /etc/resolv.conf, /etc/hosts). kiln creates the missing ones before the command and
// removes them afterwards, restoring the times of the directory they were made in (right
// after making them as well), so that the snapshot of the root after the step shows nothing
// kiln added for its own use.
import { lstat, mkdir, rmdir, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KilnError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { resolveInRoot } from './root-path.js';

export type MountPointKind = 'directory' | 'file';

interface Created {
  hostPath: string;
  kind: MountPointKind;
}

interface Times {
  hostPath: string;
  atimeMs: number;
  mtimeMs: number;
}

export class Placeholders {
  private readonly created: Created[] = [];
  private readonly times: Times[] = [];

  constructor(private readonly rootDir: string) {}

  /** The host path to mount over for `path` in the image, created if missing. */
  async ensure(path: string, kind: MountPointKind): Promise<string> {
    const { imagePath, hostPath } = await resolveInRoot(this.rootDir, path);
    const parts = imagePath.split('/').filter(Boolean);
    let current = this.rootDir;
    for (const [index, part] of parts.entries()) {
      const parent = current;
      current = join(current, part);
      const last = index === parts.length - 1;
      const want: MountPointKind = last ? kind : 'directory';
      const stats = await lstat(current).catch(() => undefined);
      if (stats) {
        const fits = want === 'directory' ? stats.isDirectory() : !stats.isDirectory();
        if (!fits) throw new KilnError('ISOLATION', `The image's ${path} is not a ${want}, so kiln cannot mount over it.`);
        continue;
      }
      const times = await this.timesOf(parent);
      try {
        if (want === 'directory') await mkdir(current, { mode: 0o755 });
        else await writeFile(current, '', { flag: 'wx', mode: 0o644 });
      } catch (error) {
        throw new KilnError('ISOLATION', `Cannot create ${path} in the image to mount over it: ${(error as Error).message}.`, { cause: error });
      }
      if (times) this.times.push(times);
      // Put back at once too: a RUN on an overlay sees the directory as it is now.
      const before = this.times.find((t) => t.hostPath === parent);
      if (before) await restoreTimes(before);
      this.created.push({ hostPath: current, kind: want });
    }
    return hostPath;
  }

  /** Removes what `ensure` created, newest first; anything the command filled in stays. */
  async remove(logger: Logger): Promise<void> {
    for (const { hostPath, kind } of this.created.reverse()) {
      try {
        if (kind === 'directory') await rmdir(hostPath);
        else await unlink(hostPath);
      } catch (error) {
        logger.warn({ path: hostPath, err: error }, 'could not remove a mount point kiln created in the image');
      }
    }
    this.created.length = 0;
    for (const times of this.times.reverse()) {
      await restoreTimes(times).catch((error: unknown) => {
        logger.debug({ path: times.hostPath, err: error }, 'could not restore the times of a directory in the image');
      });
    }
    this.times.length = 0;
  }

  /** The times of `dir` before kiln's first change to it; none for a directory kiln made. */
  private async timesOf(dir: string): Promise<Times | undefined> {
    if (this.times.some((t) => t.hostPath === dir) || this.created.some((c) => c.hostPath === dir)) return undefined;
    const stats = await lstat(dir);
    return { hostPath: dir, atimeMs: stats.atimeMs, mtimeMs: stats.mtimeMs };
  }
}

function restoreTimes({ hostPath, atimeMs, mtimeMs }: Times): Promise<void> {
  return utimes(hostPath, atimeMs / 1000, mtimeMs / 1000);
}
