import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { compress, decompress, detectCompression } from '../../src/oci/compression.js';
import type { Compression } from '../../src/oci/mediatypes.js';
import { isKilnError } from '../../src/util/errors.js';
import { readAll } from './fixtures.js';

// Compressible but not trivial (a 4 KiB random block repeated within gzip's 32 KiB window,
// mixed with fresh random bytes), and more than one 1 MiB zlib chunk in total.
function sample(): Buffer {
  const block = randomBytes(4 * 1024);
  return Buffer.concat(Array.from({ length: 600 }, (_, i) => (i % 3 === 0 ? randomBytes(1024) : block)));
}

async function roundTrip(data: Buffer, compression: Compression, level?: number): Promise<{ compressed: Buffer; restored: Buffer }> {
  const chunks = Array.from({ length: Math.ceil(data.length / 100_000) }, (_, i) => data.subarray(i * 100_000, (i + 1) * 100_000));
  const compressed = await readAll(Readable.from(chunks).pipe(compress(compression, level)));
  const restored = await readAll(Readable.from([compressed]).pipe(decompress(compression)));
  return { compressed, restored };
}

for (const compression of ['none', 'gzip', 'zstd'] as const) {
  test(`${compression}: compress then decompress gives the original bytes, and the magic bytes say ${compression}`, async () => {
    const data = sample();
    const { compressed, restored } = await roundTrip(data, compression);
    assert.ok(restored.equals(data));
    assert.equal(detectCompression(compressed.subarray(0, 4)), compression);
    if (compression !== 'none') assert.ok(compressed.length < data.length, 'compressed output is smaller than the input');
  });
}

test('compression levels are honoured and out-of-range levels refused with USAGE', async () => {
  const data = sample();
  const fast = await roundTrip(data, 'gzip', 1);
  const stored = await roundTrip(data, 'gzip', 0);
  assert.ok(stored.compressed.length > fast.compressed.length, 'level 0 stores instead of compressing');
  assert.ok((await roundTrip(data, 'zstd', 19)).restored.equals(data));
  for (const [compression, level] of [['gzip', 10], ['gzip', -1], ['zstd', 23], ['zstd', 1.5]] as const) {
    assert.throws(() => compress(compression, level), (err) => isKilnError(err, 'USAGE'));
  }
});

test('detectCompression tells gzip and zstd from an uncompressed tar', () => {
  assert.equal(detectCompression(Buffer.from([0x1f, 0x8b, 0x08, 0x00])), 'gzip');
  assert.equal(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])), 'zstd');
  assert.equal(detectCompression(Buffer.from('etc/passwd')), 'none');
  assert.equal(detectCompression(Buffer.from([0x28, 0xb5])), 'none');
  assert.equal(detectCompression(Buffer.alloc(0)), 'none');
});

test('decompressing truncated or corrupt input fails instead of yielding partial data silently', async () => {
  const data = sample();
  for (const compression of ['gzip', 'zstd'] as const) {
    const { compressed } = await roundTrip(data, compression);
    const truncated = compressed.subarray(0, compressed.length - 20);
    await assert.rejects(pipeline(Readable.from([truncated]), decompress(compression), async (s: AsyncIterable<Buffer>) => { for await (const _ of s); }), `${compression} truncated`);
  }
  await assert.rejects(readAll(Readable.from([Buffer.from('not gzip at all')]).pipe(decompress('gzip'))));
});
