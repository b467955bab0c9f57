import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { identityTag, keyTag } from '../../src/cache/entry.js';
import { hashSecret, startKey, stepKey } from '../../src/cache/key.js';
import { LayoutLayerCache } from '../../src/cache/layout-cache.js';
import type { StepKey } from '../../src/cache/types.js';
import { REF_NAME_ANNOTATION, layoutImage, readLayout, writeLayout } from '../../src/oci/layout.js';
import { emptyImage } from '../../src/oci/mutate.js';
import { memoryLayer, readAll } from '../oci/fixtures.js';
import { captureLogger } from './capture-logger.js';
import { withTempDir } from '../temp-dir.js';

const DAY = 86_400_000;
const parent = startKey([{ name: 'base image', value: 'sha256:' + 'b'.repeat(64) }]);

function key(step: number, version = '1.0'): StepKey {
  return stepKey(parent, [{ name: 'instruction', value: `RUN step ${step}` }, { name: 'build arg VERSION', value: hashSecret(version) }], `Dockerfile/0/${step}`, `Dockerfile:${step} RUN step ${step}`);
}

const withDir = <T>(fn: (dir: string) => Promise<T>): Promise<T> => withTempDir('layout-cache', (dir) => fn(join(dir, 'cache')));

function cache(dir: string, options: { now?: () => Date; ttlMs?: number; push?: boolean } = {}) {
  const log = captureLogger();
  const instance = new LayoutLayerCache({ dir, ttlMs: options.ttlMs ?? 7 * DAY, push: options.push ?? true, logger: log.logger, ...(options.now ? { now: options.now } : {}) });
  return Object.assign(instance, { warnings: log.warnings });
}

test('an empty or missing directory answers "not in the cache" without a warning', () =>
  withDir(async (dir) => {
    const reader = cache(dir);
    assert.deepEqual(await reader.probe([key(1)]), [{ kind: 'miss', reason: 'not in the cache' }]);
    assert.equal(await reader.explainMiss(key(1)), 'no earlier build of this step is cached');
    assert.deepEqual(reader.warnings(), []);
  }));

test('a layer and an empty step written by one cache are hits for another, with the same content', () =>
  withDir(async (dir) => {
    const made = await memoryLayer({ 'etc/cached.txt': 'from an earlier build\n' }, 'zstd');
    const writer = cache(dir);
    writer.put(key(1), { kind: 'layer', layer: made.layer });
    writer.put(key(2), { kind: 'empty' });
    await writer.settle();
    assert.deepEqual(writer.warnings(), []);

    const reader = cache(dir);
    const [layerHit, emptyHit, miss] = await reader.probe([key(1), key(2), key(3)]);
    assert.equal(layerHit?.kind, 'hit');
    assert.ok(layerHit?.kind === 'hit' && layerHit.result.kind === 'layer');
    const layer = layerHit.result.layer;
    assert.deepEqual([layer.digest, layer.diffId, layer.size, layer.mediaType], [made.layer.digest, made.layer.diffId, made.layer.size, made.layer.mediaType]);
    assert.ok((await readAll(await layer.compressed())).equals(made.blob));
    assert.ok((await readAll(await layer.uncompressed())).equals(made.tar));
    assert.ok(emptyHit?.kind === 'hit' && emptyHit.result.kind === 'empty');
    assert.deepEqual(miss, { kind: 'miss', reason: 'not in the cache' });
    assert.equal(await reader.blobLocation(made.layer.digest), undefined);
  }));

test('the directory stays a valid OCI layout that other readers can open', () =>
  withDir(async (dir) => {
    const made = await memoryLayer({ 'a.txt': 'a' });
    const writer = cache(dir);
    writer.put(key(1), { kind: 'layer', layer: made.layer });
    await writer.settle();
    const names = (await readLayout(dir)).manifests.map((d) => d.annotations?.[REF_NAME_ANNOTATION]).sort();
    assert.deepEqual(names, [keyTag(key(1).digest), identityTag(key(1).identity)].sort());
    const image = await layoutImage(dir, { refName: keyTag(key(1).digest) });
    assert.deepEqual(image.config.rootfs.diff_ids, [made.layer.diffId]);
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
    assert.deepEqual((await readdir(dir)).filter((name) => name.startsWith('.kiln-tmp') || name.endsWith('.lock')), []);
  }));

