// ADD's local archives. Docker decides by content, never by name: the first bytes tell the
// compression (gzip, bzip2, xz, zstd or none), and the file is an archive when what they
// decompress to starts with a valid tar header. Anything else is copied as a plain file.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import { decompress } from '../../oci/compression.js';
import { chain } from '../../oci/streams.js';
import { extractLayer } from '../../snapshot/extract.js';
import { FileIndex } from '../../snapshot/file-index.js';
import type { IgnoreList } from '../../snapshot/ignore.js';
import { describeError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';

export type ArchiveCompression = 'none' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

const MAGIC: [ArchiveCompression, number[]][] = [
  ['gzip', [0x1f, 0x8b]],
  ['bzip2', [0x42, 0x5a, 0x68]], // "BZh"
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
];
const TAR_BLOCK = 512;

export function compressionOf(head: Buffer): ArchiveCompression {
  for (const [name, magic] of MAGIC) {
    if (head.length >= magic.length && magic.every((byte, i) => head[i] === byte)) return name;
  }
  return 'none';
}

/** The compression of the tar archive at `hostPath`, or undefined when it is not a tar archive. */
export async function detectArchive(hostPath: string): Promise<ArchiveCompression | undefined> {
  const head = Buffer.alloc(6);
  const fd = openSync(hostPath, 'r');
  let read: number;
  try {
    read = readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  const compression = compressionOf(head.subarray(0, read));
  const first = await readFirstBlock(openArchive(hostPath, compression));
  return first !== undefined && isTarHeader(first) ? compression : undefined;
}

/** The decompressed content of the archive at `hostPath`. */
export function openArchive(hostPath: string, compression: ArchiveCompression): Readable {
  switch (compression) {
    case 'none':
      return createReadStream(hostPath);
    case 'gzip':
    case 'zstd':
      return chain(createReadStream(hostPath), decompress(compression));
    case 'bzip2':
      return filterThrough('bzip2', hostPath);
    case 'xz':
      return filterThrough('xz', hostPath);
  }
}

/**
 * Extracts the archive into `destHost` (a directory) and returns the paths written, relative
 * to it with a leading `/` (`/` itself when the archive has an entry for its top directory).
 * Entries keep the owners, modes and times the archive gives them, as in Docker.
 */
export async function extractArchive(
  hostPath: string,
  compression: ArchiveCompression,
  destHost: string,
  options: { ignore: IgnoreList; logger: Logger; name: string },
): Promise<string[]> {
  const index = new FileIndex();
  // A user's archive is not an image layer: `.wh.` names in it are ordinary files, as in Docker.
  await extractLayer(openArchive(hostPath, compression), { rootDir: destHost, ignore: options.ignore, index, logger: options.logger, name: options.name, whiteouts: false });
  return [...index.paths()];
}

/** Up to the first tar block of a stream, which is then released. Undefined when the stream cannot be read. */
async function readFirstBlock(stream: Readable): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      length += (chunk as Buffer).length;
      if (length >= TAR_BLOCK) break;
    }
  } catch {
    // Damaged compressed data or a short file: not an archive Docker would extract either.
    return undefined;
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks, length).subarray(0, TAR_BLOCK);
}

/** Whether `block` is a tar header Go's archive/tar accepts: not all zeros, checksum right. */
export function isTarHeader(block: Buffer): boolean {
  if (block.length < TAR_BLOCK || block.every((byte) => byte === 0)) return false;
  const field = block.subarray(148, 156).toString('latin1').replace(/[\0 ]/g, '');
  if (!/^[0-7]+$/.test(field)) return false;
  const expected = parseInt(field, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < TAR_BLOCK; i++) {
    // The checksum field counts as eight spaces; old tars summed signed bytes.
    const byte = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += byte;
    signed += (byte << 24) >> 24;
  }
  return expected === unsigned || expected === signed;
}

/**
 * Decompresses with Debian's `bzip2` or `xz`, reading the file directly. The stream fails
 * when the tool does, and destroying it stops the tool.
 */
function filterThrough(tool: 'bzip2' | 'xz', hostPath: string): Readable {
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  const fd = openSync(hostPath, 'r');
  let child: ChildProcessByStdio<null, Readable, Readable>;
  try {
    child = spawn(tool, ['-dc'], { stdio: [fd, 'pipe', 'pipe'] }) as ChildProcessByStdio<null, Readable, Readable>;
  } finally {
    // The child has its own copy of the descriptor once spawned.
    closeSync(fd);
  }
  let stderr = '';
  let exited = false;
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    if (stderr.length < 1000) stderr += text;
  });
  child.stdout.pipe(out, { end: false });
  child.on('error', (err) => {
    exited = true;
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    out.destroy(new Error(missing ? `${tool} is not installed` : `${tool} could not be run: ${describeError(err)}`));
  });
  child.on('close', (code, signal) => {
    exited = true;
    if (code === 0) out.end();
    else if (!out.destroyed) out.destroy(new Error(`${tool} failed (${stderr.trim().split('\n')[0] || `exit ${code ?? signal}`})`));
  });
  out.on('close', () => {
    if (!exited) child.kill();
  });
  return out;
}
