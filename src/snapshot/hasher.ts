import { closeSync, openSync, readSync } from 'node:fs';
import xxhash from 'xxhash-wasm';
import { KilnError, describeError } from '../util/errors.js';
import { kindOfMode, recordFromStats, type FileKind, type FileRecord } from './file-index.js';

export { kindOfMode };
import type { EntryStat, WalkEntry } from './walk.js';

/** kaniko's --snapshot-mode values. */
export type SnapshotMode = 'full' | 'redo' | 'time';

export const SNAPSHOT_MODES: readonly SnapshotMode[] = ['full', 'redo', 'time'];

/**
 * A detector's answer for one path that the index already knows.
 * - `same`: nothing to do; the index keeps its record (no allocation on the common path).
 * - `refreshed`: the path moved in ways this mode does not count as a change (a `touch`
 *   in full mode, a directory whose entries changed); the index takes `record` so the next
 *   scan compares against the new metadata, but the path is not part of the layer.
 * - `changed`: the path belongs in the layer; the index takes `record`.
 */
export type Verdict =
  | { readonly outcome: 'same' }
  | { readonly outcome: 'refreshed'; readonly record: FileRecord }
  | { readonly outcome: 'changed'; readonly record: FileRecord };

/**
 * Whether a record's timestamps can vouch for its content. File timestamps come from a
 * coarse clock (one kernel tick, 1–10 ms): a file written in the same tick as kiln looked
 * at it can be rewritten later in that tick without its mtime or ctime moving. Such a
 * "racy" record is checked by content in full mode even when all metadata matches.
 */
export type StatTrust = 'trusted' | 'racy';

/** How long after a file's ctime kiln must have looked at it for its timestamps to be trusted. */
export const RACY_WINDOW_MS = 20;

/**
 * Decides, for one snapshot mode, whether a path the index knows has changed. Paths the
 * index does not know are added in every mode; known paths that are gone are deleted.
 *
 * `full` (kaniko's default hasher): kind, permission bits (setuid/setgid/sticky included),
 * owner, symlink target, device numbers and content. Content is re-read only when size,
 * mtime, ctime or inode moved (or the record is racy), so an edit followed by `touch -d`
 * back to the old mtime is still caught through ctime, which no user can set. A `touch`
 * that moves only times is not a change, nor is a file rewritten with the same content. A
 * file whose record has no content hash (an index built by walking, not by extraction)
 * counts as changed as soon as its metadata moves: there is nothing to compare with. A
 * directory whose mtime moved because entries came or went is not a change by itself.
 * Can miss: a change to extended attributes alone (`setcap`; kaniko hashes
 * `security.capability`, Node cannot read xattrs).
 *
 * `redo` (kaniko's redo hasher): kind, permission bits, size, mtime, owner, symlink target.
 * A `touch` is a change, and so is a directory whose entries changed.
 * Can miss: content edits that keep both size and mtime (an edit followed by `touch -d`
 * back to the old time, `cp -p` of a same-size file with the same mtime), xattr changes.
 *
 * `time` (kaniko's mtime hasher): mtime, plus kind and existence.
 * Can miss: chmod and chown (setuid bits included), xattr changes, and any edit that
 * restores the mtime.
 */
export interface ChangeDetector {
  readonly mode: SnapshotMode;
  /** Files whose content this detector has read so far (full mode only). */
  readonly filesRead: number;
  detect(old: FileRecord, entry: WalkEntry<EntryStat>, trust: StatTrust): Verdict;
}

export async function createChangeDetector(mode: SnapshotMode): Promise<ChangeDetector> {
  switch (mode) {
    case 'full':
      return new FullDetector(await ContentHasher.create());
    case 'redo':
      return new RedoDetector();
    case 'time':
      return new TimeDetector();
  }
}

const SAME: Verdict = Object.freeze({ outcome: 'same' });

function changed(entry: WalkEntry<EntryStat>, contentHash?: string): Verdict {
  return { outcome: 'changed', record: recordOfEntry(entry, contentHash) };
}

function refreshed(entry: WalkEntry<EntryStat>, contentHash?: string): Verdict {
  return { outcome: 'refreshed', record: recordOfEntry(entry, contentHash) };
}

/** The index record of a walked entry. */
export function recordOfEntry(entry: WalkEntry<EntryStat>, contentHash?: string): FileRecord {
  return recordFromStats(entry.stats, entry.linkTarget, contentHash);
}

/**
 * `record` with a content hash, built field by field like `recordOfEntry` builds it: all
 * records then share a few object shapes, which keeps the per-entry comparison fast (a
 * spread copy gives V8 shapes it cannot compare at full speed).
 */
export function withContentHash(record: FileRecord, contentHash: string): FileRecord {
  const copy: FileRecord = {
    kind: record.kind,
    mode: record.mode,
    uid: record.uid,
    gid: record.gid,
    size: record.size,
    mtimeMs: record.mtimeMs,
    ctimeMs: record.ctimeMs,
    ino: record.ino,
    dev: record.dev,
    nlink: record.nlink,
  };
  if (record.rdev !== undefined) copy.rdev = record.rdev;
  if (record.linkTarget !== undefined) copy.linkTarget = record.linkTarget;
  copy.contentHash = contentHash;
  return copy;
}

