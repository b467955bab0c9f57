/**
 * kiln's shared layer cache against a real registry (distribution 2.8) and in OCI layouts:
 * what one node stores, another node finds with one manifest GET per step; blobs already in
 * the cache repository are neither uploaded nor fetched again; an unreachable or failing cache
 * only ever answers misses and logs warnings.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { identityTag, keyTag, EntryAnnotation } from '../src/cache/entry.js';
import { hashSecret, startKey, stepKey } from '../src/cache/key.js';
import { LayoutLayerCache } from '../src/cache/layout-cache.js';
import { openLayerCache } from '../src/cache/open.js';
import { RegistryLayerCache } from '../src/cache/registry-cache.js';
import type { CachedResult, LayerCache, ProbeResult, StepKey } from '../src/cache/types.js';
import { streamLayer } from '../src/oci/blob-layer.js';
import type { Layer } from '../src/oci/layer.js';
import { MediaType } from '../src/oci/mediatypes.js';
import { RegistryClient } from '../src/registry/client.js';
import { createCredentialStore } from '../src/registry/credentials.js';
import { parseRegistryOptions } from '../src/registry/endpoints.js';
import { parseReference, type Reference } from '../src/registry/reference.js';
import { captureLogger } from '../test/cache/capture-logger.js';
import { memoryLayer, readAll, type TestLayer } from '../test/oci/fixtures.js';
import { runCacheWriter, writerKey } from './harness/cache-writer.js';
import {
  skopeoInspect,
  startFlakyProxy,
  startRegistry,
  unusedPort,
  type LoggedRequest,
  type RunningRegistry,
} from './harness/index.js';

const DAY = 86_400_000;
const CACHE_REPO = 'kiln/cache';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** A fresh client, as a build on another node would have: no shared connections or tokens. */
async function newClient(reg: { host: string; username?: string; password?: string }): Promise<RegistryClient> {
  const dockerConfig = await mkdtemp(join(tmpdir(), 'kiln-docker-config-'));
  cleanups.push(() => rm(dockerConfig, { recursive: true, force: true }));
  const auths = reg.username ? { [reg.host]: { auth: Buffer.from(`${reg.username}:${reg.password}`).toString('base64') } } : {};
  await writeFile(join(dockerConfig, 'config.json'), JSON.stringify({ auths }));
  const client = new RegistryClient({
    registry: parseRegistryOptions({ insecureRegistry: [reg.host] }, {}),
    credentials: createCredentialStore({ env: { DOCKER_CONFIG: dockerConfig } }),
    retry: { retries: 1, baseDelayMs: 10 },
  });
  cleanups.push(() => client.close());
  return client;
}

interface TestCache {
  cache: RegistryLayerCache;
  warnings(): string[];
}

async function registryCache(
  reg: { host: string; username?: string; password?: string },
  options: { repo?: string; ttlMs?: number; now?: () => Date; push?: boolean } = {},
): Promise<TestCache> {
  const log = captureLogger();
  const cache = new RegistryLayerCache({
    client: await newClient(reg),
    repo: repoRef(reg.host, options.repo ?? CACHE_REPO),
    ttlMs: options.ttlMs ?? 7 * DAY,
    push: options.push ?? true,
    logger: log.logger,
    ...(options.now ? { now: options.now } : {}),
  });
  return { cache, warnings: log.warnings };
}

function repoRef(host: string, repository: string): Reference {
  const { registry } = parseReference(`${host}/${repository}`);
  return { registry, repository };
}

const PARENT = startKey([{ name: 'base image', value: 'sha256:' + 'b'.repeat(64) }, { name: 'platform', value: 'linux/amd64' }]);
let keySeries = 0;

/** A key no other test uses: every test gets a series of its own. */
function keyFactory() {
  const series = ++keySeries;
  return (step: number, version = '1.0'): StepKey =>
    stepKey(
      PARENT,
      [{ name: 'instruction', value: `RUN step ${series}.${step}` }, { name: 'build arg VERSION', value: hashSecret(version) }],
      `Dockerfile/${series}/${step}`,
      `Dockerfile:${step} RUN step ${series}.${step}`,
    );
}

