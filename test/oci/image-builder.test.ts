import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sha256 } from '../../src/oci/digest.js';
import { createImage, imageFromParts, parseAnyManifest, parseConfig, parseIndex, parseManifest } from '../../src/oci/image-builder.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import type { ImageConfig } from '../../src/oci/types.js';
import { isKilnError } from '../../src/util/errors.js';
import { memoryLayer } from './fixtures.js';

function configFor(diffIds: string[]): ImageConfig {
  return { architecture: 'amd64', os: 'linux', config: { Env: ['PATH=/bin'] }, rootfs: { type: 'layers', diff_ids: diffIds } };
}

test('createImage serialises config and manifest and digests exactly those bytes', async () => {
  const one = await memoryLayer({ 'a.txt': 'a' });
  const two = await memoryLayer({ 'b.txt': 'b' }, 'zstd');
  const config = configFor([one.layer.diffId, two.layer.diffId]);
  const image = createImage({ config, layers: [one.layer, two.layer], flavor: 'oci', annotations: { 'org.example': 'yes' } });

  assert.equal(image.mediaType, MediaType.ociManifest);
  assert.equal(image.digest, sha256(image.rawManifest));
  assert.deepEqual(JSON.parse(image.rawManifest.toString()), {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: sha256(image.rawConfig), size: image.rawConfig.length },
    layers: [
      { mediaType: MediaType.ociLayerGzip, digest: one.layer.digest, size: one.blob.length },
      { mediaType: MediaType.ociLayerZstd, digest: two.layer.digest, size: two.blob.length },
    ],
    annotations: { 'org.example': 'yes' },
  });
  assert.equal(image.rawConfig.toString(), JSON.stringify(config), 'config keys keep the caller’s order');
  assert.deepEqual(image.manifest, JSON.parse(image.rawManifest.toString()));

  const docker = createImage({ config: configFor([]), layers: [], flavor: 'docker' });
  assert.equal(docker.manifest.mediaType, MediaType.dockerManifest);
  assert.equal(docker.manifest.config.mediaType, MediaType.dockerConfig);
});

test('createImage refuses a config whose diff_ids do not match the layers', async () => {
  const one = await memoryLayer({ a: 'a' });
  assert.throws(() => createImage({ config: configFor([]), layers: [one.layer], flavor: 'oci' }), (err) => isKilnError(err, 'INVALID_CONFIG'));
  assert.throws(() => createImage({ config: configFor([sha256('other')]), layers: [one.layer], flavor: 'oci' }), (err) => isKilnError(err, 'INVALID_CONFIG'));
});

test('images are frozen: an in-place edit fails loudly', async () => {
  const image = createImage({ config: configFor([]), layers: [], flavor: 'oci' });
  assert.throws(() => {
    (image.config.config as { Env: string[] }).Env.push('X=1');
  }, TypeError);
  assert.throws(() => {
    (image.manifest as { layers: unknown[] }).layers.push({});
  }, TypeError);
});

test('imageFromParts keeps the exact bytes it was given', async () => {
  const one = await memoryLayer({ a: 'a' }, 'gzip', 'docker');
  const rawConfig = Buffer.from(JSON.stringify(configFor([one.layer.diffId]), null, 2));
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.dockerManifest,
    config: { mediaType: MediaType.dockerConfig, size: rawConfig.length, digest: sha256(rawConfig) },
    layers: [{ mediaType: MediaType.dockerLayerGzip, size: one.blob.length, digest: one.layer.digest }],
  };
  const rawManifest = Buffer.from(JSON.stringify(manifest, null, 3) + '\n');
  const image = imageFromParts({ rawManifest, rawConfig, layers: [one.layer] });
  assert.ok(image.rawManifest.equals(rawManifest));
  assert.ok(image.rawConfig.equals(rawConfig));
  assert.equal(image.digest, sha256(rawManifest));
  assert.equal(image.mediaType, MediaType.dockerManifest);
  assert.equal(image.config.rootfs.diff_ids[0], one.layer.diffId);

  const viaFactory = imageFromParts({ rawManifest, rawConfig, layers: (descriptor, diffId) => ({ ...one.layer, digest: descriptor.digest, diffId }) });
  assert.equal(viaFactory.layers[0]!.diffId, one.layer.diffId);
});

