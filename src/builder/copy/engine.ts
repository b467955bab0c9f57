// Writes what COPY and ADD bring into the image, and describes it for cache keys in the same
// walk. Everything is synchronous: per-file promises would cost more than the syscalls for
// trees of small files, and the build waits for the copy anyway. Without a destination the
// engine only reads and hashes, so a plan gets the same description a copy would.
import {
  chmodSync,
  readFileSync,
  closeSync,
  constants,
  copyFileSync,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeSync,
  fstatSync,
  type Dirent,
  type Stats,
} from 'node:fs';
import { dirname, join, posix } from 'node:path';
import type { XXHashAPI } from 'xxhash-wasm';
import type { IgnoreMatcher } from '../../dockerfile/dockerignore.js';
import { makeNode } from '../../snapshot/extract-device.js';
import type { IgnoreList } from '../../snapshot/ignore.js';
import { KilnError, describeError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import type { ModeChange } from './chmod.js';
import { copyError } from './errors.js';
import type { SourceDigestInput, SourceKind } from './types.js';

/** Files from this size on are copied by the kernel (a reflink where the filesystem can). */
const KERNEL_COPY_FROM = 8 << 20;
const BUFFER_SIZE = 1 << 20;
const CREATE_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const OPEN_NOFOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW;

/** A path being written: on the host, and as the image sees it. */
export interface Target {
  host: string;
  image: string;
}

export interface EngineOptions {
  where: string;
  /** Host directory of the image's root; undefined: describe only, write nothing. */
  rootDir: string | undefined;
  owner: { uid: number; gid: number };
  chmod: ModeChange | undefined;
  sourceIgnore: IgnoreMatcher | undefined;
  exclude: IgnoreMatcher | undefined;
  ignore: IgnoreList | undefined;
  hasher: XXHashAPI;
  logger: Logger;
}

/** A directory that is created only once something below it is copied (an ignored directory with exceptions). */
interface PendingDir {
  made: boolean;
  make(): void;
}

export class CopyEngine {
  readonly written = new Set<string>();
  readonly digests: SourceDigestInput[] = [];
  private readonly buffer = Buffer.allocUnsafe(BUFFER_SIZE);
  /** Source inode (dev:ino) to where its first copy went and its content hash, for hardlinks. */
  private readonly links = new Map<string, { host: string; hash: string }>();
  private chownAllowed = true;
  /** Destination directories with the setgid bit: what is created in them takes their group. */
  private readonly setgidDirs = new Set<string>();
  private readonly umask = currentUmask();
  private readonly euid = process.geteuid?.() ?? 0;
  private readonly egid = process.getegid?.() ?? 0;

  constructor(private readonly options: EngineOptions) {}

  /**
   * Makes sure the directory `image` (already resolved inside the root) exists: missing
   * components are created 0755 and owned like the copied files, as BuildKit creates them.
   */
  ensureDir(image: string): Target {
    const rootDir = this.options.rootDir!;
    let host = rootDir;
    let current = '';
    for (const part of image.split('/').filter((p) => p !== '')) {
      host = join(host, part);
      current += '/' + part;
      const stats = this.lstat(host);
      if (stats === undefined) {
        this.io(`create directory ${current}`, () => {
          mkdirSync(host, 0o755);
          this.chown(host, current);
          chmodSync(host, 0o755);
        });
        this.written.add(current);
      } else if (!stats.isDirectory()) {
        throw copyError(this.options.where, 'COPY_DEST', `cannot create ${image} because ${current} is not a directory in the image; remove it first or choose another destination.`);
      } else if ((stats.mode & 0o2000) !== 0) {
        this.setgidDirs.add(host);
      }
    }
    return { host, image: current || '/' };
  }

  /**
   * Copies the contents of directory `srcHost` into `dest` (an existing directory). `srcRel`
   * is its path from the source root, for .dockerignore and the description.
   */
  copyDirContents(srcHost: string, srcRel: string, dest: Target | undefined): void {
    this.walk(srcHost, srcRel, '', dest, undefined);
  }

  /**
   * Copies one non-directory source to `dest` (its full path), unless --exclude names it.
   * `excludeRel` is the path --exclude patterns see: the source's own name.
   */
  copyEntry(srcHost: string, stats: Stats, srcRel: string, excludeRel: string, dest: Target | undefined): void {
    if (this.options.exclude?.ignores(excludeRel, false)) return;
    if (dest !== undefined && this.isIgnoredDest(dest)) return;
    this.copyNonDir(srcHost, stats, srcRel, dest);
  }

  /** Writes a heredoc source: mode 0644 (before --chmod), now as its time, like BuildKit. */
  writeInline(name: string, content: string, dest: Target | undefined): void {
    const bytes = Buffer.from(content, 'utf8');
    this.digests.push({ path: `<<${name}`, kind: 'file', mode: 0o644, size: bytes.length, contentHash: this.hex(this.options.hasher.h64Raw(bytes)) });
    if (dest === undefined || this.isIgnoredDest(dest)) return;
    const mode = this.mode(0o644, false);
    const atCreation = this.exactAtCreation(mode);
    const fd = this.createFile(dest, atCreation ? mode : 0o600);
    const now = Date.now() / 1000;
    this.io(`write ${dest.image}`, () => {
      try {
        this.writeAll(fd, bytes, bytes.length);
        this.finishFd(fd, dest, atCreation ? undefined : mode, now, now);
      } finally {
        closeSync(fd);
      }
    });
    this.written.add(dest.image);
  }

  /** Moves a verified download into place: mode 0600 (before --chmod), Last-Modified as its time. */
  placeDownload(tempPath: string, mtime: Date | undefined, dest: Target): void {
    if (this.isIgnoredDest(dest)) return;
    this.clearFor(dest, 'file');
    this.io(`write ${dest.image}`, () => {
      try {
        renameSync(tempPath, dest.host);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
        copyFileSync(tempPath, dest.host, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
        rmSync(tempPath, { force: true });
      }
      const time = (mtime?.getTime() ?? Date.now()) / 1000;
      const fd = openSync(dest.host, OPEN_NOFOLLOW);
      try {
        // Made in the temporary directory, whose group rules are not the destination's.
        this.finishFd(fd, dest, this.mode(0o600, false), time, time, true);
      } finally {
        closeSync(fd);
      }
    });
    this.written.add(dest.image);
  }

  /** Records a source that is described but not read here (a URL). */
  describe(input: SourceDigestInput): void {
    this.digests.push(input);
  }

  /** The xxh64 of a file's content, read in slabs. */
  hashFile(host: string): string {
    return this.io(`read ${host}`, () => {
      const fd = openSync(host, 'r');
      try {
        return this.pump(fd, undefined, Infinity);
      } finally {
        closeSync(fd);
      }
    });
  }

  /** Whether the image path is on kiln's ignore list: nothing is written there. */
  isIgnoredDest(dest: Target): boolean {
    if (this.options.ignore?.isIgnored(dest.image) !== true) return false;
    this.options.logger.debug({ path: dest.image }, 'COPY/ADD destination is on the ignore list; not written');
    return true;
  }

  /* ---------- the walk ---------- */

  /**
   * Copies the entries of `srcHost` into `dest`. `exRel` is the path from the copied source,
   * which --exclude patterns see. Returns whether anything was copied (or would be).
   */
  private walk(srcHost: string, srcRel: string, exRel: string, dest: Target | undefined, pending: PendingDir | undefined): boolean {
    const { sourceIgnore, exclude } = this.options;
    let copied = false;
    for (const entry of this.list(srcHost)) {
      const name = entry.name;
      const childHost = join(srcHost, name);
      const childRel = srcRel === '' ? name : `${srcRel}/${name}`;
      const childEx = exRel === '' ? name : `${exRel}/${name}`;
      const isDir = entry.isDirectory();
      // An ignored directory is still entered when an exception may bring back something below it.
      let partial = false;
      if (sourceIgnore?.ignores(childRel, isDir)) {
        if (!isDir || !sourceIgnore.mayContainIncluded(childRel)) continue;
        partial = true;
      }
      if (exclude?.ignores(childEx, isDir)) {
        if (!isDir || !exclude.mayContainIncluded(childEx)) continue;
        partial = true;
      }
      const child = dest === undefined ? undefined : { host: join(dest.host, name), image: posix.join(dest.image, name) };
      if (child !== undefined && this.isIgnoredDest(child)) continue;
      if (entry.isSocket()) {
        this.options.logger.debug({ path: childRel }, 'socket in a COPY source skipped');
        continue;
      }
      // A file is opened and then looked at (fstat needs no second path lookup); other kinds
      // are looked at by name. An entry that vanished meanwhile is left out, as if never there.
      const opened = entry.isFile() ? this.openSource(childHost, childRel) : undefined;
      const stats = opened !== undefined ? this.io(`look at ${childRel}`, () => fstatSync(opened)) : this.lstat(childHost);
      if (stats === undefined || stats.isDirectory() !== isDir) {
        if (opened !== undefined) closeSync(opened);
        continue;
      }
      if (isDir) {
        const dir = this.pendingDir(childHost, stats, childRel, child, pending);
        if (!partial) dir.make();
        if (this.walk(childHost, childRel, childEx, child, dir) || !partial) copied = true;
        if (dir.made && child !== undefined) this.finishDir(child, stats);
        continue;
      }
      try {
        pending?.make();
      } catch (err) {
        if (opened !== undefined) closeSync(opened);
        throw err;
      }
      this.copyNonDir(childHost, stats, childRel, child, opened);
      copied = true;
    }
    return copied;
  }

  /** A directory of the copy, made (and described) when `make` is first called. */
  private pendingDir(srcHost: string, stats: Stats, srcRel: string, dest: Target | undefined, parent: PendingDir | undefined): PendingDir {
    const dir: PendingDir = {
      made: false,
      make: () => {
        if (dir.made) return;
        parent?.make();
        dir.made = true;
        this.digests.push({ path: srcRel, kind: 'dir', mode: stats.mode & 0o7777, size: 0, contentHash: '' });
        if (dest === undefined) return;
        this.io(`create directory ${dest.image}`, () => {
          try {
            // Owner-writable until its content is in; the real mode comes in finishDir.
            mkdirSync(dest.host, 0o700);
            // Made in a setgid directory, it is setgid too until finishDir.
            if (this.setgidDirs.has(dirname(dest.host))) this.setgidDirs.add(dest.host);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
            const existing = this.lstat(dest.host)!;
            if (!existing.isDirectory()) {
              throw copyError(this.options.where, 'COPY_DEST', `cannot copy directory ${srcRel} onto ${dest.image}, which is not a directory in the image; remove it first or choose another destination.`);
            }
            if ((existing.mode & 0o2000) !== 0) this.setgidDirs.add(dest.host);
          }
        });
        this.written.add(dest.image);
      },
    };
    return dir;
  }

  private finishDir(dest: Target, stats: Stats): void {
    this.io(`set the owner, mode and times of ${dest.image}`, () => {
      this.chown(dest.host, dest.image);
      chmodSync(dest.host, this.mode(stats.mode, true));
      lutimesSync(dest.host, stats.atimeMs / 1000, stats.mtimeMs / 1000);
    });
  }

  /* ---------- one entry ---------- */

  /** Copies a file (`opened`: already open for reading, closed here), symlink or node. */
  private copyNonDir(srcHost: string, stats: Stats, srcRel: string, dest: Target | undefined, opened?: number): void {
    if (stats.isFile()) this.copyFile(srcHost, stats, srcRel, dest, opened);
    else if (stats.isSymbolicLink()) this.copySymlink(srcHost, stats, srcRel, dest);
    else if (stats.isFIFO() || stats.isCharacterDevice() || stats.isBlockDevice()) this.copyNode(stats, srcRel, dest);
    else this.options.logger.debug({ path: srcRel }, 'socket in a COPY source skipped');
  }

  private copyFile(srcHost: string, stats: Stats, srcRel: string, dest: Target | undefined, opened: number | undefined): void {
    let src = opened;
    const source = () => (src ??= this.openSource(srcHost, srcRel) ?? this.vanished(srcRel));
    try {
      const describe = (hash: string) => this.digests.push({ path: srcRel, kind: 'file', mode: stats.mode & 0o7777, size: stats.size, contentHash: hash });
      // A second name of an inode already copied becomes a hardlink to that copy.
      const key = stats.nlink > 1 ? `${stats.dev}:${stats.ino}` : undefined;
      const first = key === undefined ? undefined : this.links.get(key);
      if (dest === undefined) {
        const hash = first?.hash ?? this.pump(source(), undefined, stats.size);
        describe(hash);
        if (key !== undefined && first === undefined) this.links.set(key, { host: '', hash });
        return;
      }
      if (first !== undefined) {
        describe(first.hash);
        if (this.link(first.host, dest)) return;
      }
      let hash: string;
      if (stats.size >= KERNEL_COPY_FROM) {
        this.clearFor(dest, 'file');
        this.io(`copy ${srcRel} to ${dest.image}`, () => copyFileSync(srcHost, dest.host, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE));
        hash = this.io(`read ${srcRel}`, () => this.pump(source(), undefined, stats.size));
        const fd = this.io(`open ${dest.image}`, () => openSync(dest.host, OPEN_NOFOLLOW));
        try {
          this.io(`set the owner, mode and times of ${dest.image}`, () => this.finishFd(fd, dest, this.mode(stats.mode, false), stats.atimeMs / 1000, stats.mtimeMs / 1000));
        } finally {
          closeSync(fd);
        }
      } else {
        const from = source();
        const mode = this.mode(stats.mode, false);
        const atCreation = this.exactAtCreation(mode);
        const fd = this.createFile(dest, atCreation ? mode : 0o600);
        try {
          // The size fstat gave: a file growing meanwhile is copied as it was, as tar does.
          hash = this.io(`copy ${srcRel} to ${dest.image}`, () => this.pump(from, fd, stats.size));
          this.io(`set the owner, mode and times of ${dest.image}`, () => this.finishFd(fd, dest, atCreation ? undefined : mode, stats.atimeMs / 1000, stats.mtimeMs / 1000));
        } finally {
          closeSync(fd);
        }
      }
      if (first === undefined) describe(hash);
      if (key !== undefined) this.links.set(key, { host: dest.host, hash });
      this.written.add(dest.image);
    } finally {
      if (src !== undefined) closeSync(src);
    }
  }

  /** Opens a source file for reading, never through a symlink; undefined when it is gone. */
  private openSource(host: string, rel: string): number | undefined {
    try {
      return openSync(host, OPEN_NOFOLLOW);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ELOOP') return undefined;
      throw this.ioError(`read ${rel}`, err);
    }
  }

  private vanished(rel: string): never {
    throw copyError(this.options.where, 'COPY_SOURCE', `${rel} changed while it was being copied; build again once nothing else writes to it.`);
  }

  /** Links `dest` to an earlier copy; false when that is not possible (the copy was replaced meanwhile). */
  private link(existing: string, dest: Target): boolean {
    if (existing === '') return false;
    this.clearFor(dest, 'file');
    try {
      linkSync(existing, dest.host);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EXDEV' || code === 'EMLINK' || code === 'EPERM') return false;
      throw this.ioError(`link ${dest.image}`, err);
    }
    this.written.add(dest.image);
    return true;
  }

  private copySymlink(srcHost: string, stats: Stats, srcRel: string, dest: Target | undefined): void {
    const target = this.io(`read symlink ${srcRel}`, () => readlinkSync(srcHost));
    this.digests.push({ path: srcRel, kind: 'symlink', mode: stats.mode & 0o7777, size: stats.size, contentHash: this.hex(this.options.hasher.h64Raw(Buffer.from(target))) });
    if (dest === undefined) return;
    this.clearFor(dest, 'symlink');
    this.io(`create symlink ${dest.image}`, () => {
      symlinkSync(target, dest.host);
      this.chown(dest.host, dest.image);
      lutimesSync(dest.host, stats.atimeMs / 1000, stats.mtimeMs / 1000);
    });
    this.written.add(dest.image);
  }

  private copyNode(stats: Stats, srcRel: string, dest: Target | undefined): void {
    const kind: SourceKind = stats.isFIFO() ? 'fifo' : stats.isCharacterDevice() ? 'char' : 'block';
    this.digests.push({ path: srcRel, kind, mode: stats.mode & 0o7777, size: 0, contentHash: kind === 'fifo' ? '' : String(stats.rdev) });
    if (dest === undefined) return;
    this.clearFor(dest, kind);
    const made = makeNode(dest.host, kind as 'fifo' | 'char' | 'block', major(stats.rdev), minor(stats.rdev));
    if (!made.ok) {
      if (!made.skippable) throw copyError(this.options.where, 'IO', `cannot create ${kind === 'fifo' ? 'fifo' : 'device'} ${dest.image}: ${made.reason}.`);
      this.options.logger.warn({ path: dest.image, reason: made.reason }, `${dest.image} could not be created here and was skipped (${made.reason}).`);
      return;
    }
    this.io(`set the owner, mode and times of ${dest.image}`, () => {
      this.chown(dest.host, dest.image);
      chmodSync(dest.host, this.mode(stats.mode, false));
      lutimesSync(dest.host, stats.atimeMs / 1000, stats.mtimeMs / 1000);
    });
    this.written.add(dest.image);
  }

  /* ---------- helpers ---------- */

  /** Creates `dest` as a new empty file (replacing a file or symlink there), open for writing. */
  private createFile(dest: Target, mode: number): number {
    try {
      return openSync(dest.host, CREATE_FILE, mode);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw this.ioError(`create ${dest.image}`, err);
    }
    this.clearFor(dest, 'file');
    return this.io(`create ${dest.image}`, () => openSync(dest.host, CREATE_FILE, mode));
  }

  /**
   * Whether a new file gets exactly `mode` from open(2): the umask leaves it whole and no
   * setuid/setgid/sticky bit needs setting after the owner. Saves an fchmod per file.
   */
  private exactAtCreation(mode: number): boolean {
    return this.umask !== undefined && (mode & (0o7000 | this.umask)) === 0;
  }

  /**
   * Removes a file or symlink at `dest` so a new entry can take its place, never writing
   * through it (it may be a hardlink shared with another path). A directory there is an
   * error, as in Docker.
   */
  private clearFor(dest: Target, kind: string): void {
    const stats = this.lstat(dest.host);
    if (stats === undefined) return;
    if (stats.isDirectory()) {
      throw copyError(this.options.where, 'COPY_DEST', `cannot replace directory ${dest.image} with a ${kind}; remove the directory first or choose another destination.`);
    }
    this.io(`replace ${dest.image}`, () => unlinkSync(dest.host));
  }

  /** Copies up to `limit` bytes of `src` to `dest` (when given) in slabs and returns their xxh64. */
  private pump(src: number, dest: number | undefined, limit: number): string {
    const { buffer } = this;
    const hasher = this.options.hasher;
    let filled = 0;
    let total = 0;
    let state: ReturnType<XXHashAPI['create64']> | undefined;
    while (total < limit) {
      const read = readSync(src, buffer, filled, Math.min(buffer.length - filled, limit - total), null);
      if (read === 0) break;
      filled += read;
      total += read;
      if (filled === buffer.length) {
        if (dest !== undefined) this.writeAll(dest, buffer, filled);
        (state ??= hasher.create64()).update(buffer);
        filled = 0;
      }
    }
    const rest = buffer.subarray(0, filled);
    if (dest !== undefined && filled > 0) this.writeAll(dest, buffer, filled);
    return this.hex(state === undefined ? hasher.h64Raw(rest) : state.update(rest).digest());
  }

  private writeAll(fd: number, bytes: Buffer, length: number): void {
    let at = 0;
    while (at < length) at += writeSync(fd, bytes, at, length - at);
  }

  /**
   * Owner, then mode (a chown clears setuid and setgid), then times. The owner is only set
   * where a new file would not already have it; `mode` undefined: open(2) set it already.
   */
  private finishFd(fd: number, dest: Target, mode: number | undefined, atime: number, mtime: number, alwaysChown = false): void {
    const { uid, gid } = this.options.owner;
    if (this.chownAllowed && (alwaysChown || uid !== this.euid || gid !== this.egid || this.setgidDirs.has(dirname(dest.host)))) {
      try {
        fchownSync(fd, uid, gid);
      } catch (err) {
        this.chownRefused(err, dest.image);
      }
    }
    if (mode !== undefined) fchmodSync(fd, mode);
    futimesSync(fd, atime, mtime);
  }

  private chown(host: string, image: string): void {
    if (!this.chownAllowed) return;
    try {
      lchownSync(host, this.options.owner.uid, this.options.owner.gid);
    } catch (err) {
      this.chownRefused(err, image);
    }
  }

  /** Without the privilege to chown, copies keep kiln's own user; said once. */
  private chownRefused(err: unknown, image: string): void {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'EINVAL') throw err;
    this.chownAllowed = false;
    this.options.logger.warn({ path: image, code }, `kiln may not set file owners here (${code} on ${image}); files of this COPY keep the user kiln runs as.`);
  }

  private mode(sourceMode: number, isDir: boolean): number {
    const mode = sourceMode & 0o7777;
    return this.options.chmod === undefined ? mode : this.options.chmod(mode, isDir);
  }

  /** The entries of a source directory, sorted by name so that copies and descriptions run in one order. */
  private list(host: string): Dirent[] {
    return this.io(`list ${host}`, () => readdirSync(host, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  private lstat(host: string): Stats | undefined {
    try {
      return lstatSync(host, { throwIfNoEntry: false });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw this.ioError(`look at ${host}`, err);
    }
  }

  private hex(value: bigint): string {
    return value.toString(16).padStart(16, '0');
  }

  private io<T>(action: string, run: () => T): T {
    try {
      return run();
    } catch (err) {
      throw this.ioError(action, err);
    }
  }

  private ioError(action: string, err: unknown): Error {
    if (err instanceof KilnError) return err;
    return copyError(this.options.where, 'IO', `cannot ${action} (${describeError(err)}); check the disk and the permissions.`, err);
  }
}

/** Linux's major and minor device numbers (glibc's gnu_dev_major/minor, for numbers below 2^53). */
function major(rdev: number): number {
  return ((rdev >>> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
}

function minor(rdev: number): number {
  return (rdev & 0xff) | ((rdev >>> 12) & ~0xff);
}

/** The process umask, from /proc (process.umask() without an argument is deprecated); undefined if unknown. */
function currentUmask(): number | undefined {
  try {
    const match = /^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return match ? parseInt(match[1]!, 8) : undefined;
  } catch {
    return undefined;
  }
}
