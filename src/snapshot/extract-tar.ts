import { Writable } from 'node:stream';
import { KilnError } from '../util/errors.js';

/**
 * A synchronous, push-based tar reader for layer extraction. kiln reads layers itself rather
 * than through tar-stream because extraction of many small files is bound by per-entry cost:
 * here an entry costs one header decode and one call, with no stream object or promise per
 * entry, and file content is handed on as slices of the incoming chunk (never copied).
 *
 * Formats: POSIX ustar (with the name prefix), pax extended headers (per entry and global:
 * path, linkpath, size, mtime, atime, uid, gid, SCHILY.xattr.*), GNU long names and long link
 * names ('L', 'K'), base-256 numbers for large sizes and ids, and v7 archives.
 */

export type TarEntryType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo' | 'unsupported';

export interface TarEntry {
  /** The name as stored (pax path and GNU long names applied), not yet normalised. */
  name: string;
  type: TarEntryType;
  /** The raw type flag, to name an unsupported entry in a message. */
  typeflag: string;
  /** Permission bits including setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  /** Content bytes that follow the header (only regular files hand them on). */
  size: number;
  /** Seconds since the epoch; fractional when a pax header gave sub-second precision. */
  mtime: number;
  atime: number | undefined;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** Extended attributes from pax `SCHILY.xattr.` records, when there are any. */
  xattrs: Record<string, string> | undefined;
}

/**
 * Receives entries in archive order: `entry`, then `data` for each slice of a regular file's
 * content (slices are only valid during the call), then `end`. Runs synchronously; whatever
 * it throws stops the archive.
 */
export interface TarSink {
  entry(entry: TarEntry): void;
  data(chunk: Buffer): void;
  end(): void;
}

const BLOCK = 512;
// How much of the archive is applied between two turns of the event loop.
const SLICE = 256 << 10;
// Pax and GNU long-name records larger than this are not names: refuse them rather than buffer.
const MAX_META_SIZE = 1 << 20;

type State = 'header' | 'content' | 'meta' | 'done';
type MetaKind = 'pax' | 'global' | 'longname' | 'longlink';
type Pax = Record<string, string>;

export class TarParser {
  private state: State = 'header';
  /** An incomplete header block carried over to the next chunk. */
  private partial: Buffer | undefined;
  /** Bytes of content (or of a meta record) still to come, then `padding` bytes to skip. */
  private remaining = 0;
  private padding = 0;
  /** Whether the current content goes to the sink (regular files) or is skipped. */
  private deliver = false;
  private inEntry = false;
  private metaKind: MetaKind = 'pax';
  private metaChunks: Buffer[] = [];
  private pax: Pax | undefined;
  private globalPax: Pax | undefined;
  private longName: string | undefined;
  private longLink: string | undefined;
  /** Archive offset of the block being read, for messages about corrupt archives. */
  private offset = 0;

  constructor(
    private readonly sink: TarSink,
    /** Names the archive in messages, e.g. "layer sha256:…". */
    private readonly what: string,
  ) {}

  /** True once the end-of-archive marker was read; anything after it is ignored. */
  get ended(): boolean {
    return this.state === 'done';
  }

