import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { extract as tarExtract, pack as tarPack } from 'tar-stream';
import { streamLayer } from '../../src/oci/blob-layer.js';
import { sha256 } from '../../src/oci/digest.js';
import type { Image } from '../../src/oci/image.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import { appendLayers, emptyImage, setContainerConfig } from '../../src/oci/mutate.js';
import { readDockerTarball, writeDockerTarball } from '../../src/oci/tarball.js';
import { indexTar } from '../../src/oci/tar-index.js';
import { isKilnError } from '../../src/util/errors.js';
import { makeTar, memoryLayer, readAll } from './fixtures.js';
import { withTempDir } from '../temp-dir.js';

const withDir = <T>(fn: (dir: string) => Promise<T>): Promise<T> => withTempDir('tarball', fn);

async function listArchive(path: string): Promise<Map<string, { header: { mode?: number; mtime?: Date; size?: number }; content: Buffer }>> {
  const entries = new Map<string, { header: { mode?: number; mtime?: Date; size?: number }; content: Buffer }>();
  const extract = tarExtract();
  createReadStream(path).pipe(extract as unknown as NodeJS.WritableStream);
  for await (const entry of extract) entries.set(entry.header.name, { header: entry.header, content: await readAll(entry as unknown as Readable) });
  return entries;
}

async function sampleImage(marker: string) {
  const one = await memoryLayer({ 'etc/marker': marker }, 'gzip', 'docker');
  const shared = await memoryLayer({ 'usr/shared': 'same in every image' }, 'gzip', 'docker');
  const image = appendLayers(emptyImage({ os: 'linux', architecture: 'amd64' }, 'docker'), [{ layer: shared.layer }, { layer: one.layer }]);
  return { image, blobs: [shared.blob, one.blob] };
}

test('writeDockerTarball writes what docker load and go-containerregistry expect', () =>
  withDir(async (dir) => {
    const a = await sampleImage('a');
    const b = await sampleImage('b');
    const path = join(dir, 'image.tar');
    await writeDockerTarball(path, [
      { image: b.image, tags: ['registry.example/app:b'] },
      { image: a.image, tags: ['registry.example/app:a', 'registry.example/app:latest'] },
    ]);
    const entries = await listArchive(path);
    const hex = (digest: string) => digest.slice('sha256:'.length);
    assert.deepEqual([...entries.keys()], [
      b.image.manifest.config.digest,
      `${hex(b.image.layers[0]!.digest)}.tar.gz`,
      `${hex(b.image.layers[1]!.digest)}.tar.gz`,
      a.image.manifest.config.digest,
      `${hex(a.image.layers[1]!.digest)}.tar.gz`,
      'manifest.json',
    ], 'configs and layers first, a shared layer once, manifest.json last');
    assert.deepEqual(JSON.parse(entries.get('manifest.json')!.content.toString()), [
      { Config: a.image.manifest.config.digest, RepoTags: ['registry.example/app:a', 'registry.example/app:latest'], Layers: a.image.layers.map((l) => `${hex(l.digest)}.tar.gz`) },
      { Config: b.image.manifest.config.digest, RepoTags: ['registry.example/app:b'], Layers: b.image.layers.map((l) => `${hex(l.digest)}.tar.gz`) },
    ]);
    assert.ok(entries.get(a.image.manifest.config.digest)!.content.equals(a.image.rawConfig));
    assert.ok(entries.get(`${hex(a.image.layers[1]!.digest)}.tar.gz`)!.content.equals(a.blobs[1]!));
    const header = entries.get('manifest.json')!.header;
    assert.equal(header.mode, 0o644);
    assert.equal(header.mtime?.getTime(), 0);
  }));

test('readDockerTarball reads back the image kiln wrote, layer bytes included', () =>
  withDir(async (dir) => {
    const { image, blobs } = await sampleImage('round trip');
    const path = join(dir, 'image.tar');
    await writeDockerTarball(path, [{ image, tags: ['app:1'] }]);
    const read = await readDockerTarball(path);
    assert.ok(read.rawConfig.equals(image.rawConfig));
    assert.equal(read.mediaType, MediaType.dockerManifest);
    assert.deepEqual(read.layers.map((l) => [l.digest, l.diffId, l.size, l.mediaType]), image.layers.map((l) => [l.digest, l.diffId, l.size, l.mediaType]));
    assert.equal(read.digest, image.digest, 'same layers and config give the same manifest');
    for (const [i, layer] of read.layers.entries()) {
      assert.ok((await readAll(await layer.compressed())).equals(blobs[i]!));
      assert.ok((await readAll(await layer.uncompressed())).equals(await readAll(await image.layers[i]!.uncompressed())));
    }
    await assert.rejects(readDockerTarball(path, { tag: 'app:2' }), (err) => isKilnError(err, 'TARBALL') && err.message.includes('app:1'));
    assert.equal((await readDockerTarball(path, { tag: 'app:1' })).digest, image.digest);
  }));

test('writeDockerTarball streams into any Writable', async () => {
  const { image } = await sampleImage('stream');
  const sink = new PassThrough();
  const [, bytes] = await Promise.all([writeDockerTarball(sink, [{ image, tags: [] }]), readAll(sink)]);
  assert.equal(bytes.length % 512, 0);
  const extract = tarExtract();
  Readable.from([bytes]).pipe(extract as unknown as NodeJS.WritableStream);
  const names: string[] = [];
  for await (const entry of extract) {
    names.push(entry.header.name);
    if (entry.header.name === 'manifest.json') assert.equal(JSON.parse((await readAll(entry as unknown as Readable)).toString())[0].RepoTags, null);
    else entry.resume();
  }
  assert.equal(names.at(-1), 'manifest.json');
});

