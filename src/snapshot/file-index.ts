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

/** The index of a root filesystem: every path kiln knows, with its last-seen record. */
export class FileIndex {
  private readonly records = new Map<string, FileRecord>();

  get(path: string): FileRecord | undefined {
    return this.records.get(path);
  }

  set(path: string, record: FileRecord): void {
    this.records.set(path, record);
  }

  delete(path: string): void {
    this.records.delete(path);
  }

  /** Removes `path` and everything below it. */
  deleteTree(path: string): void {
    this.records.delete(path);
    const prefix = path === '/' ? '/' : path + '/';
    for (const key of this.records.keys()) if (key.startsWith(prefix)) this.records.delete(key);
  }

  has(path: string): boolean {
    return this.records.has(path);
  }

  get size(): number {
    return this.records.size;
  }

  paths(): IterableIterator<string> {
    return this.records.keys();
  }

  entries(): IterableIterator<[string, FileRecord]> {
    return this.records.entries();
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