/** True when every field the index keeps is what lstat says now: nothing happened to the path. */
export function statMatches(old: FileRecord, stats: EntryStat, linkTarget: string | undefined): boolean {
  return (
    old.ctimeMs === stats.ctimeMs &&
    old.mtimeMs === stats.mtimeMs &&
    old.size === stats.size &&
    old.ino === stats.ino &&
    old.mode === (stats.mode & 0o7777) &&
    old.kind === kindOfMode(stats.mode) &&
    old.uid === stats.uid &&
    old.gid === stats.gid &&
    old.nlink === stats.nlink &&
    old.dev === stats.dev &&
    old.linkTarget === linkTarget &&
    (old.rdev === undefined || old.rdev === stats.rdev)
  );
}

/** Kind, permission bits, owner, symlink target and device numbers: what every mode but `time` compares. */
function metadataDiffers(old: FileRecord, entry: WalkEntry<EntryStat>, kind: FileKind): boolean {
  const stats = entry.stats;
  return (
    kind !== old.kind ||
    (stats.mode & 0o7777) !== old.mode ||
    stats.uid !== old.uid ||
    stats.gid !== old.gid ||
    entry.linkTarget !== old.linkTarget ||
    ((kind === 'char' || kind === 'block') && stats.rdev !== old.rdev)
  );
}

class FullDetector implements ChangeDetector {
  readonly mode = 'full';
  filesRead = 0;

  constructor(private readonly hasher: ContentHasher) {}

  detect(old: FileRecord, entry: WalkEntry<EntryStat>, trust: StatTrust): Verdict {
    const stats = entry.stats;
    const unmoved = statMatches(old, stats, entry.linkTarget);
    if (unmoved && (trust === 'trusted' || old.kind !== 'file' || old.contentHash === undefined)) return SAME;
    const kind = kindOfMode(stats.mode);
    if (metadataDiffers(old, entry, kind)) return changed(entry);
    if (kind !== 'file') return refreshed(entry);
    // Same metadata; only content can tell. Without a hash to compare, a moved file is changed.
    if (old.contentHash === undefined || stats.size !== old.size) return changed(entry);
    this.filesRead++;
    const contentHash = this.hasher.hashFile(entry.fsPath);
    if (contentHash === old.contentHash) return unmoved ? SAME : refreshed(entry, contentHash);
    return changed(entry, contentHash);
  }
}

class RedoDetector implements ChangeDetector {
  readonly mode = 'redo';
  readonly filesRead = 0;

  detect(old: FileRecord, entry: WalkEntry<EntryStat>): Verdict {
    const stats = entry.stats;
    if (statMatches(old, stats, entry.linkTarget)) return SAME;
    const kind = kindOfMode(stats.mode);
    if (metadataDiffers(old, entry, kind) || stats.size !== old.size || stats.mtimeMs !== old.mtimeMs) return changed(entry);
    // Only ctime, inode or link count moved: redo does not look at those. The old content
    // hash cannot be vouched for any more, so the refreshed record goes without one.
    return refreshed(entry);
  }
}

class TimeDetector implements ChangeDetector {
  readonly mode = 'time';
  readonly filesRead = 0;

  detect(old: FileRecord, entry: WalkEntry<EntryStat>): Verdict {
    const stats = entry.stats;
    if (statMatches(old, stats, entry.linkTarget)) return SAME;
    if (kindOfMode(stats.mode) !== old.kind || stats.mtimeMs !== old.mtimeMs) return changed(entry);
    return refreshed(entry);
  }
}

/** Files up to this size are hashed in one read into a reused buffer; larger ones stream through it. */
const CHUNK_SIZE = 1 << 20;

/**
 * xxh64 of file content, as 16 lowercase hex digits: the form `FileRecord.contentHash`
 * holds, shared with the extractor and the layer writer so their hashes compare equal.
 * Synchronous: a snapshot reads few files, and reads them while the build waits.
 */
export class ContentHasher {
  private readonly buffer = Buffer.allocUnsafe(CHUNK_SIZE);

  private constructor(private readonly api: Awaited<ReturnType<typeof xxhash>>) {}

  static async create(): Promise<ContentHasher> {
    return new ContentHasher(await xxhash());
  }

  hashBytes(bytes: Uint8Array): string {
    return formatXxh64(this.api.h64Raw(bytes));
  }

  /** The content hash of the regular file at `fsPath` (a path on this machine). */
  hashFile(fsPath: string): string {
    let fd: number;
    try {
      fd = openSync(fsPath, 'r');
    } catch (err) {
      throw new KilnError('IO', `cannot read ${fsPath} to hash it: ${describeError(err)}`, { cause: err });
    }
    try {
      const first = this.fill(fd);
      if (first < CHUNK_SIZE) return formatXxh64(this.api.h64Raw(this.buffer.subarray(0, first)));
      const state = this.api.create64();
      state.update(this.buffer);
      for (let n = this.fill(fd); n > 0; n = this.fill(fd)) state.update(n === CHUNK_SIZE ? this.buffer : this.buffer.subarray(0, n));
      return formatXxh64(state.digest());
    } catch (err) {
      throw new KilnError('IO', `cannot read ${fsPath} to hash it: ${describeError(err)}`, { cause: err });
    } finally {
      closeSync(fd);
    }
  }

  /** Reads until the buffer is full or the file ends; short reads are legal on some filesystems. */
  private fill(fd: number): number {
    let filled = 0;
    while (filled < CHUNK_SIZE) {
      const n = readSync(fd, this.buffer, filled, CHUNK_SIZE - filled, null);
      if (n === 0) break;
      filled += n;
    }
    return filled;
  }
}

export function formatXxh64(value: bigint): string {
  return value.toString(16).padStart(16, '0');
}