test('a failing layer stream fails the write and leaves no file behind', () =>
  withDir(async (dir) => {
    const { image } = await sampleImage('broken');
    const layer = image.layers[1]!;
    const broken = streamLayer({
      digest: layer.digest,
      diffId: layer.diffId,
      size: layer.size,
      mediaType: layer.mediaType,
      open: async () => Readable.from((async function* () { yield Buffer.alloc(10); throw new Error('connection reset'); })()),
    });
    const path = join(dir, 'out.tar');
    await assert.rejects(writeDockerTarball(path, [{ image: { ...image, layers: [image.layers[0]!, broken] } as Image, tags: ['x:1'] }]), /connection reset/);
    assert.deepEqual(await readdir(dir), []);

    const short = streamLayer({ digest: layer.digest, diffId: layer.diffId, size: layer.size, mediaType: layer.mediaType, open: async () => Readable.from([Buffer.alloc(3)]) });
    await assert.rejects(writeDockerTarball(path, [{ image: { ...image, layers: [image.layers[0]!, short] } as Image, tags: ['x:1'] }]));
    assert.deepEqual(await readdir(dir), []);
  }));

/** An archive shaped like `docker save` and `skopeo copy … docker-archive:` output: uncompressed layers behind symlinks. */
async function writeSaveStyleArchive(path: string, files: Record<string, string>[]): Promise<{ tars: Buffer[]; rawConfig: Buffer }> {
  const tars = await Promise.all(files.map((f) => makeTar(f)));
  const diffIds = tars.map((t) => sha256(t));
  const rawConfig = Buffer.from(JSON.stringify({ architecture: 'arm64', os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: diffIds } }));
  const configName = `${sha256(rawConfig).slice(7)}.json`;
  const archive = tarPack();
  const add = (name: string, content: Buffer | string) => archive.entry({ name, mode: 0o444, mtime: new Date(0) }, content);
  tars.forEach((tar, i) => {
    add(`${diffIds[i]!.slice(7)}.tar`, tar);
    archive.entry({ name: `legacy${i}/layer.tar`, type: 'symlink', linkname: `../${diffIds[i]!.slice(7)}.tar` });
  });
  add(configName, rawConfig);
  add('manifest.json', JSON.stringify([{ Config: configName, RepoTags: ['docker.io/library/app:1'], Layers: tars.map((_, i) => `legacy${i}/layer.tar`) }]));
  archive.finalize();
  await writeFile(path, await readAll(archive as unknown as Readable));
  return { tars, rawConfig };
}

test('readDockerTarball reads uncompressed layers behind symlinks, as docker save writes them', () =>
  withDir(async (dir) => {
    const path = join(dir, 'saved.tar');
    const { tars, rawConfig } = await writeSaveStyleArchive(path, [{ 'a.txt': 'a' }, { ['long/'.repeat(30) + 'name.txt']: 'deep' }]);
    const image = await readDockerTarball(path);
    assert.ok(image.rawConfig.equals(rawConfig));
    assert.equal(image.config.architecture, 'arm64');
    for (const [i, layer] of image.layers.entries()) {
      assert.equal(layer.mediaType, MediaType.dockerLayer);
      assert.equal(layer.digest, sha256(tars[i]!), 'an uncompressed layer’s digest is its diffId');
      assert.equal(layer.diffId, layer.digest);
      assert.ok((await readAll(await layer.uncompressed())).equals(tars[i]!));
    }
    // Long names inside a layer end up in pax headers; the index of the layer tar itself must follow them.
    const layerPath = join(dir, 'layer.tar');
    await writeFile(layerPath, tars[1]!);
    assert.ok([...(await indexTar(layerPath)).keys()].some((name) => name.endsWith('name.txt') && name.length > 100));
  }));

test('readDockerTarball refuses archives that are not docker archives', () =>
  withDir(async (dir) => {
    const noManifest = join(dir, 'plain.tar');
    await writeFile(noManifest, await makeTar({ 'etc/hosts': 'x' }));
    await assert.rejects(readDockerTarball(noManifest), (err) => isKilnError(err, 'TARBALL') && /manifest\.json/.test(err.message));
    const garbage = join(dir, 'garbage.tar');
    await writeFile(garbage, Buffer.alloc(2048, 7));
    await assert.rejects(readDockerTarball(garbage), (err) => isKilnError(err, 'TARBALL'));
    const twoImages = join(dir, 'two.tar');
    const a = setContainerConfig(emptyImage({ os: 'linux', architecture: 'amd64' }, 'docker'), { Cmd: ['a'] });
    const b = setContainerConfig(a, { Cmd: ['b'] });
    await writeDockerTarball(twoImages, [{ image: a, tags: ['x:a'] }, { image: b, tags: ['x:b'] }]);
    await assert.rejects(readDockerTarball(twoImages), (err) => isKilnError(err, 'TARBALL') && err.message.includes('x:a, x:b'));
    assert.deepEqual((await readDockerTarball(twoImages, { tag: 'x:b' })).config.config?.Cmd, ['b']);
  }));
