import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sha256 } from '../../src/oci/digest.js';
import type { Image } from '../../src/oci/image.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import {
  REPRODUCIBLE_TIME,
  appendHistory,
  appendLayers,
  convertFlavor,
  emptyImage,
  setContainerConfig,
  setCreated,
  setPlatform,
  zeroTimes,
} from '../../src/oci/mutate.js';
import { readAll, memoryLayer } from './fixtures.js';

/** Everything observable about an image, to prove a mutation left its input alone. */
function snapshot(image: Image) {
  return { digest: image.digest, raw: image.rawManifest.toString(), config: image.rawConfig.toString(), layers: image.layers.length, parsed: JSON.stringify(image.config) };
}

test('emptyImage is FROM scratch: no layers, the platform, a consistent manifest', () => {
  const image = emptyImage({ os: 'linux', architecture: 'arm64', variant: 'v8' }, 'docker');
  assert.equal(image.layers.length, 0);
  assert.deepEqual(image.config.rootfs, { type: 'layers', diff_ids: [] });
  assert.equal(image.config.architecture, 'arm64');
  assert.equal(image.config.variant, 'v8');
  assert.equal(image.mediaType, MediaType.dockerManifest);
  assert.equal(image.manifest.config.digest, sha256(image.rawConfig));
});

test('appendLayers adds descriptors, diff_ids and history, and leaves the input untouched', async () => {
  const base = emptyImage({ os: 'linux', architecture: 'amd64' }, 'oci');
  const before = snapshot(base);
  const one = await memoryLayer({ a: 'a' });
  const two = await memoryLayer({ b: 'b' });
  const next = appendLayers(base, [
    { layer: one.layer, history: { created_by: 'COPY a /', created: '2024-01-01T00:00:00Z', empty_layer: true } },
    { layer: two.layer },
  ]);
  assert.deepEqual(snapshot(base), before);
  assert.notEqual(next.digest, base.digest);
  assert.deepEqual(next.config.rootfs.diff_ids, [one.layer.diffId, two.layer.diffId]);
  assert.deepEqual(next.manifest.layers.map((d) => d.digest), [one.layer.digest, two.layer.digest]);
  assert.deepEqual(next.config.history, [{ created_by: 'COPY a /', created: '2024-01-01T00:00:00Z' }, {}], 'a layer step is never an empty layer');
  assert.equal(next.digest, sha256(next.rawManifest));
  assert.equal(next.manifest.config.digest, sha256(next.rawConfig));
  assert.ok((await readAll(await next.layers[1]!.uncompressed())).equals(two.tar));
});

test('appendHistory records a metadata-only step as an empty layer', () => {
  const base = emptyImage({ os: 'linux', architecture: 'amd64' }, 'oci');
  const before = snapshot(base);
  const next = appendHistory(base, { created_by: 'ENV A=1' });
  assert.deepEqual(snapshot(base), before);
  assert.deepEqual(next.config.history, [{ created_by: 'ENV A=1', empty_layer: true }]);
  assert.equal(next.layers.length, 0);
});

test('setContainerConfig merges, removes keys set to undefined, or applies an updater', () => {
  const base = setContainerConfig(emptyImage({ os: 'linux', architecture: 'amd64' }, 'oci'), { Env: ['A=1'], User: 'root' });
  const before = snapshot(base);
  const merged = setContainerConfig(base, { Cmd: ['sh'], User: undefined });
  assert.deepEqual(merged.config.config, { Env: ['A=1'], Cmd: ['sh'] });
  const updated = setContainerConfig(base, (current) => {
    current.Env = [...(current.Env ?? []), 'B=2'];
    return current;
  });
  assert.deepEqual(updated.config.config?.Env, ['A=1', 'B=2']);
  assert.deepEqual(snapshot(base), before, 'the updater received a copy');
});

test('setCreated and zeroTimes set the config and history times', () => {
  let image = emptyImage({ os: 'linux', architecture: 'amd64' }, 'oci');
  image = appendHistory(setCreated(image, new Date('2024-05-06T07:08:09Z')), { created: '2024-05-06T07:08:09Z', created_by: 'CMD x' });
  assert.equal(image.config.created, '2024-05-06T07:08:09Z');
  const before = snapshot(image);
  const zeroed = zeroTimes(image);
  assert.deepEqual(snapshot(image), before);
  assert.equal(zeroed.config.created, REPRODUCIBLE_TIME);
  assert.deepEqual(zeroed.config.history?.map((h) => h.created), [REPRODUCIBLE_TIME]);
  assert.equal(setCreated(image, undefined).config.created, undefined);
  // Same content and zeroed times give the same digest however the inputs were timed.
  const other = zeroTimes(appendHistory(setCreated(emptyImage({ os: 'linux', architecture: 'amd64' }, 'oci'), new Date()), { created: new Date().toISOString(), created_by: 'CMD x' }));
  assert.equal(other.digest, zeroed.digest);
});

test('setPlatform sets and clears platform fields', () => {
  const arm = setPlatform(emptyImage({ os: 'linux', architecture: 'amd64' }, 'oci'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  assert.equal(arm.config.architecture, 'arm');
  assert.equal(arm.config.variant, 'v7');
  const amd = setPlatform(arm, { os: 'linux', architecture: 'amd64' });
  assert.equal(amd.config.variant, undefined);
  assert.equal(arm.config.variant, 'v7');
});

test('convertFlavor relabels manifest, config and layers without touching blobs or diff_ids', async () => {
  const one = await memoryLayer({ a: 'a' }, 'gzip', 'docker');
  const two = await memoryLayer({ b: 'b' }, 'none', 'docker');
  const docker = appendLayers(emptyImage({ os: 'linux', architecture: 'amd64' }, 'docker'), [{ layer: one.layer }, { layer: two.layer }]);
  const before = snapshot(docker);
  const oci = convertFlavor(docker, 'oci');
  assert.deepEqual(snapshot(docker), before);
  assert.equal(oci.mediaType, MediaType.ociManifest);
  assert.equal(oci.manifest.config.mediaType, MediaType.ociConfig);
  assert.deepEqual(oci.manifest.layers.map((d) => d.mediaType), [MediaType.ociLayerGzip, MediaType.ociLayer]);
  assert.deepEqual(oci.layers.map((l) => l.digest), docker.layers.map((l) => l.digest));
  assert.deepEqual(oci.config.rootfs.diff_ids, docker.config.rootfs.diff_ids);
  assert.ok((await readAll(await oci.layers[0]!.compressed())).equals(one.blob));
  assert.equal(convertFlavor(oci, 'docker').digest, docker.digest, 'converting back restores the same bytes');
  assert.equal(convertFlavor(docker, 'docker'), docker);
});