test('entries older than the TTL are misses naming when they were cached', () =>
  withDir(async (dir) => {
    const writtenAt = new Date('2026-01-10T08:00:00.000Z');
    const writer = cache(dir, { now: () => writtenAt });
    writer.put(key(1), { kind: 'empty' });
    await writer.settle();
    const later = cache(dir, { ttlMs: DAY, now: () => new Date(writtenAt.getTime() + 2 * DAY) });
    assert.deepEqual(await later.probe([key(1)]), [{ kind: 'miss', reason: 'expired: cached 2026-01-10T08:00:00.000Z, --cache-ttl is 24h' }]);
  }));

test('a miss is explained by the build arg that changed since the last cached build', () =>
  withDir(async (dir) => {
    const writer = cache(dir);
    writer.put(key(1, '1.0'), { kind: 'empty' });
    await writer.settle();
    const reader = cache(dir);
    const changed = key(1, '2.0');
    assert.deepEqual(await reader.probe([changed]), [{ kind: 'miss', reason: 'not in the cache' }]);
    assert.equal(await reader.explainMiss(changed), 'build arg VERSION changed');
  }));

test('--no-push-cache reads but never writes', () =>
  withDir(async (dir) => {
    const readOnly = cache(dir, { push: false });
    readOnly.put(key(1), { kind: 'empty' });
    await readOnly.settle();
    await assert.rejects(readdir(dir), { code: 'ENOENT' });
  }));

test('other entries of index.json are kept', () =>
  withDir(async (dir) => {
    await writeLayout(dir, [{ image: emptyImage({ os: 'linux', architecture: 'amd64' }, 'oci'), refName: 'unrelated' }]);
    const writer = cache(dir);
    writer.put(key(1), { kind: 'empty' });
    await writer.settle();
    const names = (await readLayout(dir)).manifests.map((d) => d.annotations?.[REF_NAME_ANNOTATION]);
    assert.ok(names.includes('unrelated'));
    assert.ok(names.includes(keyTag(key(1).digest)));
  }));

test('many caches writing one directory at once lose no entry', () =>
  withDir(async (dir) => {
    const writers = Array.from({ length: 6 }, () => cache(dir));
    const layers = await Promise.all(Array.from({ length: 6 }, (_, i) => memoryLayer({ [`f${i}`]: `content ${i}` })));
    writers.forEach((writer, w) => {
      for (let step = 0; step < 5; step++) writer.put(key(w * 10 + step), step % 2 ? { kind: 'empty' } : { kind: 'layer', layer: layers[w]!.layer });
    });
    await Promise.all(writers.map((writer) => writer.settle()));
    for (const writer of writers) assert.deepEqual(writer.warnings(), []);
    const keys = writers.flatMap((_, w) => Array.from({ length: 5 }, (_, step) => key(w * 10 + step)));
    const results = await cache(dir).probe(keys);
    assert.deepEqual(results.map((r) => r.kind), keys.map(() => 'hit'));
    assert.equal((await readLayout(dir)).manifests.length, keys.length * 2);
  }));

test('a layer blob that vanished makes a miss, not a broken hit', () =>
  withDir(async (dir) => {
    const made = await memoryLayer({ 'a.txt': 'a' });
    const writer = cache(dir);
    writer.put(key(1), { kind: 'layer', layer: made.layer });
    await writer.settle();
    await rm(join(dir, 'blobs', 'sha256', made.layer.digest.slice(7)));
    const [result] = await cache(dir).probe([key(1)]);
    assert.equal(result?.kind, 'miss');
    assert.match(result?.kind === 'miss' ? result.reason : '', /^the cache entry is unreadable: .*missing/);
  }));

test('a directory that is not a layout answers misses with one warning, and a failed put is a warning', () =>
  withDir(async (dir) => {
    const { mkdir } = await import('node:fs/promises');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'index.json'), 'not json');
    const reader = cache(dir);
    const results = await reader.probe([key(1), key(2)]);
    assert.ok(results.every((r) => r.kind === 'miss' && r.reason.startsWith('cache unreachable: ')), JSON.stringify(results));
    assert.equal(reader.warnings().length, 1);

    reader.put(key(1), { kind: 'empty' });
    await reader.settle();
    assert.equal(reader.warnings().length, 2);
    assert.match(reader.warnings()[1]!, /could not store Dockerfile:1 RUN step 1/);
  }));
