import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { streamLayer } from '../../src/oci/blob-layer.js';
import type { Image } from '../../src/oci/image.js';
import { createIndex } from '../../src/oci/index-builder.js';
import { REF_NAME_ANNOTATION, blobPath, layoutImage, readLayout, writeBlob, writeLayout } from '../../src/oci/layout.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import { appendLayers, emptyImage, setContainerConfig, setPlatform } from '../../src/oci/mutate.js';
import { isKilnError } from '../../src/util/errors.js';
import { memoryLayer, readAll } from './fixtures.js';
import { withTempDir } from '../temp-dir.js';

const withDir = <T>(fn: (dir: string) => Promise<T>): Promise<T> => withTempDir('layout', (dir) => fn(join(dir, 'layout')));

async function sampleImage(marker: string): Promise<{ image: Image; blobs: Buffer[] }> {
  const one = await memoryLayer({ 'etc/marker': marker });
  const two = await memoryLayer({ 'bin/tool': 'tool ' + marker }, 'zstd');
  const image = appendLayers(emptyImage({ os: 'linux', architecture: 'amd64' }, 'oci'), [
    { layer: one.layer, history: { created_by: 'COPY marker' } },
    { layer: two.layer, history: { created_by: 'COPY tool' } },
  ]);
  return { image, blobs: [one.blob, two.blob] };
}

async function assertSameImage(read: Image, written: Image, blobs: Buffer[]): Promise<void> {
  assert.ok(read.rawManifest.equals(written.rawManifest), 'manifest bytes equal');
  assert.ok(read.rawConfig.equals(written.rawConfig), 'config bytes equal');
  assert.equal(read.digest, written.digest);
  assert.deepEqual(read.layers.map((l) => [l.digest, l.diffId, l.size, l.mediaType]), written.layers.map((l) => [l.digest, l.diffId, l.size, l.mediaType]));
  for (const [i, layer] of read.layers.entries()) {
    assert.ok((await readAll(await layer.compressed())).equals(blobs[i]!), `layer ${i} blob bytes equal`);
    assert.ok((await readAll(await layer.uncompressed())).equals(await readAll(await written.layers[i]!.uncompressed())), `layer ${i} tar equal`);
  }
}

test('writeLayout then layoutImage gives back the same bytes', () =>
  withDir(async (dir) => {
    const { image, blobs } = await sampleImage('one');
    const index = await writeLayout(dir, [{ image, refName: 'latest' }]);
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
    assert.deepEqual(await readLayout(dir), index);
    assert.deepEqual(index.manifests, [{ mediaType: MediaType.ociManifest, digest: image.digest, size: image.rawManifest.length, annotations: { [REF_NAME_ANNOTATION]: 'latest' } }]);
    for (const digest of [image.digest, image.manifest.config.digest, ...image.layers.map((l) => l.digest)]) {
      assert.ok((await readdir(join(dir, 'blobs', 'sha256'))).includes(digest.slice(7)), `blob ${digest} stored`);
    }
    assert.deepEqual((await readdir(join(dir, 'blobs'))).sort(), ['sha256'], 'no temporary files left behind');
    await assertSameImage(await layoutImage(dir, { refName: 'latest' }), image, blobs);
    await assertSameImage(await layoutImage(dir), image, blobs);
    await assertSameImage(await layoutImage(dir, { digest: image.digest }), image, blobs);
  }));

test('a ref name replaces the older entry of that name; other entries stay', () =>
  withDir(async (dir) => {
    const first = await sampleImage('first');
    const second = await sampleImage('second');
    await writeLayout(dir, [{ image: first.image, refName: 'app' }, { image: first.image, refName: 'keep' }]);
    await writeLayout(dir, [{ image: second.image, refName: 'app' }]);
    const index = await readLayout(dir);
    assert.deepEqual(index.manifests.map((d) => [d.annotations?.[REF_NAME_ANNOTATION], d.digest]), [
      ['keep', first.image.digest],
      ['app', second.image.digest],
    ]);
    assert.equal((await layoutImage(dir, { refName: 'app' })).digest, second.image.digest);
    await assert.rejects(layoutImage(dir), (err) => isKilnError(err, 'LAYOUT') && /2 entries/.test(err.message));
    await assert.rejects(layoutImage(dir, { refName: 'missing' }), (err) => isKilnError(err, 'LAYOUT') && err.message.includes('keep, app'));
  }));

