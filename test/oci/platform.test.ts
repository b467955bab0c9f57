import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sha256 } from '../../src/oci/digest.js';
import { createIndex } from '../../src/oci/index-builder.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import { emptyImage, setPlatform } from '../../src/oci/mutate.js';
import { formatPlatform, hostPlatform, parsePlatform, platformMatches, selectManifest } from '../../src/oci/platform.js';
import type { Index } from '../../src/oci/types.js';
import { isKilnError } from '../../src/util/errors.js';

test('parsePlatform and formatPlatform round-trip os/arch[/variant]', () => {
  assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
  assert.deepEqual(parsePlatform('Linux/AMD64'), { os: 'linux', architecture: 'amd64' });
  assert.equal(formatPlatform(parsePlatform('linux/arm/v7')), 'linux/arm/v7');
  assert.equal(formatPlatform({ os: 'linux', architecture: 'amd64' }), 'linux/amd64');
  for (const bad of ['linux', 'linux/', 'a/b/c/d', 'linux/amd 64', '']) {
    assert.throws(() => parsePlatform(bad), (err) => isKilnError(err, 'USAGE'), bad);
  }
});

test('hostPlatform names the machine in OCI terms', () => {
  const host = hostPlatform();
  const expected: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  assert.equal(host.architecture, expected[process.arch] ?? process.arch);
  assert.equal(host.os, 'linux');
  if (process.arch === 'arm64') assert.equal(host.variant, 'v8');
  if (process.arch === 'x64') assert.equal(host.variant, undefined);
});

test('platformMatches normalises like containerd', () => {
  const yes: [string, string][] = [
    ['linux/arm64', 'linux/arm64/v8'],
    ['linux/arm64/v8', 'linux/arm64'],
    ['linux/amd64', 'linux/amd64/v3'],
    ['linux/arm', 'linux/arm/v7'],
    ['linux/aarch64', 'linux/arm64'],
  ];
  const no: [string, string][] = [
    ['linux/arm/v6', 'linux/arm/v7'],
    ['linux/arm64', 'linux/amd64'],
    ['windows/amd64', 'linux/amd64'],
    ['linux/arm64/v9', 'linux/arm64'],
  ];
  for (const [a, b] of yes) assert.ok(platformMatches(parsePlatform(a), parsePlatform(b)), `${a} ~ ${b}`);
  for (const [a, b] of no) assert.ok(!platformMatches(parsePlatform(a), parsePlatform(b)), `${a} !~ ${b}`);
});

function indexOf(platforms: (string | undefined)[]): Index {
  return {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: platforms.map((p, i) => ({ mediaType: MediaType.ociManifest, digest: sha256(String(i)), size: 100, ...(p ? { platform: parsePlatform(p) } : {}) })),
  };
}

test('selectManifest picks the matching entry and skips entries without a platform', () => {
  const index = indexOf([undefined, 'linux/amd64', 'linux/arm64/v8', 'linux/arm/v7']);
  assert.equal(selectManifest(index, parsePlatform('linux/arm64')).digest, sha256('2'));
  assert.equal(selectManifest(index, parsePlatform('linux/amd64')).digest, sha256('1'));
});

test('selectManifest names the platforms an index has when the wanted one is missing', () => {
  const index = indexOf(['linux/amd64', 'linux/arm64/v8', 'unknown/unknown']);
  assert.throws(
    () => selectManifest(index, parsePlatform('linux/s390x')),
    (err) => isKilnError(err, 'PLATFORM_NOT_FOUND') && err.message.includes('linux/s390x') && err.message.includes('linux/amd64, linux/arm64/v8') && !err.message.includes('unknown'),
  );
});

test('createIndex lists each image with its platform and digests the serialised index', () => {
  const amd = emptyImage({ os: 'linux', architecture: 'amd64' }, 'oci');
  const arm = setPlatform(amd, { os: 'linux', architecture: 'arm64', variant: 'v8' });
  const index = createIndex([{ image: amd }, { image: arm }], 'oci');
  assert.equal(index.mediaType, MediaType.ociIndex);
  assert.equal(index.digest, sha256(index.rawIndex));
  assert.deepEqual(JSON.parse(index.rawIndex.toString()), index.index);
  assert.deepEqual(index.index.manifests.map((d) => [d.digest, d.size, formatPlatform(d.platform!)]), [
    [amd.digest, amd.rawManifest.length, 'linux/amd64'],
    [arm.digest, arm.rawManifest.length, 'linux/arm64/v8'],
  ]);
  assert.equal(selectManifest(index.index, parsePlatform('linux/arm64')).digest, arm.digest);
  const list = createIndex([{ image: amd, platform: { os: 'linux', architecture: 'amd64', variant: 'v2' } }], 'docker');
  assert.equal(list.mediaType, MediaType.dockerManifestList);
  assert.equal(list.index.manifests[0]!.platform!.variant, 'v2');
});