test('imageFromParts refuses what is not one consistent image', async () => {
  const one = await memoryLayer({ a: 'a' });
  const goodConfig = Buffer.from(JSON.stringify(configFor([one.layer.diffId])));
  const manifestWith = (rawConfig: Buffer, extra: object = {}) =>
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: { mediaType: MediaType.ociConfig, size: rawConfig.length, digest: sha256(rawConfig) },
        layers: [{ mediaType: MediaType.ociLayerGzip, size: one.blob.length, digest: one.layer.digest }],
        ...extra,
      }),
    );
  const parts = (rawManifest: Buffer, rawConfig = goodConfig) => ({ rawManifest, rawConfig, layers: [one.layer] });

  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] }));
  assert.throws(() => imageFromParts(parts(index)), (err) => isKilnError(err, 'UNSUPPORTED_MEDIA_TYPE'));
  assert.throws(() => imageFromParts(parts(Buffer.from('{"schemaVersion": 2,'))), (err) => isKilnError(err, 'INVALID_MANIFEST'));

  const twoDiffIds = Buffer.from(JSON.stringify(configFor([one.layer.diffId, sha256('x')])));
  assert.throws(() => imageFromParts(parts(manifestWith(twoDiffIds), twoDiffIds)), (err) => isKilnError(err, 'INVALID_CONFIG'));

  const tampered = Buffer.from(goodConfig.toString().replace('amd64', 'arm64'));
  assert.throws(() => imageFromParts(parts(manifestWith(goodConfig), tampered)), (err) => isKilnError(err, 'DIGEST_MISMATCH'));

  const notAConfig = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux' }));
  assert.throws(() => imageFromParts(parts(manifestWith(notAConfig), notAConfig)), (err) => isKilnError(err, 'INVALID_CONFIG'));

  const artifact = manifestWith(goodConfig, { config: { mediaType: 'application/vnd.cncf.helm.config.v1+json', size: goodConfig.length, digest: sha256(goodConfig) } });
  assert.throws(() => imageFromParts(parts(artifact)), (err) => isKilnError(err, 'UNSUPPORTED_MEDIA_TYPE'));
});

test('parseManifest works out the media type from the body, the header, or the shape', () => {
  const body = { schemaVersion: 2, config: { mediaType: MediaType.ociConfig, size: 2, digest: sha256('{}') }, layers: [] };
  assert.equal(parseManifest(Buffer.from(JSON.stringify(body))).mediaType, MediaType.ociManifest);
  assert.equal(parseManifest(Buffer.from(JSON.stringify(body)), `${MediaType.dockerManifest}; charset=utf-8`).mediaType, MediaType.dockerManifest);
  const declared = Buffer.from(JSON.stringify({ ...body, mediaType: MediaType.dockerManifest }));
  assert.equal(parseManifest(declared, 'application/octet-stream').mediaType, MediaType.dockerManifest);
  assert.throws(() => parseManifest(declared, MediaType.ociManifest), (err) => isKilnError(err, 'INVALID_MANIFEST'));

  assert.throws(() => parseManifest(Buffer.from('{"schemaVersion":1,"fsLayers":[]}')), (err) => isKilnError(err, 'UNSUPPORTED_MEDIA_TYPE'));
  assert.throws(() => parseManifest(Buffer.from('[]')), (err) => isKilnError(err, 'INVALID_MANIFEST'));
  const badLayer = { ...body, layers: [{ mediaType: MediaType.ociLayer, size: 1, digest: 'sha256:nothex' }] };
  assert.throws(() => parseManifest(Buffer.from(JSON.stringify(badLayer))), (err) => isKilnError(err, 'INVALID_MANIFEST') && /layer 1/i.test(err.message));
  const negative = { ...body, layers: [{ mediaType: MediaType.ociLayer, size: -3, digest: sha256('') }] };
  assert.throws(() => parseManifest(Buffer.from(JSON.stringify(negative))), (err) => isKilnError(err, 'INVALID_MANIFEST'));
});

test('parseIndex and parseAnyManifest tell an index from a manifest', () => {
  const index = { schemaVersion: 2, manifests: [{ mediaType: MediaType.ociManifest, size: 10, digest: sha256('m'), platform: { os: 'linux', architecture: 'arm64' } }] };
  const parsed = parseIndex(Buffer.from(JSON.stringify(index)));
  assert.equal(parsed.mediaType, MediaType.ociIndex);
  assert.equal(parsed.index.manifests[0]!.platform!.architecture, 'arm64');
  assert.equal(parseAnyManifest(Buffer.from(JSON.stringify(index)), MediaType.dockerManifestList).kind, 'index');
  const noPlatformFields = { schemaVersion: 2, manifests: [{ mediaType: MediaType.ociManifest, size: 10, digest: sha256('m'), platform: { os: 'linux' } }] };
  assert.throws(() => parseIndex(Buffer.from(JSON.stringify(noPlatformFields))), (err) => isKilnError(err, 'INVALID_MANIFEST'));
  const manifest = { schemaVersion: 2, config: { mediaType: MediaType.ociConfig, size: 2, digest: sha256('{}') }, layers: [] };
  assert.throws(() => parseIndex(Buffer.from(JSON.stringify(manifest))), (err) => isKilnError(err, 'UNSUPPORTED_MEDIA_TYPE'));
});

test('parseConfig checks rootfs and diff_ids', () => {
  assert.equal(parseConfig(Buffer.from(JSON.stringify(configFor([sha256('a')])))).rootfs.diff_ids.length, 1);
  assert.throws(() => parseConfig(Buffer.from(JSON.stringify(configFor(['nope'])))), (err) => isKilnError(err, 'INVALID_CONFIG'));
  assert.throws(() => parseConfig(Buffer.from('not json')), (err) => isKilnError(err, 'INVALID_CONFIG'));
});