test('an unnamed image written twice is listed once, and present blobs are not rewritten', () =>
  withDir(async (dir) => {
    const { image } = await sampleImage('x');
    await writeLayout(dir, [{ image }]);
    let opened = 0;
    const counting = image.layers.map((layer) =>
      streamLayer({ digest: layer.digest, diffId: layer.diffId, size: layer.size, mediaType: layer.mediaType, open: async () => { opened++; return layer.compressed(); } }),
    );
    const again = { ...image, layers: counting } as Image;
    await writeLayout(dir, [{ image: again }]);
    assert.equal(opened, 0, 'no layer was opened for blobs already present');
    assert.equal((await readLayout(dir)).manifests.length, 1);
    assert.equal(await writeBlob(dir, image.digest, image.rawManifest.length, image.rawManifest), 'present');
  }));

test('a blob that does not match its digest is refused, both on write and on read', () =>
  withDir(async (dir) => {
    const { image } = await sampleImage('y');
    const layer = image.layers[0]!;
    const liar = streamLayer({ digest: layer.digest, diffId: layer.diffId, size: layer.size, mediaType: layer.mediaType, open: async () => Readable.from([Buffer.alloc(layer.size, 1)]) });
    await assert.rejects(writeLayout(dir, [{ image: { ...image, layers: [liar, image.layers[1]!] } as Image }]), (err) => isKilnError(err, 'DIGEST_MISMATCH'));
    await assert.rejects(readFile(blobPath(dir, layer.digest)), { code: 'ENOENT' });
    assert.deepEqual((await readdir(join(dir, 'blobs'))).filter((name) => name.startsWith('.')), [], 'the temporary file was removed');

    await writeLayout(dir, [{ image, refName: 'ok' }]);
    const stored = await readFile(blobPath(dir, layer.digest));
    stored[stored.length >> 1]! ^= 0xff;
    await writeFile(blobPath(dir, layer.digest), stored);
    const read = await layoutImage(dir, { refName: 'ok' });
    await assert.rejects(readAll(await read.layers[0]!.compressed()), (err) => isKilnError(err, 'DIGEST_MISMATCH'));
    await assert.rejects(readAll(await read.layers[0]!.uncompressed()), (err) => isKilnError(err, 'DIGEST_MISMATCH') || /incorrect header|invalid/.test(String(err)));

    const manifestPath = blobPath(dir, image.digest);
    await writeFile(manifestPath, (await readFile(manifestPath, 'utf8')).replace('"schemaVersion":2', '"schemaVersion": 2'));
    await assert.rejects(layoutImage(dir, { refName: 'ok' }), (err) => isKilnError(err, 'SIZE_MISMATCH') || isKilnError(err, 'DIGEST_MISMATCH'));
  }));

test('an index entry resolves to the image for the wanted platform', () =>
  withDir(async (dir) => {
    const amd = (await sampleImage('amd')).image;
    const arm = setContainerConfig(setPlatform(amd, { os: 'linux', architecture: 'arm64', variant: 'v8' }), { Cmd: ['arm'] });
    const index = createIndex([{ image: amd }, { image: arm }], 'oci');
    await writeLayout(dir, [{ index, refName: 'multi' }]);
    assert.equal((await readLayout(dir)).manifests[0]!.mediaType, MediaType.ociIndex);
    assert.equal((await layoutImage(dir, { refName: 'multi', platform: { os: 'linux', architecture: 'arm64' } })).digest, arm.digest);
    assert.equal((await layoutImage(dir, { refName: 'multi', platform: { os: 'linux', architecture: 'amd64' } })).digest, amd.digest);
    await assert.rejects(layoutImage(dir, { refName: 'multi', platform: { os: 'linux', architecture: 's390x' } }), (err) => isKilnError(err, 'PLATFORM_NOT_FOUND'));
  }));

test('several images under one name are told apart by platform', () =>
  withDir(async (dir) => {
    const amd = (await sampleImage('amd')).image;
    const arm = setPlatform(amd, { os: 'linux', architecture: 'arm64' });
    await writeLayout(dir, [{ image: amd }, { image: arm }]);
    assert.equal((await layoutImage(dir, { platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } })).digest, arm.digest);
  }));

test('a directory that is not an OCI layout is refused with LAYOUT', () =>
  withDir(async (dir) => {
    await assert.rejects(readLayout(dir), (err) => isKilnError(err, 'LAYOUT'));
    await writeLayout(dir, []);
    await assert.rejects(layoutImage(dir), (err) => isKilnError(err, 'LAYOUT') && /no images/.test(err.message));
    await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"2.0.0"}');
    await assert.rejects(readLayout(dir), (err) => isKilnError(err, 'LAYOUT') && /2\.0\.0/.test(err.message));
  }));
