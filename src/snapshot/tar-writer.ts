import { closeSync, constants, fstatSync, openSync, readSync, readlinkSync } from 'node:fs';
import type { XXHashAPI } from 'xxhash-wasm';
import { KilnError, describeError } from '../util/errors.js';
import { TarBuffer, type ChunkPool } from './tar-buffer.js';
import { headerLength, padding, paxRecordsFor, writeTarHeader, type TarEntryType, type TarHeader } from './tar-header.js';
import type { FileIndex, FileRecord } from './file-index.js';
import type { FileReaders, ReadBatch } from './file-readers.js';
import type { PlannedEntry } from './tar-plan.js';

/** Files below this size are read whole into the output buffer; larger ones in pieces. */
export const SMALL_FILE_LIMIT = 1 << 20;

// A large file is read straight into the output chunk; below this much free room a fresh
// chunk is started so reads stay big.
const MIN_READ = 64 << 10;

// O_NOFOLLOW: a file replaced by a symlink since the scan must not be followed out of the root.
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

export interface TarWriteOptions {
  rootDir: string;
  /** Where entries planned without a record of their own find theirs (see `PlannedEntry`). */
  index?: FileIndex;
  /** Where output chunks come from, when their consumer gives them back. */
  chunks?: ChunkPool;
  /** Write every time as 0 (1970-01-01) so the same tree always gives the same bytes. */
  reproducible: boolean;
  xxhash: XXHashAPI;
  /** When given, small files are read ahead on these threads instead of one by one here. */
  readers?: FileReaders;
}

/** What writing found out, filled in as the stream is consumed. */
export interface TarWriteStats {
  entries: number;
  /** xxh64 (16 hex digits) of every regular file written, by image path. */
  contentHashes: Map<string, string>;
  /** Paths that disappeared between planning and reading. */
  vanished: string[];
}

export function newTarWriteStats(): TarWriteStats {
  return { entries: 0, contentHashes: new Map(), vanished: [] };
}

/**
 * The tar stream of a planned layer, as ~1 MiB chunks. File content is read synchronously
 * straight into the chunk being built — no copy and no thread-pool round trip per file —
 * while compression of earlier chunks runs on libuv's thread pool. With `readers`, small
 * files are read a few segments ahead on those threads and copied in from there.
 */
export async function* tarChunks(entries: readonly PlannedEntry[], options: TarWriteOptions, stats: TarWriteStats): AsyncGenerator<Buffer> {
  const out = new TarBuffer(options.chunks);
  const written = new Set<string>();
  const ahead: Segment[] = [];
  let planned = 0;
  const readAhead = () => {
    while (ahead.length < SEGMENTS_AHEAD && planned < entries.length) {
      const segment = segmentAt(entries, planned, options);
      planned = segment.end;
      ahead.push(segment);
    }
  };
  readAhead();
  for (let segment = ahead.shift(); segment !== undefined; segment = ahead.shift()) {
    readAhead();
    const batch = segment.reads !== undefined ? await segment.reads : undefined;
    for (let i = segment.start; i < segment.end; i++) {
      const entry = entries[i]!;
      const record = segment.records[i - segment.start];
      if (entry.kind === 'whiteout') {
        // Whiteouts carry no metadata of their own; fixed values keep digests stable.
        writeHeaderOnly(out, { name: entry.path.slice(1), type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime: 0 });
        stats.entries++;
      } else if (record === undefined) {
        // Planned from the index, and gone from it since: nothing left to say about the path.
        stats.vanished.push(entry.path);
        continue;
      } else if (entry.linkTo !== undefined && written.has(entry.linkTo)) {
        const header = headerOf(entry.path, record, 'link', options);
        header.linkname = entry.linkTo.slice(1);
        writeHeaderOnly(out, header);
        const hash = stats.contentHashes.get(entry.linkTo);
        if (hash !== undefined) stats.contentHashes.set(entry.path, hash);
        stats.entries++;
      } else {
        const slot = segment.slots.get(i);
        const large = record.kind === 'file' && record.size >= SMALL_FILE_LIMIT;
        const ok = large
          ? yield* writeLargeFile(out, entry.path, record, options, stats)
          : batch !== undefined && slot !== undefined
            ? writeSmallFile(out, entry.path, record, options, stats, readFrom(batch, slot))
            : writeNode(out, entry.path, record, options, stats);
        if (!ok) {
          stats.vanished.push(entry.path);
          continue;
        }
        if (record.nlink > 1) written.add(entry.path);
        stats.entries++;
      }
      if (out.hasReady) yield* out.take();
    }
  }
  out.zeros(2 * 512); // end-of-archive marker
  out.flush();
  yield* out.take();
}

