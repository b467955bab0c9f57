export type FileKind = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';

/**
 * What kiln remembers of one path in the root filesystem between snapshots. Paths are
 * absolute inside the image (`/etc/passwd`), whatever directory the root really is.
 */
export interface FileRecord {
  kind: FileKind;
  /** Permission bits including setuid/setgid/sticky (st_mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  dev: number;
  nlink: number;
  /** Device numbers for char/block devices. */
  rdev?: number;
  linkTarget?: string;
  /** xxh64 of the content (hex), for regular files whose content kiln has read. */
  contentHash?: string;
}

/** The lstat fields a record is made of: `fs.Stats` has them, and so do walker-thread entries. */
export interface StatFields {
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly ino: number;
  readonly dev: number;
  readonly nlink: number;
  readonly rdev: number;
}

/** The kind of a path from its mode bits alone (no method calls per entry). */
export function kindOfMode(mode: number): FileKind {
  switch (mode & 0o170000) {
    case 0o100000:
      return 'file';
    case 0o040000:
      return 'dir';
    case 0o120000:
      return 'symlink';
    case 0o020000:
      return 'char';
    case 0o060000:
      return 'block';
    case 0o010000:
      return 'fifo';
    default:
      return 'socket';
  }
}

/** Fields are set in one fixed order: records of one shape keep the per-entry comparison fast. */
export function recordFromStats(stats: StatFields, linkTarget?: string, contentHash?: string): FileRecord {
  const record: FileRecord = {
    kind: kindOfMode(stats.mode),
    mode: stats.mode & 0o7777,
    uid: stats.uid,
    gid: stats.gid,
    size: stats.size,
    mtimeMs: stats.mtimeMs,
    ctimeMs: stats.ctimeMs,
    ino: stats.ino,
    dev: stats.dev,
    nlink: stats.nlink,
  };
  if (record.kind === 'char' || record.kind === 'block') record.rdev = stats.rdev;
  if (linkTarget !== undefined) record.linkTarget = linkTarget;
  if (contentHash !== undefined) record.contentHash = contentHash;
  return record;
}

/** The `st_mode` type bits of each kind, for records stored without their Stats. */
const TYPE_BITS: Record<FileKind, number> = {
  file: 0o100000,
  dir: 0o040000,
  symlink: 0o120000,
  char: 0o020000,
  block: 0o060000,
  fifo: 0o010000,
  socket: 0o140000,
};

// The numbers of one record, side by side in one Float64Array: a record costs 80 bytes
// there, against about 350 as an object of its own (a header, boxed times, a property
// array), and the index of a 100k-file tree is most of what a build keeps in memory.
const MODE = 0; // st_mode: type and permission bits
const UID = 1;
const GID = 2;
const SIZE = 3;
const MTIME = 4;
const CTIME = 5;
const INO = 6;
const DEV = 7;
const NLINK = 8;
const RDEV = 9;
const STRIDE = 10;
const INITIAL_SLOTS = 1024;

/**
 * The index of a root filesystem: every path kiln knows, with its last-seen record.
 *
 * Records are stored as numbers, not objects: `get` and `entries` hand out copies, and the
 * hot loops of a scan read records in place through `view` and `forEach`. Paths are kept
 * by directory, then name: a scan looks up the entries of one directory after another, and
 * a small table per directory answers far faster than one table of every path.
 */
export class FileIndex {
  /** Directory path → entry name → slot. `/` itself is the entry ROOT_NAME of directory ROOT_DIR. */
  private readonly dirs = new Map<string, Map<string, number>>();
  private count = 0;
  private numbers = new Float64Array(INITIAL_SLOTS * STRIDE);
  /** Per slot: undefined, or the content hash of a regular file. */
  private readonly hashes: (string | undefined)[] = [];
  /** Per slot: undefined, or the target of a symlink. */
  private readonly links: (string | undefined)[] = [];
  /** Per slot: whether the record has device numbers (char and block devices). */
  private hasRdev = new Uint8Array(INITIAL_SLOTS);
  private readonly free: number[] = [];
  private used = 0;
  private readonly cursor = new RecordView(this);

  get(path: string): FileRecord | undefined {
    const slot = this.slotOf(path);
    return slot === undefined ? undefined : this.recordAt(slot);
  }

  /**
   * The record of `path` read in place, or undefined. The view is one object, moved to the
   * path asked for on every call (of `view` or `viewIn`) and changed by any `set`: read
   * what you need before the next call, and never keep it.
   */
  view(path: string): FileRecord | undefined {
    return this.viewOfSlot(this.slotOf(path));
  }

  /** `view` of the entry `name` of directory `dir` (an image path), without joining them. */
  viewIn(dir: string, name: string): FileRecord | undefined {
    return this.viewOfSlot(this.dirs.get(dir)?.get(name));
  }

