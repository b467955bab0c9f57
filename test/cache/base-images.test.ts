import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { openBaseImageCache } from '../../src/cache/base-images.js';
import { storeImage } from '../../src/cache/warm-store.js';
import { sha256 } from '../../src/oci/digest.js';
import type { Image } from '../../src/oci/image.js';
import { blobPath } from '../../src/oci/layout.js';
import { appendLayers, emptyImage } from '../../src/oci/mutate.js';
import type { Platform } from '../../src/oci/types.js';
import { parseReference } from '../../src/registry/reference.js';
import { createLogger } from '../../src/util/log.js';
import { memoryLayer, readAll } from '../oci/fixtures.js';
import { withTempDir } from '../temp-dir.js';

const HOUR = 3_600_000;
const AMD64: Platform = { os: 'linux', architecture: 'amd64' };
const ARM64: Platform = { os: 'linux', architecture: 'arm64' };
const WARMED = Date.parse('2026-03-01T10:00:00.000Z');

const withDir = <T>(fn: (dir: string) => Promise<T>): Promise<T> => withTempDir('base-images', (dir) => fn(join(dir, 'cache')));

async function sampleImage(marker: string, platform: Platform = AMD64): Promise<{ image: Image; blob: Buffer }> {
  const { layer, blob } = await memoryLayer({ 'etc/marker': marker });
  return { image: appendLayers(emptyImage(platform, 'oci'), [{ layer, history: { created_by: marker } }]), blob };
}

/** A logger whose lines the test can read. */
function recordingLogger(): { logger: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const destination = new Writable({ write(chunk, _encoding, callback) { lines.push(String(chunk)); callback(); } });
  return { logger: createLogger({ level: 'debug', format: 'text', destination }), lines };
}

function open(dir: string, now: number, ttlMs = 24 * HOUR) {
  return openBaseImageCache(dir, { ttlMs, logger: recordingLogger().logger, now: () => now });
}

test('a directory without a layout is no cache at all', () =>
  withDir(async (dir) => {
    assert.equal(await open(dir, WARMED), undefined);
    await writeFile(dir, 'not a directory');
    assert.equal(await open(dir, WARMED), undefined);
  }));

test('a tag is found within the TTL, with layers streaming from the layout and no registry location', () =>
  withDir(async (dir) => {
    const { image, blob } = await sampleImage('tagged');
    await storeImage(dir, image, { refName: 'registry.test/app:1', resolvedDigest: image.digest, replace: false, warmedAt: new Date(WARMED) });
    const cache = await open(dir, WARMED + 23 * HOUR);
    const found = await cache!.find(parseReference('registry.test/app:1'), AMD64);
    assert.ok(found, 'found within the TTL');
    assert.equal(found.digest, image.digest);
    assert.ok(found.rawConfig.equals(image.rawConfig));
    const layer = found.layers[0]!;
    assert.equal(layer.location, undefined);
    const content = await readAll(await layer.compressed());
    assert.equal(sha256(content), layer.digest);
    assert.ok(content.equals(blob));
    assert.equal(await cache!.find(parseReference('registry.test/app:2'), AMD64), undefined, 'another tag is a miss');
    assert.equal(await cache!.find(parseReference('registry.test/other:1'), AMD64), undefined, 'another repository is a miss');
  }));

test('a tag warmed longer ago than the TTL is a miss, and says why at debug level', () =>
  withDir(async (dir) => {
    const { image } = await sampleImage('old');
    await storeImage(dir, image, { refName: 'registry.test/app:1', resolvedDigest: image.digest, replace: false, warmedAt: new Date(WARMED) });
    const { logger, lines } = recordingLogger();
    const cache = await openBaseImageCache(dir, { ttlMs: 24 * HOUR, logger, now: () => WARMED + 24 * HOUR + 1 });
    assert.equal(await cache!.find(parseReference('registry.test/app:1'), AMD64), undefined);
    assert.ok(lines.some((line) => line.includes('expired: cached 2026-03-01T10:00:00.000Z, --cache-ttl is 24h')), lines.join(''));
  }));