function hitLayer(result: ProbeResult | undefined): Layer {
  assert.ok(result?.kind === 'hit', `expected a hit, got ${JSON.stringify(result)}`);
  assert.ok(result.result.kind === 'layer', 'expected a layer');
  return result.result.layer;
}

async function assertSameContent(found: Layer, made: TestLayer): Promise<void> {
  assert.deepEqual([found.digest, found.diffId, found.size, found.mediaType], [made.layer.digest, made.layer.diffId, made.layer.size, made.layer.mediaType]);
  assert.ok((await readAll(await found.compressed())).equals(made.blob), 'compressed content is identical');
  assert.ok((await readAll(await found.uncompressed())).equals(made.tar), 'tar content is identical');
}

/** Requests to the cache repository's blobs for `digest`: uploads name it in their query. */
function blobRequests(log: LoggedRequest[], digest: string, repository = CACHE_REPO): LoggedRequest[] {
  return log.filter((r) => r.path.startsWith(`/v2/${repository}/blobs/`) && (r.path.endsWith(digest) || decodeURIComponent(r.query).includes(digest)));
}

function since(log: LoggedRequest[], mark: number): LoggedRequest[] {
  return log.slice(mark);
}

/** A layer that must be mounted, never read: opening it fails the test. */
function unreadableLayer(made: TestLayer, location: { registry: string; repository: string }): Layer {
  return streamLayer({
    digest: made.layer.digest,
    diffId: made.layer.diffId,
    size: made.layer.size,
    mediaType: made.layer.mediaType,
    location,
    open: async () => assert.fail('the layer content was read although the registry could mount it'),
  });
}

