/**
 * A minimal ustar header encoder with PAX extended headers where ustar cannot say it.
 *
 * kiln writes its own headers rather than going through a general-purpose tar library
 * because layers of 100k small files spend most of their time on per-entry overhead; this
 * encoder writes straight into the output buffer and allocates nothing for the common case.
 * The layout follows POSIX ustar (the format Go's archive/tar writes for docker and kaniko):
 * names longer than 100 bytes are split into prefix + name when a `/` allows it, otherwise
 * they go into a PAX `path` record, as do long link targets and numbers too big for their
 * octal field.
 */

export const BLOCK_SIZE = 512;

export type TarEntryType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarHeader {
  /** Without a leading slash; directories end with `/` (`etc/`, `etc/passwd`). */
  name: string;
  type: TarEntryType;
  /** Permission bits including setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of data that follow; 0 for everything but regular files. */
  size: number;
  /** Modification time in whole seconds since the epoch. */
  mtime: number;
  /** Symlink target, or for a hard link the name of the entry it links to. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
}

const TYPE_FLAGS: Record<TarEntryType, number> = {
  file: 0x30, // '0'
  link: 0x31,
  symlink: 0x32,
  char: 0x33,
  block: 0x34,
  dir: 0x35,
  fifo: 0x36,
};
const PAX_FLAG = 0x78; // 'x'

const MAX_OCTAL_7 = 0o7777777; // 8-byte fields: mode, uid, gid, devmajor, devminor
const MAX_OCTAL_11 = 0o77777777777; // 12-byte fields: size, mtime

/** Bytes of padding that bring `size` up to a whole number of blocks. */
export function padding(size: number): number {
  const rest = size % BLOCK_SIZE;
  return rest === 0 ? 0 : BLOCK_SIZE - rest;
}

/**
 * The PAX extended header data an entry needs, or undefined when plain ustar holds
 * everything (the usual case). Computed separately so the caller knows how much space
 * `writeTarHeader` will use before it reserves it.
 */
export function paxRecordsFor(header: TarHeader): Buffer | undefined {
  const longName = !fitsUstarName(header.name);
  const longLink = header.linkname !== undefined && exceeds(header.linkname, 100);
  const badMtime = header.mtime < 0 || header.mtime > MAX_OCTAL_11;
  if (!longName && !longLink && !badMtime && header.size <= MAX_OCTAL_11 && header.uid <= MAX_OCTAL_7 && header.gid <= MAX_OCTAL_7) return undefined;
  let records = '';
  if (longName) records += paxRecord('path', header.name);
  if (longLink) records += paxRecord('linkpath', header.linkname!);
  if (header.size > MAX_OCTAL_11) records += paxRecord('size', String(header.size));
  if (header.uid > MAX_OCTAL_7) records += paxRecord('uid', String(header.uid));
  if (header.gid > MAX_OCTAL_7) records += paxRecord('gid', String(header.gid));
  if (badMtime) records += paxRecord('mtime', String(header.mtime));
  return Buffer.from(records, 'utf8');
}

/** True when `text` takes more than `limit` bytes in UTF-8 (cheap for short strings). */
function exceeds(text: string, limit: number): boolean {
  // A UTF-16 unit takes at most 3 UTF-8 bytes, and at least 1.
  if (text.length * 3 <= limit) return false;
  if (text.length > limit) return true;
  return Buffer.byteLength(text, 'utf8') > limit;
}

function fitsUstarName(name: string): boolean {
  return !exceeds(name, 100) || splitName(name) !== undefined;
}

/** One `"<length> <key>=<value>\n"` record; the length counts its own digits. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLength = Buffer.byteLength(body);
  let length = bodyLength + String(bodyLength).length;
  // Adding the digits can carry into one more digit (98 + 2 = 100 needs 3).
  if (String(length).length !== String(bodyLength).length) length = bodyLength + String(length).length;
  return `${length}${body}`;
}

/** Bytes `writeTarHeader` writes for an entry with these PAX records. */
export function headerLength(pax: Buffer | undefined): number {
  return pax === undefined ? BLOCK_SIZE : 2 * BLOCK_SIZE + pax.length + padding(pax.length);
}

/**
 * Writes the header block(s) of `header` at `offset` and returns the bytes written, which
 * is `headerLength(pax)`. `pax` must come from `paxRecordsFor(header)`.
 */
export function writeTarHeader(target: Buffer, offset: number, header: TarHeader, pax: Buffer | undefined): number {
  let at = offset;
  if (pax !== undefined) {
    // Readers ignore the extended header's own name; this is the one Go's archive/tar uses.
    writeBlock(target, at, { name: paxHeaderName(header.name), type: 'file', mode: 0o644, uid: 0, gid: 0, size: pax.length, mtime: Math.max(0, Math.min(header.mtime, MAX_OCTAL_11)) }, PAX_FLAG);
    at += BLOCK_SIZE;
    pax.copy(target, at);
    at += pax.length;
    const pad = padding(pax.length);
    target.fill(0, at, at + pad);
    at += pad;
  }
  writeBlock(target, at, header, TYPE_FLAGS[header.type]);
  return at + BLOCK_SIZE - offset;
}

// An empty ustar header: magic and version set, the checksum field as eight spaces.
const TEMPLATE = (() => {
  const block = Buffer.alloc(BLOCK_SIZE);
  block.write('ustar\u000000', 257, 8, 'latin1');
  block.fill(0x20, 148, 156);
  return block;
})();
const TEMPLATE_SUM = TEMPLATE.reduce((sum, byte) => sum + byte, 0);

/**
 * One header block. The checksum is summed from what is written into the template (whose
 * fields are zero) rather than over all 512 bytes: a layer of 100,000 small files has as
 * many headers.
 */
function writeBlock(target: Buffer, offset: number, header: TarHeader, typeFlag: number): void {
  target.set(TEMPLATE, offset);
  let sum = TEMPLATE_SUM;
  if (!exceeds(header.name, 100)) {
    sum += writeText(target, offset, 100, header.name);
  } else {
    const split = splitName(header.name);
    if (split !== undefined) {
      sum += writeText(target, offset + 345, 155, split.prefix);
      sum += writeText(target, offset, 100, split.name);
    } else {
      // The PAX `path` record carries the real name; the field keeps a readable stub.
      sum += writeText(target, offset, 100, header.name);
    }
  }
  sum += writeOctal(target, offset + 100, 8, header.mode & 0o7777);
  sum += writeOctal(target, offset + 108, 8, header.uid > MAX_OCTAL_7 ? 0 : header.uid);
  sum += writeOctal(target, offset + 116, 8, header.gid > MAX_OCTAL_7 ? 0 : header.gid);
  sum += writeOctal(target, offset + 124, 12, header.size > MAX_OCTAL_11 ? 0 : header.size);
  sum += writeOctal(target, offset + 136, 12, header.mtime < 0 || header.mtime > MAX_OCTAL_11 ? 0 : header.mtime);
  target[offset + 156] = typeFlag;
  sum += typeFlag;
  if (header.linkname !== undefined) sum += writeText(target, offset + 157, 100, header.linkname);
  sum += writeDevice(target, offset + 329, header.devmajor ?? 0);
  sum += writeDevice(target, offset + 337, header.devminor ?? 0);
  // The checksum counts its own field as eight spaces, as the template has it.
  writeOctal(target, offset + 148, 7, sum);
  target[offset + 155] = 0x20;
}

/** UTF-8 text into a field of the template (cut at `width` bytes); returns the sum of its bytes. */
function writeText(target: Buffer, offset: number, width: number, text: string): number {
  const written = target.write(text, offset, width, 'utf8');
  let sum = 0;
  for (let i = offset; i < offset + written; i++) sum += target[i]!;
  return sum;
}

/** `value` as zero-padded octal filling `width - 1` bytes, then a NUL; returns the sum of the bytes. */
function writeOctal(target: Buffer, offset: number, width: number, value: number): number {
  let rest = value;
  let sum = 0;
  for (let i = offset + width - 2; i >= offset; i--) {
    const digit = 0x30 + (rest % 8);
    target[i] = digit;
    sum += digit;
    rest = Math.floor(rest / 8);
  }
  target[offset + width - 1] = 0;
  return sum;
}

/** Device numbers beyond 7 octal digits use the base-256 form GNU tar and Go both read. */
function writeDevice(target: Buffer, offset: number, value: number): number {
  if (value <= MAX_OCTAL_7) return writeOctal(target, offset, 8, value);
  let rest = value;
  let sum = 0x80;
  for (let i = offset + 7; i > offset; i--) {
    target[i] = rest % 256;
    sum += target[i]!;
    rest = Math.floor(rest / 256);
  }
  target[offset] = 0x80;
  return sum;
}

/**
 * Splits a long name into ustar's prefix (≤155 bytes) and name (≤100 bytes) at a `/`, the
 * way Go's archive/tar does, or returns undefined when no split fits.
 */
export function splitName(name: string): { prefix: string; name: string } | undefined {
  const length = Buffer.byteLength(name, 'utf8');
  if (length <= 100) return undefined;
  // Cut positions are byte offsets; for ASCII names they equal string indexes.
  const bytes = length === name.length ? undefined : Buffer.from(name, 'utf8');
  let limit = length;
  if (limit > 156) limit = 156;
  else if (name.endsWith('/')) limit--;
  const slash = bytes === undefined ? name.lastIndexOf('/', limit - 1) : bytes.lastIndexOf(0x2f, limit - 1);
  if (slash <= 0) return undefined;
  const suffixLength = length - slash - 1;
  if (suffixLength === 0 || suffixLength > 100 || slash > 155) return undefined;
  if (bytes === undefined) return { prefix: name.slice(0, slash), name: name.slice(slash + 1) };
  return { prefix: bytes.toString('utf8', 0, slash), name: bytes.toString('utf8', slash + 1) };
}

function paxHeaderName(name: string): string {
  const trimmed = name.endsWith('/') ? name.slice(0, -1) : name;
  const slash = trimmed.lastIndexOf('/');
  const dir = slash < 0 ? '' : trimmed.slice(0, slash + 1);
  return `${dir}PaxHeaders.0/${trimmed.slice(slash + 1)}`;
}
