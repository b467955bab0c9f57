import { open, type FileHandle } from 'node:fs/promises';
import { posix } from 'node:path';
import { KilnError, describeError } from '../util/errors.js';

/**
 * A table of contents of a tar archive on disk: where each entry's data starts and how long
 * it is. Built by reading headers only and skipping over the data, so indexing a multi-GiB
 * `docker save` archive reads a few KiB, and any entry can then be streamed on its own.
 */
export interface TarEntry {
  name: string;
  type: 'file' | 'hardlink' | 'symlink' | 'directory' | 'other';
  /** Byte offset of the entry's data in the archive. */
  offset: number;
  size: number;
  linkname?: string;
}

const BLOCK = 512;
// pax and GNU long-name records are small; anything larger means a corrupt archive.
const MAX_EXTENDED_HEADER = 1 << 20;

export async function indexTar(path: string): Promise<Map<string, TarEntry>> {
  const handle = await open(path, 'r').catch((err: unknown) => {
    throw new KilnError('IO', `Cannot open the tar archive ${path}: ${describeError(err)}.`, { cause: err });
  });
  try {
    return await readEntries(handle, path);
  } finally {
    await handle.close();
  }
}

async function readEntries(handle: FileHandle, path: string): Promise<Map<string, TarEntry>> {
  const entries = new Map<string, TarEntry>();
  const header = Buffer.alloc(BLOCK);
  let position = 0;
  let pending: { name?: string; linkname?: string; size?: number } = {};
  for (;;) {
    const { bytesRead } = await handle.read(header, 0, BLOCK, position);
    if (bytesRead === 0 || header.every((byte) => byte === 0)) break;
    if (bytesRead < BLOCK) throw corrupt(path, position, 'truncated header');
    if (!checksumMatches(header)) throw corrupt(path, position, 'bad header checksum');
    const typeflag = String.fromCharCode(header[156]!);
    const extended = typeflag === 'x' || typeflag === 'L' || typeflag === 'K' || typeflag === 'g';
    const size = extended ? readNumber(header, 124, 12) : (pending.size ?? readNumber(header, 124, 12));
    const offset = position + BLOCK;
    position = offset + Math.ceil(size / BLOCK) * BLOCK;

    if (typeflag === 'g') continue;
    if (extended) {
      const data = await readExtended(handle, offset, size, path);
      if (typeflag === 'x') pending = { ...pending, ...parsePax(data) };
      else if (typeflag === 'L') pending.name = cString(data, 0, data.length);
      else pending.linkname = cString(data, 0, data.length);
      continue;
    }

    const name = normaliseName(pending.name ?? headerName(header));
    const linkname = pending.linkname ?? cString(header, 157, 100);
    pending = {};
    const entry: TarEntry = { name, type: entryType(typeflag), offset, size };
    if (entry.type === 'symlink' || entry.type === 'hardlink') entry.linkname = linkname;
    entries.set(name, entry);
  }
  return entries;
}

/** Follows symlinks and hard links to the regular file an entry name stands for. */
export function resolveTarFile(entries: ReadonlyMap<string, TarEntry>, name: string): TarEntry | undefined {
  let current = entries.get(normaliseName(name));
  for (let hops = 0; current && hops < 16; hops++) {
    if (current.type === 'file') return current;
    if (current.type === 'symlink') current = entries.get(normaliseName(posix.join(posix.dirname(current.name), current.linkname ?? '')));
    else if (current.type === 'hardlink') current = entries.get(normaliseName(current.linkname ?? ''));
    else return undefined;
  }
  return undefined;
}

function entryType(typeflag: string): TarEntry['type'] {
  switch (typeflag) {
    case '0':
    case '\0':
    case '7':
      return 'file';
    case '1':
      return 'hardlink';
    case '2':
      return 'symlink';
    case '5':
      return 'directory';
    default:
      return 'other';
  }
}

function headerName(header: Buffer): string {
  const name = cString(header, 0, 100);
  // POSIX ustar keeps long paths' leading part in "prefix"; GNU tar uses that area otherwise.
  const posixUstar = header.toString('latin1', 257, 263) === 'ustar\0';
  const prefix = posixUstar ? cString(header, 345, 155) : '';
  return prefix ? `${prefix}/${name}` : name;
}

function normaliseName(name: string): string {
  const normal = posix.normalize(name).replace(/^(\.\/)+/, '').replace(/^\/+/, '').replace(/\/+$/, '');
  return normal === '.' ? '' : normal;
}

function cString(buffer: Buffer, start: number, length: number): string {
  const end = buffer.indexOf(0, start);
  return buffer.toString('utf8', start, end === -1 || end > start + length ? start + length : end);
}

/** Octal, or GNU base-256 when the first byte has its high bit set (sizes of 8 GiB and more). */
function readNumber(header: Buffer, start: number, length: number): number {
  if (header[start]! & 0x80) {
    let value = header[start]! & 0x7f;
    for (let i = start + 1; i < start + length; i++) value = value * 256 + header[i]!;
    return value;
  }
  const text = header.toString('latin1', start, start + length).replace(/[\0 ]+$/, '').trim();
  return text === '' ? 0 : parseInt(text, 8);
}

function checksumMatches(header: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
  return sum === readNumber(header, 148, 8);
}

async function readExtended(handle: FileHandle, offset: number, size: number, path: string): Promise<Buffer> {
  if (size > MAX_EXTENDED_HEADER) throw corrupt(path, offset, `extended header of ${size} bytes`);
  const data = Buffer.alloc(size);
  const { bytesRead } = await handle.read(data, 0, size, offset);
  if (bytesRead < size) throw corrupt(path, offset, 'truncated extended header');
  return data;
}

function parsePax(data: Buffer): { name?: string; linkname?: string; size?: number } {
  const result: { name?: string; linkname?: string; size?: number } = {};
  let position = 0;
  while (position < data.length) {
    const space = data.indexOf(0x20, position);
    const length = parseInt(data.toString('latin1', position, space), 10);
    if (space === -1 || !(length > 0)) break;
    const record = data.toString('utf8', space + 1, position + length - 1);
    const equals = record.indexOf('=');
    const key = record.slice(0, equals);
    const value = record.slice(equals + 1);
    if (key === 'path') result.name = value;
    else if (key === 'linkpath') result.linkname = value;
    else if (key === 'size') result.size = parseInt(value, 10);
    position += length;
  }
  return result;
}

function corrupt(path: string, position: number, reason: string): KilnError {
  return new KilnError('TARBALL', `${path} is not a readable tar archive (${reason} at byte ${position}).`);
}
