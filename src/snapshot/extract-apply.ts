import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import type { XXHash, XXHashAPI } from 'xxhash-wasm';
import { KilnError, describeError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { makeNode } from './extract-device.js';
import { IGNORED, MISSING, RootResolver, VIA_SYMLINK, baseOf, capitalise, isUnresolved, joinRel, normaliseEntryName, parentOf } from './extract-path.js';
import type { TarEntry, TarSink } from './extract-tar.js';
import type { FileIndex } from './file-index.js';
import { formatXxh64 } from './hasher.js';
import type { IgnoreList } from './ignore.js';

export interface ExtractStats {
  /** Layers applied. */
  layers: number;
  /** Tar entries read (pax and long-name records not counted). */
  entries: number;
  /** Bytes of regular-file content written. */
  bytes: number;
  /** Entries (including whiteouts and opaque markers) left alone because their path is ignored. */
  skippedIgnored: number;
  /** Device nodes and fifos that could not be created here (no privilege) and were skipped. */
  devicesSkipped: number;
}

/** What every layer of one extraction shares. */
export interface ApplyContext {
  /** Absolute, without a trailing slash (except `/` itself). */
  root: string;
  ignore: IgnoreList;
  index: FileIndex | undefined;
  logger: Logger;
  stats: ExtractStats;
  /** Set when an index is kept: content hashes are computed as files stream to disk. */
  hasher: XXHashAPI | undefined;
  /** Whether `.wh.` entries remove lower paths (image layers) or are plain files (ADD archives). */
  whiteouts: boolean;
  /** Cleared after the first chown that the system refuses, so the warning comes once. */
  ownership: { chown: boolean };
  /** The process umask when known: files whose mode it leaves intact are created with it directly. */
  umask: number | undefined;
  /** Who owns what kiln creates, so chown is only called where it changes something. */
  euid: number;
  egid: number;
}

const CREATE_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const OPEN_DIR = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
const OPAQUE = '.wh..wh..opq';
const WHITEOUT = '.wh.';
/** The ignore-list answer for the children of one directory: none, all, or some of them. */
type Below = 'nothing' | 'all' | 'some';

interface OpenFile {
  fd: number;
  rel: string;
  entry: TarEntry;
  /** Whether the owner must still be set, and the mode (it was not given at creation). */
  chown: boolean;
  chmod: boolean;
  written: number;
  single: bigint | undefined;
  stream: XXHash<bigint> | undefined;
}

interface DirMetadata {
  mode: number;
  uid: number;
  gid: number;
  atime: number;
  mtime: number;
}

/**
 * Applies one layer's tar entries to the root, synchronously, entry by entry (see
 * `TarSink`). Per-entry promises would cost more than the syscalls themselves; a layer is
 * applied while the build waits for it anyway, and decompression runs on another thread.
 *
 * Every path is resolved inside the root (see `RootResolver`); the last component is never
 * followed. Directories get their owner, mode and times in `finish`, after their content is
 * written, as GNU tar does. Whiteouts and opaque markers remove what lower layers put there
 * but keep what this layer wrote, whichever order the tar holds them in.
 */
export class LayerApplier implements TarSink {
  private readonly resolver: RootResolver;
  private file: OpenFile | undefined;
  private readonly pendingDirs = new Map<string, DirMetadata>();
  /** Paths (rel) this layer created or replaced, and the directories that hold any of them. */
  private readonly written = new Set<string>();
  private readonly writtenBelow = new Set<string>();
  /** Directories whose entries changed (index only): their records are taken at the end. */
  private readonly touched = new Set<string>();
  /** Both ends of every hardlink made (index only): link counts and ctimes moved. */
  private readonly hardlinked = new Set<string>();
  private readonly ignoreBelow = new Map<string, Below>();
  /** The group a new entry of each directory gets (its own, when the directory is setgid). */
  private readonly groupOf = new Map<string, number>();
  private xattrEntries = 0;
  private xattrExample = '';
  private devicesSkipped = 0;
  private deviceExample = '';
  private readonly emptyHash: bigint | undefined;

  constructor(
    private readonly ctx: ApplyContext,
    /** Names the layer in messages: "layer sha256:…". */
    private readonly what: string,
  ) {
    this.resolver = new RootResolver(ctx.root, ctx.ignore, what, (rel) => this.noteWritten(rel, parentOf(rel), true), ctx.umask);
    this.emptyHash = ctx.hasher?.h64Raw(Buffer.alloc(0));
  }

  entry(entry: TarEntry): void {
    this.ctx.stats.entries++;
    const path = normaliseEntryName(entry.name);
    if (path === undefined || entry.name.includes('\0')) {
      throw this.unsafe(`entry ${JSON.stringify(entry.name)} would be written outside the root filesystem`);
    }
    const slash = path.lastIndexOf('/');
    const dir = slash === -1 ? '' : path.slice(0, slash);
    const base = path.slice(slash + 1);
    if (this.ctx.whiteouts && base.startsWith(WHITEOUT)) {
      this.whiteout(dir, base, entry);
      return;
    }
    if (this.ignored(path, dir)) {
      this.ctx.stats.skippedIgnored++;
      return;
    }
    if (path === '') {
      if (entry.type === 'dir') this.pendingDirs.set('', metadataOf(entry));
      else this.ctx.logger.warn({ layer: this.what, type: entry.type }, `${capitalise(this.what)} has a ${entry.type} entry for the root directory itself; it was skipped.`);
      return;
    }
    const parent = this.resolver.directory(dir, true);
    if (parent === IGNORED) {
      this.ctx.stats.skippedIgnored++;
      return;
    }
    const rel = joinRel(parent, base);
    // Reached through a symlink: the real path may be one the ignore list protects.
    if (parent !== dir && this.ctx.ignore.isIgnored('/' + rel)) {
      this.ctx.stats.skippedIgnored++;
      return;
    }
    if (entry.xattrs !== undefined) {
      if (this.xattrEntries++ === 0) this.xattrExample = '/' + rel;
    }
    switch (entry.type) {
      case 'file':
        this.openFile(rel, parent, entry);
        return;
      case 'dir':
        this.makeDir(path, rel, parent, entry);
        return;
      case 'symlink':
        this.makeSymlink(rel, parent, entry);
        return;
      case 'link':
        this.makeHardlink(rel, parent, entry);
        return;
      case 'char':
      case 'block':
      case 'fifo':
        this.makeDevice(rel, parent, entry);
        return;
      case 'unsupported':
        this.ctx.logger.warn(
          { layer: this.what, path: '/' + rel, typeflag: entry.typeflag },
          `${capitalise(this.what)} has entry /${rel} of tar type '${entry.typeflag}', which kiln does not extract; it was skipped.`,
        );
        return;
    }
  }

  data(chunk: Buffer): void {
    const file = this.file;
    if (file === undefined) return;
    let at = 0;
    while (at < chunk.length) {
      try {
        at += writeSync(file.fd, chunk, at, chunk.length - at);
      } catch (err) {
        throw this.io(`write /${file.rel}`, err);
      }
    }
    const hasher = this.ctx.hasher;
    if (hasher !== undefined) {
      if (file.written === 0 && chunk.length === file.entry.size) {
        file.single = hasher.h64Raw(chunk);
      } else {
        (file.stream ??= hasher.create64()).update(chunk);
      }
    }
    file.written += chunk.length;
  }

  end(): void {
    const file = this.file;
    if (file === undefined) return;
    this.file = undefined;
    const { fd, entry, rel } = file;
    let stats: Stats | undefined;
    try {
      if (file.chown) this.chown(fd, entry, rel);
      if (file.chmod) fchmodSync(fd, entry.mode);
      futimesSync(fd, entry.atime ?? entry.mtime, entry.mtime);
      if (this.ctx.index !== undefined) stats = fstatSync(fd);
    } catch (err) {
      throw this.io(`set the owner, mode and times of /${rel}`, err);
    } finally {
      closeSync(fd);
    }
    this.ctx.stats.bytes += file.written;
    if (stats !== undefined) {
      const hash = file.single ?? file.stream?.digest() ?? this.emptyHash;
      this.ctx.index!.setStats('/' + rel, stats, undefined, hash === undefined ? undefined : formatXxh64(hash));
    }
  }

  /** Closes whatever is open after a failure; the layer is left as far as it got. */
  abort(): void {
    if (this.file !== undefined) {
      closeSync(this.file.fd);
      this.file = undefined;
    }
  }

  /** The end of the layer: directory metadata, then the index records that moved. */
  finish(): void {
    const index = this.ctx.index;
    for (const [rel, meta] of this.pendingDirs) {
      let fd: number;
      try {
        fd = openSync(this.resolver.host(rel), OPEN_DIR);
      } catch (err) {
        // Replaced or removed by a later entry of this layer: nothing left to set.
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') continue;
        throw this.io(`open directory /${rel}`, err);
      }
      try {
        this.chown(fd, meta, rel);
        fchmodSync(fd, meta.mode);
        futimesSync(fd, meta.atime, meta.mtime);
        if (index !== undefined) index.setStats(imagePath(rel), fstatSync(fd));
      } catch (err) {
        throw this.io(`set the owner, mode and times of directory /${rel}`, err);
      } finally {
        closeSync(fd);
      }
    }
    if (index !== undefined) {
      for (const rel of this.touched) {
        if (this.pendingDirs.has(rel) || this.ctx.ignore.isIgnored(imagePath(rel))) continue;
        const stats = this.lstat(rel);
        if (stats !== undefined) index.setStats(imagePath(rel), stats);
      }
      for (const rel of this.hardlinked) {
        const stats = this.lstat(rel);
        if (stats === undefined) continue;
        const linkTarget = stats.isSymbolicLink() ? readlinkSync(this.resolver.host(rel)) : undefined;
        index.setStats(imagePath(rel), stats, linkTarget, index.view(imagePath(rel))?.contentHash);
      }
    }
    if (this.xattrEntries > 0) {
      this.ctx.logger.warn(
        { layer: this.what, entries: this.xattrEntries, example: this.xattrExample },
        `${this.xattrEntries} entries of ${this.what} (e.g. ${this.xattrExample}) carry extended attributes such as file capabilities, which kiln cannot set; they were extracted without them.`,
      );
    }
    if (this.devicesSkipped > 0) {
      this.ctx.logger.warn(
        { layer: this.what, devices: this.devicesSkipped },
        `${this.devicesSkipped} device nodes or fifos of ${this.what} could not be created here and were skipped (${this.deviceExample}).`,
      );
    }
  }

  /* ---------- entry kinds ---------- */

  private openFile(rel: string, parent: string, entry: TarEntry): void {
    const host = this.resolver.host(rel);
    // The mode can be given at creation when the umask leaves it whole and no chown will
    // follow that clears setuid/setgid; otherwise fchmod sets it after the owner.
    const umask = this.ctx.umask;
    const modeAtCreation = umask !== undefined && (entry.mode & (0o7000 | umask)) === 0;
    const mode = modeAtCreation ? entry.mode : 0o600;
    let fd: number;
    try {
      fd = openSync(host, CREATE_FILE, mode);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw this.io(`create /${rel}`, err);
      // Never written through: the old path may be a hardlink shared with another file.
      if (!this.clear(rel)) return;
      try {
        fd = openSync(host, CREATE_FILE, mode);
      } catch (again) {
        throw this.io(`create /${rel}`, again);
      }
    }
    this.noteWritten(rel, parent, false);
    this.file = { fd, rel, entry, chown: this.needsChown(parent, entry), chmod: !modeAtCreation, written: 0, single: undefined, stream: undefined };
  }

  private makeDir(path: string, rel: string, parent: string, entry: TarEntry): void {
    const host = this.resolver.host(rel);
    if (!this.tryCreate(() => mkdirSync(host, 0o755))) {
      const stats = this.lstat(rel);
      // A directory over a directory only changes its metadata.
      if (stats === undefined || !stats.isDirectory()) {
        if (!this.clear(rel, stats)) return;
        this.create(rel, 'create directory', () => mkdirSync(host, 0o755));
      }
    }
    this.resolver.remember(path, rel);
    this.pendingDirs.set(rel, metadataOf(entry));
    this.noteWritten(rel, parent, true);
  }

  private makeSymlink(rel: string, parent: string, entry: TarEntry): void {
    const host = this.resolver.host(rel);
    if (!this.tryCreate(() => symlinkSync(entry.linkname, host))) {
      if (!this.clear(rel)) return;
      this.create(rel, 'create symlink', () => symlinkSync(entry.linkname, host));
    }
    this.noteWritten(rel, parent, false);
    try {
      if (this.needsChown(parent, entry)) this.lchown(host, entry, rel);
      lutimesSync(host, entry.atime ?? entry.mtime, entry.mtime);
      if (this.ctx.index !== undefined) this.ctx.index.setStats('/' + rel, lstatSync(host), entry.linkname);
    } catch (err) {
      throw this.io(`set the owner and times of symlink /${rel}`, err);
    }
  }

  private makeHardlink(rel: string, parent: string, entry: TarEntry): void {
    const target = normaliseEntryName(entry.linkname);
    if (target === undefined || target === '' || entry.linkname.includes('\0')) {
      throw this.unsafe(`hardlink /${rel} points at ${JSON.stringify(entry.linkname)}, outside the root filesystem`);
    }
    if (this.ctx.ignore.isIgnored('/' + target)) {
      this.ctx.stats.skippedIgnored++;
      this.ctx.logger.debug({ layer: this.what, path: '/' + rel, target: '/' + target }, 'hardlink to an ignored path skipped');
      return;
    }
    const targetDir = this.resolver.directoryNoFollow(parentOf(target));
    if (targetDir === VIA_SYMLINK) {
      throw this.unsafe(`hardlink /${rel} points at /${target} through a symlink`);
    }
    const targetStats = targetDir === MISSING ? undefined : this.lstat(target);
    if (targetStats === undefined) {
      throw new KilnError('INVALID_LAYER', `${capitalise(this.what)} has hardlink /${rel} to /${target}, which does not exist.`);
    }
    if (targetStats.isDirectory()) {
      throw new KilnError('INVALID_LAYER', `${capitalise(this.what)} has hardlink /${rel} to directory /${target}; directories cannot be hardlinked.`);
    }
    if (target === rel) return;
    const host = this.resolver.host(rel);
    const targetHost = this.resolver.host(target);
    // link(2) does not follow a symlink named as its target, and no parent of it is one.
    if (!this.tryCreate(() => linkSync(targetHost, host))) {
      const existing = this.lstat(rel);
      if (existing !== undefined && existing.ino === targetStats.ino && existing.dev === targetStats.dev) return;
      if (!this.clear(rel, existing)) return;
      this.create(rel, 'create hardlink', () => linkSync(targetHost, host));
    }
    this.noteWritten(rel, parent, false);
    const index = this.ctx.index;
    if (index !== undefined) {
      this.hardlinked.add(rel);
      this.hardlinked.add(target);
      const stats = this.lstat(rel)!;
      const linkTarget = stats.isSymbolicLink() ? readlinkSync(host) : undefined;
      index.setStats('/' + rel, stats, linkTarget, index.view('/' + target)?.contentHash);
    }
  }

  private makeDevice(rel: string, parent: string, entry: TarEntry): void {
    const type = entry.type as 'char' | 'block' | 'fifo';
    if (!this.clear(rel)) return;
    const host = this.resolver.host(rel);
    const made = makeNode(host, type, entry.devmajor, entry.devminor);
    if (!made.ok) {
      if (!made.skippable) {
        throw new KilnError('IO', `Cannot create ${type === 'fifo' ? 'fifo' : 'device'} /${rel} of ${this.what}: ${made.reason}.`);
      }
      this.ctx.stats.devicesSkipped++;
      if (this.devicesSkipped++ === 0) this.deviceExample = `/${rel}: ${made.reason}`;
      return;
    }
    this.noteWritten(rel, parent, false);
    try {
      this.lchown(host, entry, rel);
      // chmod after chown, which clears setuid and setgid. The node was just made: no symlink.
      chmodSync(host, entry.mode);
      lutimesSync(host, entry.atime ?? entry.mtime, entry.mtime);
      if (this.ctx.index !== undefined) this.ctx.index.setStats('/' + rel, lstatSync(host));
    } catch (err) {
      throw this.io(`set the owner, mode and times of /${rel}`, err);
    }
  }

  /* ---------- whiteouts ---------- */

  private whiteout(dir: string, base: string, entry: TarEntry): void {
    if (base === OPAQUE) {
      this.opaque(dir);
      return;
    }
    // Other ".wh..wh." names are AUFS bookkeeping (hardlink directories), not content.
    if (base.startsWith(WHITEOUT + WHITEOUT)) return;
    const name = base.slice(WHITEOUT.length);
    if (name === '' || name === '.' || name === '..') {
      throw this.unsafe(`whiteout ${JSON.stringify(entry.name)} names no file of its directory`);
    }
    const target = joinRel(dir, name);
    if (this.ignored(target, dir)) {
      this.ctx.stats.skippedIgnored++;
      return;
    }
    const parent = this.resolver.directory(dir, false);
    if (isUnresolved(parent)) return; // nothing there to remove
    const rel = joinRel(parent, name);
    if (parent !== dir && this.ctx.ignore.isIgnored('/' + rel)) {
      this.ctx.stats.skippedIgnored++;
      return;
    }
    this.removeLower(rel);
  }

  /** Empties directory `dir` of everything lower layers put there; this layer's entries stay. */
  private opaque(dir: string): void {
    if (this.ctx.ignore.isIgnored(imagePath(dir))) {
      this.ctx.stats.skippedIgnored++;
      return;
    }
    let rel = '';
    if (dir !== '') {
      const parent = this.resolver.directory(parentOf(dir), true);
      if (parent === IGNORED) {
        this.ctx.stats.skippedIgnored++;
        return;
      }
      rel = joinRel(parent, baseOf(dir));
      if (parent !== parentOf(dir) && this.ctx.ignore.isIgnored('/' + rel)) {
        this.ctx.stats.skippedIgnored++;
        return;
      }
      // An opaque directory is a real directory in this layer, even over a lower symlink.
      const stats = this.lstat(rel);
      if (stats === undefined || !stats.isDirectory()) {
        if (!this.clear(rel, stats)) return;
        this.resolver.makeDirectory(rel);
        this.noteWritten(rel, parent, true);
      }
      this.resolver.remember(dir, rel);
    }
    for (const name of this.list(rel)) this.removeLower(joinRel(rel, name));
  }

  /**
   * Removes `rel` as lower layers left it: a path this layer wrote stays, and so does a
   * directory holding one (or holding an ignored path), whose other entries go instead.
   */
  private removeLower(rel: string): void {
    const path = imagePath(rel);
    if (this.ctx.ignore.isIgnored(path)) return;
    const stats = this.lstat(rel);
    if (stats === undefined) return;
    const keep = this.written.has(rel) || this.writtenBelow.has(rel);
    if (stats.isDirectory() && (keep || this.ctx.ignore.hasIgnoredBelow(path))) {
      for (const name of this.list(rel)) this.removeLower(joinRel(rel, name));
      return;
    }
    if (!keep) this.clear(rel, stats);
  }

  /* ---------- helpers ---------- */

  /**
   * Removes whatever is at `rel` so an entry of another type can take its place. A directory
   * goes with its tree, unless an ignored path lies below it: then nothing is removed, the
   * entry is skipped with a warning, and false is returned.
   */
  private clear(rel: string, known?: Stats): boolean {
    const stats = known ?? this.lstat(rel);
    if (stats === undefined) return true;
    const host = this.resolver.host(rel);
    const path = imagePath(rel);
    try {
      if (stats.isDirectory()) {
        if (this.ctx.ignore.hasIgnoredBelow(path)) {
          this.ctx.stats.skippedIgnored++;
          this.ctx.logger.warn({ layer: this.what, path }, `${capitalise(this.what)} replaces directory ${path}, which holds an ignored path; the entry was skipped.`);
          return false;
        }
        rmSync(host, { recursive: true, force: true });
        this.ctx.index?.deleteTree(path);
        for (const pending of this.pendingDirs.keys()) {
          if (pending === rel || pending.startsWith(rel + '/')) this.pendingDirs.delete(pending);
        }
        this.resolver.forget();
        this.groupOf.clear();
      } else {
        unlinkSync(host);
        this.ctx.index?.delete(path);
        if (stats.isSymbolicLink()) this.resolver.forget();
      }
    } catch (err) {
      throw this.io(`remove ${path}`, err);
    }
    if (this.ctx.index !== undefined) this.touched.add(parentOf(rel));
    return true;
  }

  /** Runs a create call; false when something is already there (EEXIST). */
  private tryCreate(create: () => void): boolean {
    try {
      create();
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
  }

  private create(rel: string, action: string, create: () => void): void {
    try {
      create();
    } catch (err) {
      throw this.io(`${action} /${rel}`, err);
    }
  }

  private noteWritten(rel: string, parent: string, isDir: boolean): void {
    this.written.add(rel);
    for (let dir = parent; !this.writtenBelow.has(dir); dir = parentOf(dir)) {
      this.writtenBelow.add(dir);
      if (dir === '') break;
    }
    if (this.ctx.index !== undefined) {
      this.touched.add(parent);
      if (isDir) this.touched.add(rel);
    }
  }

  /** Whether entry `path` (in directory `dir`) is ignored, with one answer cached per directory. */
  private ignored(path: string, dir: string): boolean {
    let below = this.ignoreBelow.get(dir);
    if (below === undefined) {
      const ignore = this.ctx.ignore;
      const dirPath = imagePath(dir);
      below = ignore.isIgnored(dirPath) ? 'all' : ignore.hasIgnoredBelow(dirPath) ? 'some' : 'nothing';
      this.ignoreBelow.set(dir, below);
    }
    if (below === 'nothing') return false;
    return below === 'all' || this.ctx.ignore.isIgnored(imagePath(path));
  }

  /** Whether a new entry of directory `parent` needs a chown to belong to `owner`. */
  private needsChown(parent: string, owner: { uid: number; gid: number }): boolean {
    if (!this.ctx.ownership.chown) return false;
    if (owner.uid !== this.ctx.euid) return true;
    let group = this.groupOf.get(parent);
    if (group === undefined) {
      const stats = this.lstat(parent);
      group = stats !== undefined && (stats.mode & 0o2000) !== 0 ? stats.gid : this.ctx.egid;
      this.groupOf.set(parent, group);
    }
    return owner.gid !== group;
  }

  private chown(fd: number, owner: { uid: number; gid: number }, rel: string): void {
    if (!this.ctx.ownership.chown) return;
    try {
      fchownSync(fd, owner.uid, owner.gid);
    } catch (err) {
      this.ownershipRefused(err, rel);
    }
  }

  private lchown(host: string, owner: { uid: number; gid: number }, rel: string): void {
    if (!this.ctx.ownership.chown) return;
    try {
      lchownSync(host, owner.uid, owner.gid);
    } catch (err) {
      this.ownershipRefused(err, rel);
    }
  }

  /** Without the privilege to chown (EPERM, or an id the user namespace does not map), files keep kiln's own user. */
  private ownershipRefused(err: unknown, rel: string): void {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'EINVAL') throw err;
    this.ctx.ownership.chown = false;
    this.ctx.logger.warn(
      { layer: this.what, path: '/' + rel, code },
      `kiln may not set file owners here (${code} on /${rel}); files of this extraction keep the user kiln runs as.`,
    );
  }

  private lstat(rel: string): Stats | undefined {
    try {
      return lstatSync(this.resolver.host(rel), { throwIfNoEntry: false });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw this.io(`look at /${rel}`, err);
    }
  }

  private list(rel: string): string[] {
    try {
      return readdirSync(this.resolver.host(rel));
    } catch (err) {
      throw this.io(`list ${imagePath(rel)}`, err);
    }
  }

  private unsafe(what: string): KilnError {
    return new KilnError('INVALID_LAYER', `${capitalise(this.what)} is refused: its ${what}.`);
  }

  private io(action: string, err: unknown): KilnError {
    if (err instanceof KilnError) return err;
    return new KilnError('IO', `Cannot ${action} while extracting ${this.what}: ${describeError(err)}.`, { cause: err });
  }
}

function metadataOf(entry: TarEntry): DirMetadata {
  return { mode: entry.mode, uid: entry.uid, gid: entry.gid, atime: entry.atime ?? entry.mtime, mtime: entry.mtime };
}

function imagePath(rel: string): string {
  return '/' + rel;
}