  set(path: string, record: FileRecord): void {
    const slot = this.slotFor(path);
    const n = this.numbers;
    const at = slot * STRIDE;
    n[at + MODE] = TYPE_BITS[record.kind] | record.mode;
    n[at + UID] = record.uid;
    n[at + GID] = record.gid;
    n[at + SIZE] = record.size;
    n[at + MTIME] = record.mtimeMs;
    n[at + CTIME] = record.ctimeMs;
    n[at + INO] = record.ino;
    n[at + DEV] = record.dev;
    n[at + NLINK] = record.nlink;
    n[at + RDEV] = record.rdev ?? 0;
    this.hasRdev[slot] = record.rdev === undefined ? 0 : 1;
    this.links[slot] = record.linkTarget;
    this.hashes[slot] = record.contentHash;
  }

  /** `set(path, recordFromStats(stats, linkTarget, contentHash))` without the record in between. */
  setStats(path: string, stats: StatFields, linkTarget?: string, contentHash?: string): void {
    this.store(this.slotFor(path), stats, linkTarget, contentHash);
  }

  /** `setStats` of the entry `name` of directory `dir`. */
  setStatsIn(dir: string, name: string, stats: StatFields, linkTarget?: string): void {
    this.store(this.slotIn(dir, name), stats, linkTarget, undefined);
  }

  /** Gives the regular file at `path` a content hash; false (and nothing stored) for any other path. */
  setContentHash(path: string, contentHash: string): boolean {
    const slot = this.slotOf(path);
    if (slot === undefined || (this.numbers[slot * STRIDE + MODE]! & 0o170000) !== 0o100000) return false;
    this.hashes[slot] = contentHash;
    return true;
  }

  delete(path: string): void {
    const [dir, name] = split(path);
    const names = this.dirs.get(dir);
    const slot = names?.get(name);
    if (slot === undefined) return;
    names!.delete(name);
    if (names!.size === 0) this.dirs.delete(dir);
    this.release(slot);
  }

  /** Removes `path` and everything below it. */
  deleteTree(path: string): void {
    this.delete(path);
    const prefix = path === '/' ? '/' : path + '/';
    for (const [dir, names] of this.dirs) {
      if (dir !== path && !dir.startsWith(prefix)) continue;
      for (const slot of names.values()) this.release(slot);
      this.dirs.delete(dir);
    }
  }

  has(path: string): boolean {
    return this.slotOf(path) !== undefined;
  }

  get size(): number {
    return this.count;
  }

  *paths(): IterableIterator<string> {
    for (const [dir, names] of this.dirs) for (const name of names.keys()) yield join(dir, name);
  }

  /**
   * Every path at or below one of `roots` (image paths, none below another). Only the
   * directories in scope are listed, so a few subtrees of a root of 100,000 paths cost what
   * they hold.
   */
  *pathsUnder(roots: readonly string[]): IterableIterator<string> {
    if (roots.includes('/')) {
      yield* this.paths();
      return;
    }
    const scope = new Set(roots);
    const inside = (dir: string) => {
      for (let at = dir; at !== '/' && at !== ''; at = at.slice(0, Math.max(1, at.lastIndexOf('/')))) if (scope.has(at)) return true;
      return false;
    };
    for (const [dir, names] of this.dirs) {
      if (inside(dir)) for (const name of names.keys()) yield join(dir, name);
    }
    for (const root of roots) if (this.has(root)) yield root;
  }

  /** Every path with a copy of its record. */
  *entries(): IterableIterator<[string, FileRecord]> {
    for (const [dir, names] of this.dirs) for (const [name, slot] of names) yield [join(dir, name), this.recordAt(slot)];
  }

  /**
   * Calls `visit` with every path and its record read in place (valid only during the call,
   * as with `view`), a directory's entries one after another. `visit` may delete the path
   * it is given, and nothing else.
   */
  forEach(visit: (path: string, record: FileRecord) => void): void {
    const view = new RecordView(this);
    for (const [dir, names] of this.dirs) {
      for (const [name, slot] of names) {
        view.slot = slot;
        visit(join(dir, name), view);
      }
    }
  }

  /** @internal The storage, for views. */
  numberAt(slot: number, field: number): number {
    return this.numbers[slot * STRIDE + field]!;
  }

  /** @internal */
  hashAt(slot: number): string | undefined {
    return this.hashes[slot];
  }

  /** @internal */
  linkAt(slot: number): string | undefined {
    return this.links[slot];
  }

  /** @internal */
  rdevAt(slot: number): number | undefined {
    return this.hasRdev[slot] === 1 ? this.numbers[slot * STRIDE + RDEV] : undefined;
  }

  private viewOfSlot(slot: number | undefined): FileRecord | undefined {
    if (slot === undefined) return undefined;
    this.cursor.slot = slot;
    return this.cursor;
  }