// A segment is read as one batch: enough files to make a thread's round trip worth it, few
// enough bytes that the segments in flight stay a few MiB.
const SEGMENT_ENTRIES = 512;
const SEGMENT_BYTES = 2 << 20;
const SEGMENTS_AHEAD = 6;

/** Consecutive planned entries with their records, and the read of their small files if any. */
interface Segment {
  start: number;
  end: number;
  records: (FileRecord | undefined)[];
  /** Entry index → the file's place in `reads`. */
  slots: Map<number, number>;
  reads?: Promise<ReadBatch>;
}

function segmentAt(entries: readonly PlannedEntry[], start: number, options: TarWriteOptions): Segment {
  const records: (FileRecord | undefined)[] = [];
  const slots = new Map<number, number>();
  const paths: string[] = [];
  const sizes: number[] = [];
  let bytes = 0;
  let i = start;
  for (; i < entries.length && i - start < SEGMENT_ENTRIES && bytes < SEGMENT_BYTES; i++) {
    const entry = entries[i]!;
    const record = entry.kind === 'node' ? (entry.record ?? options.index?.get(entry.path)) : undefined;
    records.push(record);
    // Second names of an inode are usually links to a file written before them: not read.
    if (options.readers === undefined || record?.kind !== 'file' || record.size === 0 || record.size >= SMALL_FILE_LIMIT || (entry.kind === 'node' && entry.linkTo !== undefined)) continue;
    slots.set(i, paths.length);
    paths.push(options.rootDir + entry.path);
    sizes.push(record.size);
    bytes += record.size;
  }
  const reads = paths.length > 0 ? options.readers!.read(paths, sizes) : undefined;
  // Nobody may await a segment the stream never reaches (it failed first).
  reads?.catch(() => undefined);
  return { start, end: i, records, slots, reads };
}

/** Content of a small file: read here, or taken from a reader thread's batch. */
type SmallFileSource = (buffer: Buffer, offset: number, size: number) => number | 'gone';

function readFrom(batch: ReadBatch, slot: number): SmallFileSource {
  return (buffer, offset) => {
    const file = batch.file(slot);
    if (file.kind === 'gone') return 'gone';
    if (file.kind === 'failed') throw file.error;
    file.data.copy(buffer, offset);
    return file.data.length;
  };
}

function headerOf(path: string, record: FileRecord, type: TarEntryType, options: TarWriteOptions): TarHeader {
  return {
    name: type === 'dir' ? path.slice(1) + '/' : path.slice(1),
    type,
    mode: record.mode,
    uid: record.uid,
    gid: record.gid,
    size: 0,
    // Whole seconds, truncated, as docker writes them.
    mtime: options.reproducible ? 0 : Math.floor(record.mtimeMs / 1000),
  };
}

function writeHeaderOnly(out: TarBuffer, header: TarHeader): void {
  const pax = paxRecordsFor(header);
  const length = headerLength(pax);
  out.reserve(length);
  writeTarHeader(out.buffer, out.offset, header, pax);
  out.commit(length);
}

/** Everything but large regular files. Returns false when the path vanished. */
function writeNode(out: TarBuffer, path: string, record: FileRecord, options: TarWriteOptions, result: TarWriteStats): boolean {
  if (record.kind === 'file') return writeSmallFile(out, path, record, options, result, readHere(options.rootDir + path));
  if (record.kind === 'dir') {
    writeHeaderOnly(out, headerOf(path, record, 'dir', options));
  } else if (record.kind === 'symlink') {
    const header = headerOf(path, record, 'symlink', options);
    if (record.linkTarget !== undefined) {
      header.linkname = record.linkTarget;
    } else {
      try {
        header.linkname = readlinkSync(options.rootDir + path);
      } catch (err) {
        if (isGone(err)) return false;
        throw readError(path, err);
      }
    }
    writeHeaderOnly(out, header);
  } else if (record.kind === 'char' || record.kind === 'block') {
    const header = headerOf(path, record, record.kind, options);
    const { devmajor, devminor } = deviceNumbers(record.rdev ?? 0);
    header.devmajor = devmajor;
    header.devminor = devminor;
    writeHeaderOnly(out, header);
  } else {
    writeHeaderOnly(out, headerOf(path, record, 'fifo', options));
  }
  return true;
}