describe('registry layer cache', () => {
  let reg: RunningRegistry;

  before(async () => {
    reg = await startRegistry('plain');
    cleanups.push(() => reg.stop());
  });

  it('stores layers of each media type and empty steps; another node finds them with one manifest GET each', async () => {
    const key = keyFactory();
    const layers = await Promise.all([
      memoryLayer({ 'etc/oci-gzip.txt': 'oci gzip\n' }, 'gzip', 'oci'),
      memoryLayer({ 'etc/oci-zstd.txt': 'oci zstd\n' }, 'zstd', 'oci'),
      memoryLayer({ 'etc/docker-gzip.txt': 'docker gzip\n' }, 'gzip', 'docker'),
      // Large enough for the client's bulk download path.
      memoryLayer({ 'big.bin': randomBytes(3 << 20).toString('base64') }, 'gzip', 'oci'),
    ]);
    const writer = await registryCache(reg);
    layers.forEach((made, i) => writer.cache.put(key(i), { kind: 'layer', layer: made.layer }));
    writer.cache.put(key(10), { kind: 'empty' });
    await writer.cache.settle();
    assert.deepEqual(writer.warnings(), []);

    const mark = (await reg.settledRequests()).length;
    const reader = await registryCache(reg);
    const keys = [...layers.map((_, i) => key(i)), key(10), key(11)];
    const results = await reader.cache.probe(keys);
    const probeLog = since(await reg.settledRequests(), mark);
    const manifestGets = probeLog.filter((r) => r.method === 'GET' && r.path.startsWith(`/v2/${CACHE_REPO}/manifests/`));
    assert.deepEqual(manifestGets.map((r) => r.path).sort(), keys.map((k) => `/v2/${CACHE_REPO}/manifests/${keyTag(k.digest)}`).sort());
    assert.deepEqual(probeLog.filter((r) => r.path.includes('/blobs/')), [], 'a probe reads no blob');

    for (const [i, made] of layers.entries()) {
      const found = hitLayer(results[i]);
      assert.deepEqual(found.location, { registry: reg.host, repository: CACHE_REPO });
      await assertSameContent(found, made);
    }
    const empty = results[layers.length];
    assert.ok(empty?.kind === 'hit' && empty.result.kind === 'empty');
    assert.ok(empty.created instanceof Date && Date.now() - empty.created.getTime() < 60_000);
    assert.deepEqual(results.at(-1), { kind: 'miss', reason: 'not in the cache' });
    assert.deepEqual(reader.warnings(), []);
  });

  it('answers a miss naming the date and the TTL for an entry older than --cache-ttl', async () => {
    const key = keyFactory();
    const writtenAt = new Date(Date.now() - 3 * DAY);
    const writer = await registryCache(reg, { now: () => writtenAt });
    writer.cache.put(key(1), { kind: 'empty' });
    await writer.cache.settle();
    const strict = await registryCache(reg, { ttlMs: DAY });
    assert.deepEqual(await strict.cache.probe([key(1)]), [{ kind: 'miss', reason: `expired: cached ${writtenAt.toISOString()}, --cache-ttl is 24h` }]);
    const lenient = await registryCache(reg, { ttlMs: 7 * DAY });
    assert.equal((await lenient.cache.probe([key(1)]))[0]?.kind, 'hit');
  });

  it('never uploads a blob the cache repository already holds', async () => {
    const key = keyFactory();
    const made = await memoryLayer({ 'shared.txt': 'one layer, three steps\n' });
    const first = await registryCache(reg);
    // Two steps of one build with the same layer: one upload.
    first.cache.put(key(1), { kind: 'layer', layer: made.layer });
    first.cache.put(key(2), { kind: 'layer', layer: made.layer });
    await first.cache.settle();
    const afterFirst = await reg.settledRequests();
    const uploads = (log: LoggedRequest[]) => blobRequests(log, made.layer.digest).filter((r) => r.method === 'PUT' || r.method === 'PATCH');
    assert.equal(uploads(afterFirst).length, 1, JSON.stringify(blobRequests(afterFirst, made.layer.digest)));

    // Another node stores a third step with the same layer: a HEAD, and no upload.
    const second = await registryCache(reg);
    second.cache.put(key(3), { kind: 'layer', layer: made.layer });
    await second.cache.settle();
    const secondLog = since(await reg.settledRequests(), afterFirst.length);
    assert.deepEqual(uploads(secondLog), []);
    assert.ok(blobRequests(secondLog, made.layer.digest).some((r) => r.method === 'HEAD' && r.status === 200));
    assert.deepEqual([...first.warnings(), ...second.warnings()], []);
    const found = await (await registryCache(reg)).cache.probe([key(1), key(2), key(3)]);
    assert.deepEqual(found.map((r) => r.kind), ['hit', 'hit', 'hit']);
  });

  it('mounts a layer that lives in another repository of the same registry', async () => {
    const key = keyFactory();
    const made = await memoryLayer({ 'base.txt': 'from the base image repository\n' });
    const client = await newClient(reg);
    await client.uploadBlob(repoRef(reg.host, 'kiln/base'), { digest: made.layer.digest, size: made.layer.size, open: async () => Readable.from([made.blob]) });
    const mark = (await reg.settledRequests()).length;

    const writer = await registryCache(reg);
    writer.cache.put(key(1), { kind: 'layer', layer: unreadableLayer(made, { registry: reg.host, repository: 'kiln/base' }) });
    await writer.cache.settle();
    assert.deepEqual(writer.warnings(), []);
    const log = since(await reg.settledRequests(), mark);
    const mount = log.filter((r) => r.method === 'POST' && r.path === `/v2/${CACHE_REPO}/blobs/uploads/` && r.query.includes('mount='));
    assert.equal(mount.length, 1, JSON.stringify(log));
    assert.equal(mount[0]!.status, 201);
    assert.ok(decodeURIComponent(mount[0]!.query).includes('from=kiln/base'));
    assert.deepEqual(blobRequests(log, made.layer.digest).filter((r) => r.method === 'PUT' || r.method === 'PATCH'), []);

    await assertSameContent(hitLayer((await (await registryCache(reg)).cache.probe([key(1)]))[0]), made);
  });

  it('says where a layer will be once its upload is done, so a push can mount it', async () => {
    const key = keyFactory();
    const made = await memoryLayer({ 'located.txt': 'where am I\n' });
    const writer = await registryCache(reg);
    writer.cache.put(key(1), { kind: 'layer', layer: made.layer });
    const location = writer.cache.blobLocation(made.layer.digest);
    assert.deepEqual(await location, { registry: reg.host, repository: CACHE_REPO });
    // Resolved only after the blob is really there.
    assert.equal(await (await newClient(reg)).headBlob(repoRef(reg.host, CACHE_REPO), made.layer.digest), made.layer.size);
    assert.equal(await writer.cache.blobLocation('sha256:' + '9'.repeat(64)), undefined);
    await writer.cache.settle();

    const readOnly = await registryCache(reg, { push: false });
    const other = await memoryLayer({ 'never.txt': 'not pushed\n' });
    readOnly.cache.put(key(2), { kind: 'layer', layer: other.layer });
    await readOnly.cache.settle();
    assert.equal(await readOnly.cache.blobLocation(other.layer.digest), undefined);
    assert.deepEqual(await readOnly.cache.probe([key(2)]), [{ kind: 'miss', reason: 'not in the cache' }], '--no-push-cache wrote nothing');
  });

  it('explains a miss by the build arg that changed since the last cached build', async () => {
    const key = keyFactory();
    const writer = await registryCache(reg);
    writer.cache.put(key(1, '1.0'), { kind: 'empty' });
    await writer.cache.settle();
    const reader = await registryCache(reg);
    assert.deepEqual(await reader.cache.probe([key(1, '2.0')]), [{ kind: 'miss', reason: 'not in the cache' }]);
    assert.equal(await reader.cache.explainMiss(key(1, '2.0')), 'build arg VERSION changed');
    assert.equal(await reader.cache.explainMiss(key(2)), 'no earlier build of this step is cached');
    const moved = stepKey(startKey([{ name: 'base image', value: 'sha256:' + 'c'.repeat(64) }]), key(1).inputs, key(1).identity, key(1).label);
    assert.equal(await reader.cache.explainMiss(moved), 'parent changed: an earlier step changed');
  });

  it('keeps a valid entry when two nodes store the same step at once', async () => {
    const key = keyFactory();
    const made = await memoryLayer({ 'race.txt': randomBytes(64 << 10).toString('hex') });
    const [a, b] = await Promise.all([registryCache(reg), registryCache(reg)]);
    a.cache.put(key(1), { kind: 'layer', layer: made.layer });
    b.cache.put(key(1), { kind: 'layer', layer: made.layer });
    await Promise.all([a.cache.settle(), b.cache.settle()]);
    assert.deepEqual([...a.warnings(), ...b.warnings()], []);
    await assertSameContent(hitLayer((await (await registryCache(reg)).cache.probe([key(1)]))[0]), made);
  });

  it('writes entries that skopeo can inspect: one layer, its diff_id, the annotations', async () => {
    const key = keyFactory();
    const made = await memoryLayer({ 'inspected.txt': 'skopeo reads this entry\n' });
    const writer = await registryCache(reg);
    writer.cache.put(key(1), { kind: 'layer', layer: made.layer });
    writer.cache.put(key(2), { kind: 'empty' });
    await writer.cache.settle();

    const raw = await skopeoInspect(reg, `${CACHE_REPO}:${keyTag(key(1).digest)}`, { raw: true });
    assert.equal(raw.mediaType, MediaType.ociManifest);
    assert.deepEqual(raw.layers, [{ mediaType: made.layer.mediaType, digest: made.layer.digest, size: made.layer.size }]);
    assert.equal(raw.annotations[EntryAnnotation.key], key(1).digest);
    assert.equal(raw.annotations[EntryAnnotation.diffId], made.layer.diffId);
    assert.deepEqual(JSON.parse(raw.annotations[EntryAnnotation.inputs]), key(1).inputs);
    const config = await skopeoInspect(reg, `${CACHE_REPO}:${keyTag(key(1).digest)}`, { config: true });
    assert.deepEqual(config.rootfs, { type: 'layers', diff_ids: [made.layer.diffId] });
    const inspected = await skopeoInspect(reg, `${CACHE_REPO}:${keyTag(key(1).digest)}`);
    assert.deepEqual(inspected.Layers, [made.layer.digest]);

    const byIdentity = await skopeoInspect(reg, `${CACHE_REPO}:${identityTag(key(1).identity)}`);
    assert.equal(byIdentity.Digest, inspected.Digest);
    const empty = await skopeoInspect(reg, `${CACHE_REPO}:${keyTag(key(2).digest)}`, { raw: true });
    assert.deepEqual(empty.layers, []);
  });

  it('answers misses and logs one warning when the registry fails every request; puts only warn', async () => {
    const key = keyFactory();
    const proxy = await startFlakyProxy(reg.host, { failures: Number.MAX_SAFE_INTEGER, mode: '503' });
    cleanups.push(() => proxy.stop());
    const failing = await registryCache({ host: proxy.host });
    const results = await failing.cache.probe([key(1), key(2), key(3)]);
    for (const result of results) {
      assert.equal(result.kind, 'miss');
      assert.match(result.kind === 'miss' ? result.reason : '', /^cache unreachable: .*503/);
      assert.ok(!(result.kind === 'miss' && result.reason.includes('\n')));
    }
    assert.equal(failing.warnings().length, 1, JSON.stringify(failing.warnings()));
    assert.equal(await failing.cache.explainMiss(key(1)), 'no earlier build of this step is cached');

    const made = await memoryLayer({ 'lost.txt': 'never stored\n' });
    failing.cache.put(key(1), { kind: 'layer', layer: made.layer });
    failing.cache.put(key(2), { kind: 'empty' });
    await failing.cache.settle();
    const warnings = failing.warnings().slice(1);
    assert.equal(warnings.length, 2, JSON.stringify(warnings));
    assert.ok(warnings.every((w) => w.startsWith('could not store ') && !w.includes('\n')));
    assert.equal(await failing.cache.blobLocation(made.layer.digest), undefined);
  });

  it('answers misses and warns when nothing listens at the cache address', async () => {
    const key = keyFactory();
    const { host } = await unusedPort();
    const nowhere = await registryCache({ host });
    const results = await nowhere.cache.probe([key(1), key(2)]);
    assert.ok(results.every((r) => r.kind === 'miss' && r.reason.startsWith('cache unreachable: ')), JSON.stringify(results));
    assert.equal(nowhere.warnings().length, 1);
    nowhere.cache.put(key(1), { kind: 'empty' });
    await nowhere.cache.settle();
    assert.equal(nowhere.warnings().length, 2);
    assert.equal(await nowhere.cache.explainMiss(key(1)), 'no earlier build of this step is cached');
  });

  it('is what openLayerCache returns for a repository name', async () => {
    const key = keyFactory();
    const log = captureLogger();
    const cache: LayerCache = openLayerCache(`${reg.host}/${CACHE_REPO}`, { client: await newClient(reg), ttlMs: DAY, push: true, logger: log.logger });
    cache.put(key(1), { kind: 'empty' });
    await cache.settle();
    assert.equal((await (await registryCache(reg)).cache.probe([key(1)]))[0]?.kind, 'hit');
  });
});