  private store(slot: number, stats: StatFields, linkTarget: string | undefined, contentHash: string | undefined): void {
    const n = this.numbers;
    const at = slot * STRIDE;
    const mode = stats.mode;
    n[at + MODE] = mode;
    n[at + UID] = stats.uid;
    n[at + GID] = stats.gid;
    n[at + SIZE] = stats.size;
    n[at + MTIME] = stats.mtimeMs;
    n[at + CTIME] = stats.ctimeMs;
    n[at + INO] = stats.ino;
    n[at + DEV] = stats.dev;
    n[at + NLINK] = stats.nlink;
    const device = (mode & 0o170000) === 0o020000 || (mode & 0o170000) === 0o060000;
    n[at + RDEV] = device ? stats.rdev : 0;
    this.hasRdev[slot] = device ? 1 : 0;
    this.links[slot] = linkTarget;
    this.hashes[slot] = contentHash;
  }

  private recordAt(slot: number): FileRecord {
    const at = slot * STRIDE;
    const n = this.numbers;
    const record: FileRecord = {
      kind: kindOfMode(n[at + MODE]!),
      mode: n[at + MODE]! & 0o7777,
      uid: n[at + UID]!,
      gid: n[at + GID]!,
      size: n[at + SIZE]!,
      mtimeMs: n[at + MTIME]!,
      ctimeMs: n[at + CTIME]!,
      ino: n[at + INO]!,
      dev: n[at + DEV]!,
      nlink: n[at + NLINK]!,
    };
    const rdev = this.rdevAt(slot);
    if (rdev !== undefined) record.rdev = rdev;
    const link = this.links[slot];
    if (link !== undefined) record.linkTarget = link;
    const hash = this.hashes[slot];
    if (hash !== undefined) record.contentHash = hash;
    return record;
  }

  private slotOf(path: string): number | undefined {
    const [dir, name] = split(path);
    return this.dirs.get(dir)?.get(name);
  }

  private slotFor(path: string): number {
    const [dir, name] = split(path);
    return this.slotIn(dir, name);
  }

  private slotIn(dir: string, name: string): number {
    let names = this.dirs.get(dir);
    const existing = names?.get(name);
    if (existing !== undefined) return existing;
    if (names === undefined) {
      names = new Map();
      this.dirs.set(dir, names);
    }
    const slot = this.free.pop() ?? this.used++;
    if (slot * STRIDE >= this.numbers.length) this.grow();
    names.set(name, slot);
    this.count++;
    return slot;
  }

  private release(slot: number): void {
    this.links[slot] = undefined;
    this.hashes[slot] = undefined;
    this.free.push(slot);
    this.count--;
  }

  /** Half as much again: the copy costs one and a half times the old storage, once. */
  private grow(): void {
    const slots = Math.ceil(this.hasRdev.length * 1.5);
    const numbers = new Float64Array(slots * STRIDE);
    numbers.set(this.numbers);
    this.numbers = numbers;
    const hasRdev = new Uint8Array(slots);
    hasRdev.set(this.hasRdev);
    this.hasRdev = hasRdev;
  }
}

/** Where `/` itself is kept: it has no directory. */
const ROOT_DIR = '';
const ROOT_NAME = '/';

/** `/a/b` → [`/a`, `b`]; `/a` → [`/`, `a`]; `/` → [ROOT_DIR, ROOT_NAME]. */
function split(path: string): [string, string] {
  if (path === '/') return [ROOT_DIR, ROOT_NAME];
  const cut = path.lastIndexOf('/');
  return [cut === 0 ? '/' : path.slice(0, cut), path.slice(cut + 1)];
}

/** The inverse of `split`. */
function join(dir: string, name: string): string {
  if (dir === ROOT_DIR) return name;
  return dir === '/' ? '/' + name : dir + '/' + name;
}

/** A record read in place from an index (see `FileIndex.view`). */
class RecordView implements FileRecord {
  slot = 0;

  constructor(private readonly index: FileIndex) {}

  get kind(): FileKind {
    return kindOfMode(this.index.numberAt(this.slot, MODE));
  }
  get mode(): number {
    return this.index.numberAt(this.slot, MODE) & 0o7777;
  }
  get uid(): number {
    return this.index.numberAt(this.slot, UID);
  }
  get gid(): number {
    return this.index.numberAt(this.slot, GID);
  }
  get size(): number {
    return this.index.numberAt(this.slot, SIZE);
  }
  get mtimeMs(): number {
    return this.index.numberAt(this.slot, MTIME);
  }
  get ctimeMs(): number {
    return this.index.numberAt(this.slot, CTIME);
  }
  get ino(): number {
    return this.index.numberAt(this.slot, INO);
  }
  get dev(): number {
    return this.index.numberAt(this.slot, DEV);
  }
  get nlink(): number {
    return this.index.numberAt(this.slot, NLINK);
  }
  get rdev(): number | undefined {
    return this.index.rdevAt(this.slot);
  }
  get linkTarget(): string | undefined {
    return this.index.linkAt(this.slot);
  }
  get contentHash(): string | undefined {
    return this.index.hashAt(this.slot);
  }
}

/**
 * What one snapshot found. `changed` holds added and modified paths; `deleted` only the
 * top-most deleted paths (a deleted directory's children are implied). Both sorted.
 */
export interface ChangeSet {
  changed: string[];
  deleted: string[];
}