  write(chunk: Buffer): void {
    let at = 0;
    const length = chunk.length;
    while (at < length) {
      switch (this.state) {
        case 'header': {
          let block: Buffer;
          if (this.partial !== undefined) {
            const take = Math.min(BLOCK - this.partial.length, length - at);
            this.partial = Buffer.concat([this.partial, chunk.subarray(at, at + take)]);
            at += take;
            if (this.partial.length < BLOCK) return;
            block = this.partial;
            this.partial = undefined;
          } else if (length - at >= BLOCK) {
            block = chunk.subarray(at, at + BLOCK);
            at += BLOCK;
          } else {
            this.partial = Buffer.from(chunk.subarray(at));
            return;
          }
          this.header(block);
          this.offset += BLOCK;
          break;
        }
        case 'content': {
          if (this.remaining > 0) {
            const take = Math.min(this.remaining, length - at);
            if (this.deliver) this.sink.data(chunk.subarray(at, at + take));
            this.remaining -= take;
            at += take;
            this.offset += take;
            if (this.remaining > 0) return;
            if (this.inEntry) this.endEntry();
          }
          const skip = Math.min(this.padding, length - at);
          this.padding -= skip;
          at += skip;
          this.offset += skip;
          if (this.padding === 0) this.state = 'header';
          break;
        }
        case 'meta': {
          if (this.remaining > 0) {
            const take = Math.min(this.remaining, length - at);
            // Copied: the chunk is reused by whoever sent it once this call returns.
            this.metaChunks.push(Buffer.from(chunk.subarray(at, at + take)));
            this.remaining -= take;
            at += take;
            this.offset += take;
            if (this.remaining > 0) return;
            this.decodeMeta(Buffer.concat(this.metaChunks));
            this.metaChunks = [];
          }
          this.state = 'content';
          this.deliver = false;
          break;
        }
        case 'done':
          return;
      }
    }
  }

  /** Checks that the archive did not stop in the middle of an entry. */
  finish(): void {
    const midEntry = this.state === 'content' || this.state === 'meta' || this.partial !== undefined;
    const dangling = this.state === 'header' && (this.pax !== undefined || this.longName !== undefined || this.longLink !== undefined);
    if (midEntry || dangling) {
      throw new KilnError('INVALID_LAYER', `The tar stream of ${this.what} ends in the middle of an entry (after ${this.offset} bytes); the layer is truncated.`);
    }
  }

  private header(block: Buffer): void {
    const checksum = checksumOf(block);
    if (checksum === 8 * 0x20 && isZero(block)) {
      // End of archive. Some writers stop after one zero block; accept that too.
      this.state = 'done';
      return;
    }
    const stored = readNumber(block, 148, 8);
    if (stored !== checksum && stored !== signedChecksumOf(block)) {
      throw new KilnError('INVALID_LAYER', `The tar stream of ${this.what} has a corrupt header at byte ${this.offset} (checksum mismatch); the layer is damaged or not a tar archive.`);
    }
    const flag = block[156]!;
    const blockSize = readNumber(block, 124, 12);
    switch (flag) {
      case 0x78 /* x */:
      case 0x58 /* X, pre-POSIX Solaris pax */:
        return this.startMeta('pax', blockSize);
      case 0x67 /* g */:
        return this.startMeta('global', blockSize);
      case 0x4c /* L */:
        return this.startMeta('longname', blockSize);
      case 0x4b /* K */:
        return this.startMeta('longlink', blockSize);
    }
    const size = this.pax?.size ? parsePaxInteger(this.pax.size, 'size', this.what) : blockSize;

    const ustar = block[257] === 0x75 && block.toString('latin1', 257, 262) === 'ustar';
    const posix = ustar && block[262] === 0; // "ustar\0" (POSIX); GNU writes "ustar " without a prefix field
    let name = readString(block, 0, 100);
    if (posix && block[345] !== 0) name = readString(block, 345, 155) + '/' + name;
    let linkname = readString(block, 157, 100);
    const mode = readNumber(block, 100, 8) & 0o7777;
    let uid = readNumber(block, 108, 8);
    let gid = readNumber(block, 116, 8);
    let mtime = readNumber(block, 136, 12);
    let atime: number | undefined;
    let xattrs: Record<string, string> | undefined;

    const pax = this.pax === undefined ? this.globalPax : this.globalPax === undefined ? this.pax : { ...this.globalPax, ...this.pax };
    if (this.longName !== undefined) name = this.longName;
    if (this.longLink !== undefined) linkname = this.longLink;
    if (pax !== undefined) {
      if (pax.path) name = pax.path;
      if (pax.linkpath) linkname = pax.linkpath;
      if (pax.uid) uid = parsePaxInteger(pax.uid, 'uid', this.what);
      if (pax.gid) gid = parsePaxInteger(pax.gid, 'gid', this.what);
      if (pax.mtime) mtime = parsePaxTime(pax.mtime, 'mtime', this.what);
      if (pax.atime) atime = parsePaxTime(pax.atime, 'atime', this.what);
      for (const key in pax) {
        if (key.startsWith('SCHILY.xattr.')) (xattrs ??= {})[key.slice('SCHILY.xattr.'.length)] = pax[key]!;
      }
    }
    this.pax = undefined;
    this.longName = undefined;
    this.longLink = undefined;

    let type = typeOf(flag);
    // v7 archives mark directories only by a trailing slash.
    if (type === 'file' && (flag === 0 || flag === 0x30) && name.endsWith('/')) type = 'dir';

    const entry: TarEntry = {
      name,
      type,
      typeflag: flag === 0 ? '\\0' : String.fromCharCode(flag),
      mode,
      uid,
      gid,
      size,
      mtime,
      atime,
      linkname,
      devmajor: ustar ? readNumber(block, 329, 8) : 0,
      devminor: ustar ? readNumber(block, 337, 8) : 0,
      xattrs,
    };
    this.sink.entry(entry);
    this.inEntry = true;
    this.deliver = type === 'file';
    this.remaining = size;
    this.padding = padOf(size);
    this.state = size === 0 ? 'header' : 'content';
    if (size === 0) this.endEntry();
  }