/**
 * Puts the file into the output buffer after room for its header, then writes the header
 * with the size actually read: a file that shrank since the scan still gives a valid
 * archive, and one that grew is cut at its scanned size.
 */
function writeSmallFile(out: TarBuffer, path: string, record: FileRecord, options: TarWriteOptions, result: TarWriteStats, source: SmallFileSource): boolean {
  const size = record.size;
  const header = headerOf(path, record, 'file', options);
  header.size = size;
  const pax = paxRecordsFor(header);
  const headerBytes = headerLength(pax);
  out.reserve(headerBytes + size + padding(size));
  const buffer = out.buffer;
  const dataStart = out.offset + headerBytes;
  let got: number | 'gone';
  try {
    got = size > 0 ? source(buffer, dataStart, size) : 0;
  } catch (err) {
    throw readError(path, err);
  }
  if (got === 'gone') return false;
  header.size = got;
  writeTarHeader(buffer, out.offset, header, pax);
  const pad = padding(got);
  buffer.fill(0, dataStart + got, dataStart + got + pad);
  result.contentHashes.set(path, hex64(options.xxhash.h64Raw(buffer.subarray(dataStart, dataStart + got))));
  out.commit(headerBytes + got + pad);
  return true;
}

function readHere(fsPath: string): SmallFileSource {
  return (buffer, offset, size) => {
    let fd: number;
    try {
      fd = openSync(fsPath, OPEN_FLAGS);
    } catch (err) {
      if (isGone(err)) return 'gone';
      throw err;
    }
    try {
      return readFully(fd, buffer, offset, size);
    } catch (err) {
      // The scan saw a file; a directory has taken its place since.
      if ((err as NodeJS.ErrnoException).code === 'EISDIR') return 'gone';
      throw err;
    } finally {
      closeSync(fd);
    }
  };
}

function readFully(fd: number, buffer: Buffer, offset: number, length: number): number {
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buffer, offset + got, length - got, got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

/**
 * Streams a large file through the output buffer, hashing on the way. The header goes out
 * first, so a file that shrinks meanwhile cannot be fixed up and fails the layer.
 */
async function* writeLargeFile(out: TarBuffer, path: string, record: FileRecord, options: TarWriteOptions, result: TarWriteStats): AsyncGenerator<Buffer, boolean> {
  let fd: number;
  try {
    fd = openSync(options.rootDir + path, OPEN_FLAGS);
  } catch (err) {
    if (isGone(err)) return false;
    throw readError(path, err);
  }
  try {
    const current = fstatSync(fd);
    if (!current.isFile()) return false; // replaced by something else since the scan
    const size = current.size;
    const header = headerOf(path, record, 'file', options);
    header.size = size;
    writeHeaderOnly(out, header);
    const hash = options.xxhash.create64();
    let position = 0;
    while (position < size) {
      if (out.available < Math.min(size - position, MIN_READ)) out.flush();
      const want = Math.min(size - position, out.available);
      const start = out.offset;
      let n: number;
      try {
        n = readSync(fd, out.buffer, start, want, position);
      } catch (err) {
        throw readError(path, err);
      }
      if (n === 0) throw new KilnError('IO', `${path} shrank while kiln was writing it into a layer; run the build again.`);
      hash.update(out.buffer.subarray(start, start + n));
      out.commit(n);
      position += n;
      if (out.hasReady) yield* out.take();
    }
    out.zeros(padding(size));
    result.contentHashes.set(path, hex64(hash.digest()));
  } finally {
    closeSync(fd);
  }
  return true;
}

/** Linux's dev_t split (glibc's gnu_dev_major / gnu_dev_minor). */
export function deviceNumbers(rdev: number): { devmajor: number; devminor: number } {
  const dev = BigInt(rdev);
  const devmajor = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn & 0xffffffffn);
  const devminor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn & 0xffffffffn);
  return { devmajor: Number(devmajor), devminor: Number(devminor) };
}

function hex64(value: bigint): string {
  return value.toString(16).padStart(16, '0');
}

/** The path is not there any more, or (ELOOP under O_NOFOLLOW) is now a symlink: skip it. */
function isGone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP';
}

function readError(path: string, err: unknown): KilnError {
  if (err instanceof KilnError) return err;
  return new KilnError('IO', `Cannot read ${path} for the layer: ${describeError(err)}.`, { cause: err });
}