describe('registry layer cache with Bearer tokens', () => {
  let reg: RunningRegistry;

  before(async () => {
    reg = await startRegistry('token');
    cleanups.push(() => reg.stop());
  });

  it('stores, mounts and finds entries with the scopes each request needs', async () => {
    const key = keyFactory();
    const made = await memoryLayer({ 'token.txt': 'behind a token server\n' });
    const client = await newClient(reg);
    await client.uploadBlob(repoRef(reg.host, 'kiln/base'), { digest: made.layer.digest, size: made.layer.size, open: async () => Readable.from([made.blob]) });
    const writer = await registryCache(reg);
    const results: CachedResult[] = [{ kind: 'layer', layer: unreadableLayer(made, { registry: reg.host, repository: 'kiln/base' }) }, { kind: 'empty' }];
    results.forEach((result, i) => writer.cache.put(key(i), result));
    await writer.cache.settle();
    assert.deepEqual(writer.warnings(), []);
    const reader = await registryCache(reg);
    const [layerHit, emptyHit] = await reader.cache.probe([key(0), key(1)]);
    await assertSameContent(hitLayer(layerHit), made);
    assert.equal(emptyHit?.kind, 'hit');
  });
});

describe('layout layer cache', () => {
  let root: string;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'kiln-layout-cache-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
  });

  function layoutCache(dir: string, options: { now?: () => Date; ttlMs?: number } = {}) {
    const log = captureLogger();
    const cache = openLayerCache(`oci:${dir}`, {
      client: undefined as unknown as RegistryClient,
      ttlMs: options.ttlMs ?? DAY,
      push: true,
      logger: log.logger,
      ...(options.now ? { now: options.now } : {}),
    });
    assert.ok(cache instanceof LayoutLayerCache);
    return { cache, warnings: log.warnings };
  }

  it('round-trips a layer and an empty step, expires them and explains a miss', async () => {
    const dir = join(root, 'round-trip');
    const key = keyFactory();
    const made = await memoryLayer({ 'layout.txt': 'kept in a directory\n' }, 'zstd');
    const writtenAt = new Date(Date.now() - 2 * DAY);
    const writer = layoutCache(dir, { now: () => writtenAt });
    writer.cache.put(key(1), { kind: 'layer', layer: made.layer });
    writer.cache.put(key(2), { kind: 'empty' });
    await writer.cache.settle();
    assert.deepEqual(writer.warnings(), []);

    const reader = layoutCache(dir, { ttlMs: 7 * DAY });
    const [layerHit, emptyHit, miss] = await reader.cache.probe([key(1), key(2), key(3)]);
    await assertSameContent(hitLayer(layerHit), made);
    assert.ok(emptyHit?.kind === 'hit' && emptyHit.result.kind === 'empty');
    assert.deepEqual(miss, { kind: 'miss', reason: 'not in the cache' });
    assert.equal(await reader.cache.explainMiss(key(1, '3.0')), 'build arg VERSION changed');

    const strict = layoutCache(dir, { ttlMs: DAY });
    assert.deepEqual(await strict.cache.probe([key(2)]), [{ kind: 'miss', reason: `expired: cached ${writtenAt.toISOString()}, --cache-ttl is 24h` }]);
  });

  it('loses no entry when several processes write one directory at once', async () => {
    const dir = join(root, 'shared');
    const writers = 4;
    const perWriter = 9;
    await Promise.all(Array.from({ length: writers }, (_, w) => runCacheWriter(dir, w, perWriter)));
    const keys = Array.from({ length: writers }, (_, w) => Array.from({ length: perWriter }, (_, n) => writerKey(w, n))).flat();
    const reader = layoutCache(dir);
    const results = await reader.cache.probe(keys);
    assert.deepEqual(results.map((r) => r.kind), keys.map(() => 'hit'));
    for (const [i, result] of results.entries()) {
      if (result.kind === 'hit' && result.result.kind === 'layer') await readAll(await result.result.layer.uncompressed());
      else assert.equal(i % perWriter % 3, 2, 'only every third entry is empty');
    }
  });
});
