import { createRequire } from 'node:module';
import { PassThrough, type Transform } from 'node:stream';
import { constants as zlibConstants, createGunzip, createGzip } from 'node:zlib';
import { KilnError, describeError } from '../util/errors.js';
import type { Compression } from './mediatypes.js';

// Larger zlib chunks mean fewer callbacks per MiB; measured faster with parallel streams.
const ZLIB_CHUNK_SIZE = 1 << 20;

/**
 * Levels kiln uses when a user gives no --compression-level: the fastest setting, which is
 * what kaniko (through go-containerregistry) writes for both gzip and zstd.
 */
export const DEFAULT_COMPRESSION_LEVEL: Readonly<Record<Exclude<Compression, 'none'>, number>> = { gzip: 1, zstd: 1 };

const LEVEL_RANGE: Readonly<Record<Exclude<Compression, 'none'>, [number, number]>> = { gzip: [0, 9], zstd: [1, 22] };

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

/** How many leading bytes `detectCompression` needs to tell the formats apart. */
export const COMPRESSION_MAGIC_LENGTH = ZSTD_MAGIC.length;

/** Tells gzip and zstd from anything else (an uncompressed tar) by their magic bytes. */
export function detectCompression(firstBytes: Buffer): Compression {
  if (startsWith(firstBytes, GZIP_MAGIC)) return 'gzip';
  if (startsWith(firstBytes, ZSTD_MAGIC)) return 'zstd';
  return 'none';
}

function startsWith(bytes: Buffer, magic: readonly number[]): boolean {
  return bytes.length >= magic.length && magic.every((byte, i) => bytes[i] === byte);
}

/** A stream that turns `compression`-compressed bytes back into the original bytes. */
export function decompress(compression: Compression): Transform {
  switch (compression) {
    case 'none':
      return new PassThrough();
    case 'gzip':
      return createGunzip({ chunkSize: ZLIB_CHUNK_SIZE });
    case 'zstd':
      return new (loadZstd().DecompressStream)();
  }
}

/** A stream that compresses with `compression` at `level` (default: DEFAULT_COMPRESSION_LEVEL). */
export function compress(compression: Compression, level?: number): Transform {
  if (compression === 'none') return new PassThrough();
  const chosen = level ?? DEFAULT_COMPRESSION_LEVEL[compression];
  const [min, max] = LEVEL_RANGE[compression];
  if (!Number.isInteger(chosen) || chosen < min || chosen > max) {
    throw new KilnError('USAGE', `Compression level ${chosen} is out of range for ${compression}: use a whole number from ${min} to ${max}.`);
  }
  if (compression === 'gzip') {
    return createGzip({ level: chosen, chunkSize: ZLIB_CHUNK_SIZE, strategy: zlibConstants.Z_DEFAULT_STRATEGY });
  }
  return new (loadZstd().CompressStream)({ compressionLevel: chosen });
}

type ZstdModule = typeof import('zstd-napi');

/**
 * zstd-napi is a native addon: loaded on first use so that a machine where it failed to build
 * can still handle gzip and uncompressed layers, and learns why zstd is missing only if it
 * meets a zstd layer.
 */
function loadZstd(): ZstdModule {
  try {
    return createRequire(import.meta.url)('zstd-napi') as ZstdModule;
  } catch (err) {
    throw new KilnError('INTERNAL', `zstd support is unavailable because the zstd-napi module did not load (${describeError(err)}); reinstall kiln's dependencies or use gzip.`, { cause: err });
  }
}