  private endEntry(): void {
    this.inEntry = false;
    this.sink.end();
  }

  private startMeta(kind: MetaKind, size: number): void {
    if (size > MAX_META_SIZE) {
      throw new KilnError('INVALID_LAYER', `The tar stream of ${this.what} has a ${kind === 'global' ? 'global pax' : kind === 'pax' ? 'pax' : 'GNU long-name'} header of ${size} bytes at byte ${this.offset}; kiln refuses headers over ${MAX_META_SIZE} bytes.`);
    }
    this.metaKind = kind;
    this.remaining = size;
    this.padding = padOf(size);
    this.metaChunks = [];
    this.state = 'meta';
  }

  private decodeMeta(bytes: Buffer): void {
    switch (this.metaKind) {
      case 'longname':
        this.longName = readString(bytes, 0, bytes.length);
        break;
      case 'longlink':
        this.longLink = readString(bytes, 0, bytes.length);
        break;
      case 'pax':
        this.pax = { ...this.pax, ...parsePax(bytes, this.what) };
        break;
      case 'global': {
        const records = parsePax(bytes, this.what);
        const merged: Pax = { ...this.globalPax, ...records };
        // An empty value in a global header removes that default.
        for (const key of Object.keys(merged)) if (merged[key] === '') delete merged[key];
        this.globalPax = Object.keys(merged).length > 0 ? merged : undefined;
        break;
      }
    }
  }
}

/**
 * A Writable that feeds a parser; it fails if the archive is truncated. After each chunk it
 * lets the event loop turn before taking the next one: the parser's sink works synchronously,
 * and without that turn the reads and decompression feeding it (on other threads) would only
 * be started again once it ran out of input, instead of running alongside it.
 */
export function tarWritable(parser: TarParser): Writable {
  const writable: Writable = new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _encoding, callback) {
      let at = 0;
      const next = (): void => {
        // Destroyed in between (the source failed): nothing more may reach the disk.
        if (writable.destroyed) return;
        const end = Math.min(at + SLICE, chunk.length);
        try {
          parser.write(at === 0 && end === chunk.length ? chunk : chunk.subarray(at, end));
        } catch (err) {
          callback(err as Error);
          return;
        }
        at = end;
        setImmediate(at < chunk.length ? next : callback);
      };
      next();
    },
    final(callback) {
      try {
        parser.finish();
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
  });
  return writable;
}

