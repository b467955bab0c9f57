import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EntryAnnotation, decodeEntry, encodeEntry, identityTag, keyTag } from '../../src/cache/entry.js';
import { hashSecret, stepKey } from '../../src/cache/key.js';
import { explainAgainst, probeResultOf } from '../../src/cache/lookup.js';
import { sha256 } from '../../src/oci/digest.js';
import { parseConfig, parseManifest } from '../../src/oci/image-builder.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import { isKilnError } from '../../src/util/errors.js';
import { memoryLayer } from '../oci/fixtures.js';

const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const created = new Date('2026-05-04T03:02:01.000Z');
const key = stepKey('sha256:' + 'f'.repeat(64), [
  { name: 'instruction', value: 'RUN make' },
  { name: 'build arg VERSION', value: hashSecret('1.0') },
], 'Dockerfile stage 0 step 1', 'Dockerfile:2 RUN make');

test('entry tags fit the tag grammar and name the key and the identity', () => {
  assert.match(keyTag(key.digest), TAG);
  assert.equal(keyTag(key.digest), key.digest.slice('sha256:'.length));
  const tag = identityTag('Dockerfile with spaces/and:colons stage 3 step 12');
  assert.match(tag, TAG);
  assert.match(tag, /^last-[a-f0-9]{40}$/);
  assert.notEqual(identityTag('a'), identityTag('b'));
});

test('a layer entry is an OCI manifest with one layer of the layer\'s own media type and a valid config', async () => {
  for (const [compression, flavor] of [['gzip', 'oci'], ['zstd', 'docker']] as const) {
    const { layer } = await memoryLayer({ 'a.txt': 'a' }, compression, flavor);
    const encoded = encodeEntry(key, { kind: 'layer', layer }, created);
    assert.equal(encoded.manifestDigest, sha256(encoded.manifest));
    const { manifest, mediaType } = parseManifest(encoded.manifest);
    assert.equal(mediaType, MediaType.ociManifest);
    assert.deepEqual(manifest.config, { mediaType: MediaType.ociConfig, digest: sha256(encoded.config), size: encoded.config.length });
    assert.deepEqual(manifest.layers, [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }]);
    const config = parseConfig(encoded.config);
    assert.deepEqual(config.rootfs.diff_ids, [layer.diffId]);
    assert.equal(config.created, created.toISOString());
    assert.equal(manifest.annotations?.[EntryAnnotation.diffId], layer.diffId);

    const entry = decodeEntry(encoded.manifest, MediaType.ociManifest, 'entry');
    assert.equal(entry.key, key.digest);
    assert.equal(entry.parent, key.parent);
    assert.equal(entry.label, key.label);
    assert.deepEqual(entry.created, created);
    assert.deepEqual(entry.inputs, key.inputs);
    assert.equal(entry.result.kind, 'layer');
    const result = probeResultOf(entry, key, 1e12, created, (descriptor, diffId) => {
      assert.equal(descriptor.digest, layer.digest);
      assert.equal(diffId, layer.diffId);
      return layer;
    });
    assert.equal(result.kind, 'hit');
  }
});

test('an empty entry has no layers and no diff_ids', () => {
  const encoded = encodeEntry(key, { kind: 'empty' }, created);
  assert.deepEqual(parseManifest(encoded.manifest).manifest.layers, []);
  assert.deepEqual(parseConfig(encoded.config).rootfs.diff_ids, []);
  assert.deepEqual(decodeEntry(encoded.manifest, undefined, 'entry').result, { kind: 'empty' });
});

test('the stored inputs never hold a build arg value', () => {
  const encoded = encodeEntry(key, { kind: 'empty' }, created);
  assert.ok(!encoded.manifest.toString().includes('"1.0"'));
});

test('decodeEntry refuses documents that are not kiln entries, naming the problem', () => {
  const good = JSON.parse(encodeEntry(key, { kind: 'empty' }, created).manifest.toString());
  const cases: [string, (m: any) => void, RegExp][] = [
    ['no version', (m) => delete m.annotations[EntryAnnotation.version], /format version/],
    ['other version', (m) => (m.annotations[EntryAnnotation.version] = '9'), /format version "9"/],
    ['bad key', (m) => (m.annotations[EntryAnnotation.key] = 'nope'), /key annotation/],
    ['bad date', (m) => (m.annotations[EntryAnnotation.created] = 'yesterday'), /created time/],
    ['empty with a layer', (m) => m.layers.push({ mediaType: MediaType.ociLayerGzip, digest: key.digest, size: 1 }), /lists layers/],
    ['layer without diff_id', (m) => { m.annotations[EntryAnnotation.result] = 'layer'; m.layers.push({ mediaType: MediaType.ociLayerGzip, digest: key.digest, size: 1 }); }, /diff_id/],
    ['bad inputs', (m) => (m.annotations[EntryAnnotation.inputs] = '[1]'), /inputs annotation/],
    ['unknown result', (m) => (m.annotations[EntryAnnotation.result] = 'maybe'), /result annotation/],
  ];
  for (const [name, edit, message] of cases) {
    const doc = structuredClone(good);
    edit(doc);
    assert.throws(() => decodeEntry(Buffer.from(JSON.stringify(doc)), undefined, 'entry'), (err) => isKilnError(err, 'INVALID_MANIFEST') && message.test(err.message), name);
  }
});

test('a miss is explained against the identity\'s last entry', () => {
  const previous = decodeEntry(encodeEntry(key, { kind: 'empty' }, created).manifest, undefined, 'entry');
  const changedArg = stepKey(key.parent, [key.inputs[0]!, { name: 'build arg VERSION', value: hashSecret('2.0') }], key.identity, key.label);
  assert.equal(explainAgainst(previous, changedArg), 'build arg VERSION changed');
  const newParent = stepKey('sha256:' + 'e'.repeat(64), key.inputs, key.identity, key.label);
  assert.equal(explainAgainst(previous, newParent), 'parent changed: an earlier step changed');
  assert.match(explainAgainst(previous, key), /no input changed/);
});
