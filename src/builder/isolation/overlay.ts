// A chroot RUN on an overlay: the command sees the root as it is, but what it writes lands in
// an upper directory beside the root. Afterwards kiln moves the upper directory's entries
// into the root and hands the snapshotter exactly the paths that moved, so a step that wrote
// one file does not walk a root of 100,000 (buildah takes a layer from its overlay the same
// way). A command that fails leaves the root as it was: its upper directory is dropped.
//
// The init mounts the overlay first thing in the command's mount namespace: the root is
// bound to `lower` (where the init can still list what the root had) and the overlay is
// mounted over the root itself, so the other mounts and the chroot go through it unchanged.
// The namespace, and with it the overlay, is gone when the init exits. Where the mount
// fails (no overlayfs, a root already on overlayfs), the command writes to the root directly
// and kiln walks the root, as it does with the `none` isolation.
//
// redirect_dir, index and metacopy are off, so the upper directory holds only plain copies,
// whiteouts and opaque directories; `volatile` skips the syncs a copy-up makes, which kiln
// does not need for a directory it discards on any failure.
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import type { SetupStep } from './init.js';
import { mountTable } from './mounts.js';
import type { RunChanges } from './types.js';

/** The directories the init needs to mount the overlay and, afterwards, to find its opaque directories. */
export interface OverlayPlan {
  steps: SetupStep[];
  lower: string;
  upper: string;
  merged: string;
}

/** What the init says about the overlay after the command (see init.ts). */
export type OverlayReport =
  | { kind: 'mounted'; opaque: string[] }
  | { kind: 'unavailable'; reason: string }
  | { kind: 'unreadable'; reason: string };

export type OverlayScratchResult = { kind: 'ready'; scratch: OverlayScratch } | { kind: 'unavailable'; reason: string };

/** Characters overlayfs options or kiln's mount table cannot carry in a path. */
const UNMOUNTABLE = /[,:\\\s]/;

export class OverlayScratch {
  private constructor(
    private readonly rootDir: string,
    private readonly dir: string,
    /** The upper directory's own metadata as prepared: the root's, so that a change to it shows. */
    private readonly upperPrepared: Stats,
  ) {}

  /**
   * Scratch directories beside `rootDir`, on its filesystem: the upper directory's entries
   * are renamed into the root, which only works within one filesystem.
   */
  static async beside(rootDir: string): Promise<OverlayScratchResult> {
    if (rootDir === '/' || UNMOUNTABLE.test(rootDir)) return { kind: 'unavailable', reason: `the root directory ${rootDir} cannot be an overlay's lower directory` };
    let dir: string;
    try {
      dir = await mkdtemp(join(dirname(rootDir), '.kiln-overlay-'));
    } catch (error) {
      return { kind: 'unavailable', reason: `cannot create a directory beside ${rootDir}: ${(error as Error).message}` };
    }
    const discard = async (reason: string): Promise<OverlayScratchResult> => {
      await rm(dir, { recursive: true, force: true });
      return { kind: 'unavailable', reason };
    };
    try {
      if (UNMOUNTABLE.test(dir)) return await discard(`the directory ${dir} cannot be named in overlay options`);
      const [rootStats, dirStats] = await Promise.all([stat(rootDir), stat(dir)]);
      if (rootStats.dev !== dirStats.dev) return await discard(`${rootDir} is a filesystem of its own`);
      await Promise.all(['lower', 'upper', 'work'].map((name) => mkdir(join(dir, name))));
      const upper = join(dir, 'upper');
      await takeMetadata(upper, await lstat(rootDir));
      return { kind: 'ready', scratch: new OverlayScratch(rootDir, dir, await lstat(upper)) };
    } catch (error) {
      return await discard(`cannot prepare ${dir}: ${(error as Error).message}`);
    }
  }

  private get lower(): string {
    return join(this.dir, 'lower');
  }

  private get upper(): string {
    return join(this.dir, 'upper');
  }

  /** The init's steps to mount the overlay over the root; `tableDir` holds their mount table. */
  plan(tableDir: string): OverlayPlan {
    const options = [`lowerdir=${this.lower}`, `upperdir=${this.upper}`, `workdir=${join(this.dir, 'work')}`, 'redirect_dir=off', 'index=off', 'metacopy=off', 'volatile'];
    const steps = mountTable(
      [
        { source: this.rootDir, target: this.lower, type: 'none', options: 'bind' },
        { source: 'overlay', target: this.rootDir, type: 'overlay', options: options.join(',') },
      ],
      join(tableDir, 'mounts-overlay'),
      'mounting the overlay over the root',
    );
    return { steps, lower: this.lower, upper: this.upper, merged: this.rootDir };
  }

  /**
   * Moves the upper directory's entries into the root, once the overlay is unmounted: a
   * whiteout deletes, an opaque or new directory replaces whatever was there, a directory
   * both have is merged entry by entry.
   */
  async merge(opaque: readonly string[]): Promise<RunChanges> {
    const changes: RunChanges = { subtrees: [], entries: [] };
    const rootBefore = await lstat(this.rootDir);
    await this.mergeDir('', new Set(opaque), changes);
    await this.settleDirectory('/', this.rootDir, await lstat(this.upper), this.upperPrepared, rootBefore, changes);
    return changes;
  }

  /**
   * A directory both layers have: it takes the upper one's owner, mode and times when the
   * command changed them (from `reference`, what they were before), and is reported then.
   * Otherwise it keeps its own times, which the renames into it moved.
   */
  private async settleDirectory(path: string, to: string, upper: Stats, reference: Stats, before: Stats, changes: RunChanges): Promise<void> {
    const changed = upper.mode !== reference.mode || upper.uid !== reference.uid || upper.gid !== reference.gid || upper.mtimeMs !== reference.mtimeMs;
    if (changed) {
      await takeMetadata(to, upper);
      changes.entries.push(path);
    } else {
      await utimes(to, before.atimeMs / 1000, before.mtimeMs / 1000);
    }
  }

  private async mergeDir(dir: string, opaque: ReadonlySet<string>, changes: RunChanges): Promise<void> {
    for (const name of await readdir(this.upper + dir)) {
      const path = `${dir}/${name}`;
      const from = this.upper + path;
      const to = this.rootDir + path;
      const stats = await lstat(from);
      const existing = await lstat(to).catch(() => undefined);
      if (isWhiteout(stats)) {
        if (existing) await rm(to, { recursive: true, force: true });
        changes.subtrees.push(path);
        continue;
      }
      if (stats.isDirectory() && existing?.isDirectory() && !opaque.has(path)) {
        await this.mergeDir(path, opaque, changes);
        // A copy-up keeps the lower directory's times exactly: equal times mean the command left them.
        await this.settleDirectory(path, to, stats, existing, existing, changes);
        continue;
      }
      const replacesDirectory = existing?.isDirectory() === true;
      if (existing && (replacesDirectory || stats.isDirectory())) await rm(to, { recursive: true, force: true });
      await rename(from, to);
      (stats.isDirectory() || replacesDirectory ? changes.subtrees : changes.entries).push(path);
    }
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** overlayfs marks a deleted path with a character device 0:0 of the same name. */
function isWhiteout(stats: Stats): boolean {
  return stats.isCharacterDevice() && stats.rdev === 0;
}

/** A directory's owner, mode and times as the command left them (renames into it moved its times). */
async function takeMetadata(path: string, stats: Stats): Promise<void> {
  await chown(path, stats.uid, stats.gid);
  await chmod(path, stats.mode & 0o7777);
  await utimes(path, stats.atimeMs / 1000, stats.mtimeMs / 1000);
}