function typeOf(flag: number): TarEntryType {
  switch (flag) {
    case 0:
    case 0x30 /* 0 */:
    case 0x37 /* 7, contiguous file: a regular file everywhere that matters */:
      return 'file';
    case 0x31:
      return 'link';
    case 0x32:
      return 'symlink';
    case 0x33:
      return 'char';
    case 0x34:
      return 'block';
    case 0x35:
      return 'dir';
    case 0x36:
      return 'fifo';
    default:
      return 'unsupported';
  }
}

function padOf(size: number): number {
  const over = size % BLOCK;
  return over === 0 ? 0 : BLOCK - over;
}

function isZero(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

/** The header checksum, with the checksum field itself counted as spaces. */
function checksumOf(block: Buffer): number {
  let sum = 8 * 0x20;
  for (let i = 0; i < 148; i++) sum += block[i]!;
  for (let i = 156; i < BLOCK; i++) sum += block[i]!;
  return sum;
}

/** The same over signed bytes, as some old writers computed it. */
function signedChecksumOf(block: Buffer): number {
  let sum = 8 * 0x20;
  for (let i = 0; i < BLOCK; i++) {
    if (i >= 148 && i < 156) continue;
    const byte = block[i]!;
    sum += byte > 127 ? byte - 256 : byte;
  }
  return sum;
}

/** A NUL-terminated UTF-8 field. */
function readString(block: Buffer, start: number, length: number): string {
  let end = start;
  const limit = start + length;
  while (end < limit && block[end] !== 0) end++;
  return block.toString('utf8', start, end);
}

/** An octal field, or a base-256 one (high bit set) as GNU tar writes for large values. */
function readNumber(block: Buffer, start: number, length: number): number {
  const first = block[start]!;
  if (first === 0xff) {
    // Negative, two's complement (a time before 1970): -(complement + 1).
    let complement = 0;
    for (let i = start; i < start + length; i++) complement = complement * 256 + (0xff - block[i]!);
    return -(complement + 1);
  }
  if (first & 0x80) {
    let value = first & 0x7f;
    for (let i = start + 1; i < start + length; i++) value = value * 256 + block[i]!;
    return value;
  }
  let i = start;
  const end = start + length;
  while (i < end && (block[i] === 0x20 || block[i] === 0)) i++;
  let value = 0;
  for (; i < end; i++) {
    const byte = block[i]!;
    if (byte < 0x30 || byte > 0x37) break;
    value = value * 8 + (byte - 0x30);
  }
  return value;
}

/** Pax records: "<length> <key>=<value>\n", the length counting the whole record. */
function parsePax(bytes: Buffer, what: string): Pax {
  const records: Pax = {};
  let at = 0;
  while (at < bytes.length) {
    if (bytes[at] === 0) break; // padding some writers leave
    const space = bytes.indexOf(0x20, at);
    const length = space === -1 ? NaN : Number(bytes.toString('latin1', at, space));
    if (!Number.isSafeInteger(length) || length <= space - at || at + length > bytes.length || bytes[at + length - 1] !== 0x0a) {
      throw new KilnError('INVALID_LAYER', `The tar stream of ${what} has a malformed pax header; the layer is damaged.`);
    }
    const record = bytes.toString('utf8', space + 1, at + length - 1);
    const equals = record.indexOf('=');
    if (equals > 0) records[record.slice(0, equals)] = record.slice(equals + 1);
    at += length;
  }
  return records;
}

function parsePaxInteger(value: string, key: string, what: string): number {
  const number = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(number)) {
    throw new KilnError('INVALID_LAYER', `The tar stream of ${what} has a pax ${key} of ${JSON.stringify(value)}, which is not a whole number.`);
  }
  return number;
}

function parsePaxTime(value: string, key: string, what: string): number {
  const number = Number(value);
  if (!/^-?\d+(\.\d+)?$/.test(value) || !Number.isFinite(number)) {
    throw new KilnError('INVALID_LAYER', `The tar stream of ${what} has a pax ${key} of ${JSON.stringify(value)}, which is not a time.`);
  }
  return number;
}
