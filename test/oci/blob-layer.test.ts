import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileLayer, relabelLayer, streamLayer } from '../../src/oci/blob-layer.js';
import { sha256 } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import { isKilnError } from '../../src/util/errors.js';
import { compressBytes, makeTar, readAll } from './fixtures.js';
import { withTempDir } from '../temp-dir.js';

const withDir = <T>(fn: (dir: string) => Promise<T>): Promise<T> => withTempDir('blob-layer', fn);

for (const compression of ['gzip', 'zstd', 'none'] as const) {
  test(`fileLayer (${compression}) streams the blob as stored and the tar decompressed`, () =>
    withDir(async (dir) => {
      const tar = await makeTar({ 'etc/hello': 'hello\n', 'bin/tool': 'x'.repeat(5000) });
      const blob = compressBytes(tar, compression);
      const path = join(dir, 'blob');
      await writeFile(path, blob);
      const mediaType = compression === 'gzip' ? MediaType.ociLayerGzip : compression === 'zstd' ? MediaType.ociLayerZstd : MediaType.ociLayer;
      const layer = fileLayer({ path, digest: sha256(blob), diffId: sha256(tar), size: blob.length, mediaType });
      assert.ok((await readAll(await layer.compressed())).equals(blob));
      assert.ok((await readAll(await layer.uncompressed())).equals(tar));
      // A layer is re-readable: every call opens a fresh stream.
      assert.ok((await readAll(await layer.uncompressed())).equals(tar));
      // It says where its blob lies, so extraction reads it in place instead of copying it.
      assert.deepEqual(layer.file, { path, offset: 0 });
    }));
}

test('fileLayer refuses a blob whose bytes or length differ from its descriptor', () =>
  withDir(async (dir) => {
    const blob = compressBytes(await makeTar({ a: 'a' }), 'gzip');
    const path = join(dir, 'blob');
    const corrupted = Buffer.from(blob);
    corrupted[corrupted.length - 5]! ^= 0xff;
    await writeFile(path, corrupted);
    const metadata = { path, digest: sha256(blob), diffId: sha256('x'), size: blob.length, mediaType: MediaType.ociLayerGzip };
    await assert.rejects(readAll(await fileLayer(metadata).compressed()), (err) => isKilnError(err, 'DIGEST_MISMATCH'));

    await writeFile(path, blob.subarray(0, blob.length - 3));
    await assert.rejects(readAll(await fileLayer(metadata).compressed()), (err) => isKilnError(err, 'SIZE_MISMATCH'));

    await rm(path);
    await assert.rejects(fileLayer(metadata).compressed(), (err) => isKilnError(err, 'IO'));
  }));

test('fileLayer reads a blob stored at an offset inside a larger file', () =>
  withDir(async (dir) => {
    const blob = Buffer.from('the layer bytes');
    const path = join(dir, 'archive');
    await writeFile(path, Buffer.concat([Buffer.from('header--'), blob, Buffer.from('--trailer')]));
    const layer = fileLayer({ path, offset: 8, digest: sha256(blob), diffId: sha256(blob), size: blob.length, mediaType: MediaType.ociLayer });
    assert.equal((await readAll(await layer.compressed())).toString(), 'the layer bytes');
  }));

test('streamLayer derives the uncompressed stream and verifies only when asked', async () => {
  const tar = await makeTar({ f: 'content' });
  const blob = compressBytes(tar, 'gzip');
  const metadata = { digest: sha256(blob), diffId: sha256(tar), size: blob.length, mediaType: MediaType.dockerLayerGzip };
  const layer = streamLayer({ ...metadata, open: async () => Readable.from([blob]) });
  assert.ok((await readAll(await layer.uncompressed())).equals(tar));

  const wrong = Buffer.from(blob);
  wrong[10]! ^= 0xff;
  const verified = streamLayer({ ...metadata, verify: true, open: async () => Readable.from([wrong]) });
  await assert.rejects(readAll(await verified.compressed()), (err) => isKilnError(err, 'DIGEST_MISMATCH'));
});

test('layers refuse malformed metadata, and relabelling keeps the blob but not across compressions', async () => {
  const open = async () => Readable.from([Buffer.from('x')]);
  assert.throws(() => streamLayer({ digest: 'sha256:abc', diffId: sha256('x'), size: 1, mediaType: MediaType.ociLayer, open }), (err) => isKilnError(err, 'INVALID_DIGEST'));
  assert.throws(() => streamLayer({ digest: sha256('x'), diffId: sha256('x'), size: -1, mediaType: MediaType.ociLayer, open }), (err) => isKilnError(err, 'INVALID_MANIFEST'));

  const layer = streamLayer({ digest: sha256('x'), diffId: sha256('x'), size: 1, mediaType: MediaType.ociLayerGzip, annotations: { a: 'b' }, open });
  const relabelled = relabelLayer(layer, MediaType.dockerLayerGzip);
  assert.equal(relabelled.mediaType, MediaType.dockerLayerGzip);
  assert.equal(relabelled.digest, layer.digest);
  assert.deepEqual(relabelled.annotations, { a: 'b' });
  assert.equal(layer.mediaType, MediaType.ociLayerGzip, 'the original layer is unchanged');
  assert.equal((await readAll(await relabelled.compressed())).toString(), 'x');
  assert.throws(() => relabelLayer(layer, MediaType.ociLayerZstd), (err) => isKilnError(err, 'UNSUPPORTED_MEDIA_TYPE'));
});