test('a digest is found whatever its age and whatever name it was warmed under', () =>
  withDir(async (dir) => {
    const { image } = await sampleImage('pinned');
    await storeImage(dir, image, { refName: 'registry.test/app:1', resolvedDigest: image.digest, replace: false, warmedAt: new Date(WARMED) });
    const cache = await open(dir, WARMED + 1000 * 24 * HOUR);
    assert.equal(await cache!.find(parseReference('registry.test/app:1'), AMD64), undefined, 'the tag has expired');
    const byDigest = await cache!.find(parseReference(`registry.test/app@${image.digest}`), AMD64);
    assert.equal(byDigest?.digest, image.digest);
    const withTag = await cache!.find(parseReference(`registry.test/mirror/app:9@${image.digest}`), ARM64);
    assert.equal(withTag?.digest, image.digest, 'a pinned manifest serves any platform, as the registry would');
    const unknown = 'sha256:' + 'b'.repeat(64);
    assert.equal(await cache!.find(parseReference(`registry.test/app@${unknown}`), AMD64), undefined);
  }));

test('an image warmed from an index is found by the index digest only for its platform', () =>
  withDir(async (dir) => {
    const amd = await sampleImage('amd', AMD64);
    const arm = await sampleImage('arm', ARM64);
    const indexDigest = 'sha256:' + 'c'.repeat(64);
    for (const { image } of [amd, arm]) {
      await storeImage(dir, image, { refName: 'registry.test/multi:1', resolvedDigest: indexDigest, replace: false, warmedAt: new Date(WARMED) });
    }
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: unknown[] };
    assert.equal(index.manifests.length, 2, 'one entry per platform under the same name');
    const cache = await open(dir, WARMED + HOUR);
    assert.equal((await cache!.find(parseReference('registry.test/multi:1'), ARM64))?.digest, arm.image.digest);
    assert.equal((await cache!.find(parseReference('registry.test/multi:1'), AMD64))?.digest, amd.image.digest);
    assert.equal((await cache!.find(parseReference(`registry.test/multi@${indexDigest}`), ARM64))?.digest, arm.image.digest);
    assert.equal(await cache!.find(parseReference('registry.test/multi:1'), { os: 'linux', architecture: 's390x' }), undefined);
    assert.equal(await cache!.find(parseReference(`registry.test/multi@${indexDigest}`), { os: 'linux', architecture: 's390x' }), undefined);
  }));

test('warming a tag again replaces its entry for that platform', () =>
  withDir(async (dir) => {
    const first = await sampleImage('first');
    const second = await sampleImage('second');
    await storeImage(dir, first.image, { refName: 'registry.test/app:1', resolvedDigest: first.image.digest, replace: false, warmedAt: new Date(WARMED) });
    await storeImage(dir, second.image, { refName: 'registry.test/app:1', resolvedDigest: second.image.digest, replace: false, warmedAt: new Date(WARMED + HOUR) });
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    assert.deepEqual(index.manifests.map((m) => m.digest), [second.image.digest]);
    const cache = await open(dir, WARMED + 2 * HOUR);
    assert.equal((await cache!.find(parseReference('registry.test/app:1'), AMD64))?.digest, second.image.digest);
    assert.equal((await cache!.find(parseReference(`registry.test/app@${first.image.digest}`), AMD64)), undefined, 'no entry names the old manifest any more');
  }));

test('an entry whose layer blob is missing or truncated is a miss with a warning, not an error', () =>
  withDir(async (dir) => {
    const { image } = await sampleImage('damaged');
    await storeImage(dir, image, { refName: 'registry.test/app:1', resolvedDigest: image.digest, replace: false, warmedAt: new Date(WARMED) });
    await truncate(blobPath(dir, image.layers[0]!.digest), 3);
    const { logger, lines } = recordingLogger();
    const cache = await openBaseImageCache(dir, { ttlMs: HOUR, logger, now: () => WARMED });
    assert.equal(await cache!.find(parseReference('registry.test/app:1'), AMD64), undefined);
    assert.ok(lines.some((line) => line.startsWith('WARN') && line.includes(image.layers[0]!.digest)), lines.join(''));
  }));

test('an unreadable index.json makes the cache absent, with a warning', () =>
  withDir(async (dir) => {
    const { image } = await sampleImage('broken');
    await storeImage(dir, image, { refName: 'registry.test/app:1', resolvedDigest: image.digest, replace: false, warmedAt: new Date(WARMED) });
    await writeFile(join(dir, 'index.json'), '{ not json');
    const { logger, lines } = recordingLogger();
    assert.equal(await openBaseImageCache(dir, { ttlMs: HOUR, logger }), undefined);
    assert.ok(lines.some((line) => line.startsWith('WARN') && line.includes(dir)), lines.join(''));
  }));
