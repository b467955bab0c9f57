// kiln warm against a real registry, and the base-image cache it leaves, read back with
// skopeo and with the API kiln build uses (openBaseImageCache), with the registry stopped.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBaseImageCache } from '../src/cache/base-images.js';
import { sha256 } from '../src/oci/digest.js';
import { parseReference } from '../src/registry/reference.js';
import { silentLogger } from '../src/util/log.js';
import { busyboxLayout, multiPlatformLayout, pushLayout, registryFlags, runKiln as runKilnProcess, skopeoInspect, startRegistry, type RunningRegistry } from './harness/index.js';
import { skopeo } from './harness/skopeo.js';
import { readAll } from '../test/oci/fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'kiln-warm-'));
const REF_NAME = 'org.opencontainers.image.ref.name';
const AMD64 = { os: 'linux', architecture: 'amd64' };
const HOUR = 3_600_000;

let registry: RunningRegistry;
let busyboxDigest: string;
let tagRef: string;
let pinnedRef: string;

interface KilnRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

async function runKiln(args: string[]): Promise<KilnRun> {
  const run = await runKilnProcess([...args, '--log-format=text'], { env: { DOCKER_CONFIG: join(work, 'no-docker-config') } });
  return { status: run.code, stdout: run.stdout, stderr: run.stderr };
}

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}

function blobGets(): number {
  return registry.requests().filter((r) => r.method === 'GET' && r.path.includes('/blobs/')).length;
}

function indexEntries(dir: string): { digest: string; platform?: { architecture: string }; annotations: Record<string, string> }[] {
  return JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')).manifests;
}

before(async () => {
  registry = await startRegistry('plain');
  const layout = await busyboxLayout();
  await pushLayout(layout.dir, layout.tag, registry, 'warm/busybox:1');
  await pushLayout(layout.dir, layout.tag, registry, 'warm/other:2');
  await pushLayout((await multiPlatformLayout()).dir, 'multi', registry, 'warm/multi:1', { all: true });
  busyboxDigest = (await skopeoInspect(registry, 'warm/busybox:1')).Digest;
  tagRef = `${registry.host}/warm/busybox:1`;
  pinnedRef = `${registry.host}/warm/other@${busyboxDigest}`;
});

after(async () => {
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
});

const cacheDir = join(work, 'cache');

test('kiln warm stores a tag and a digest-pinned image in one OCI layout skopeo reads', async () => {
  const before = blobGets();
  const result = await runKiln(['warm', '--image', tagRef, '-i', pinnedRef, '--cache-dir', cacheDir]);
  assert.equal(result.status, 0, result.stderr);
  assert.deepEqual(lines(result.stdout), [`warmed ${tagRef} ${busyboxDigest}`, `${pinnedRef} is already cached (${busyboxDigest})`]);
  assert.ok(blobGets() > before, 'the first warm downloads blobs');

  const entries = indexEntries(cacheDir);
  assert.deepEqual(entries.map((e) => e.annotations[REF_NAME]).sort(), [tagRef, pinnedRef].sort());
  for (const entry of entries) {
    assert.equal(entry.digest, busyboxDigest);
    assert.equal(entry.annotations['dev.kiln.warm.resolved-digest'], busyboxDigest);
    assert.ok(Math.abs(Date.parse(entry.annotations['dev.kiln.warm.time']!) - Date.now()) < 5 * 60_000, 'stamped with the time it was warmed');
  }
  for (const name of [tagRef, pinnedRef]) {
    const inspected = JSON.parse(await skopeo(['inspect', `oci:${cacheDir}:${name}`]));
    assert.equal(inspected.Digest, busyboxDigest, `skopeo reads ${name}`);
  }
  // A copy reads and verifies every blob the entry names.
  await skopeo(['copy', '--quiet', `oci:${cacheDir}:${tagRef}`, `dir:${join(work, 'copied')}`]);
  assert.ok(!existsSync(join(cacheDir, 'index.json.lock')), 'no lock left behind');
  assert.deepEqual(readdirSync(join(cacheDir, '.kiln-warm')), [], 'no temporary left behind');
});

test('warming again downloads nothing; --cache-ttl=0 only asks for the digest; --force downloads again', async () => {
  const before = blobGets();
  const requestsBefore = registry.requests().length;
  const again = await runKiln(['warm', '-i', tagRef, '-i', pinnedRef, '-c', cacheDir]);
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual(lines(again.stdout), [`${tagRef} is already cached (${busyboxDigest})`, `${pinnedRef} is already cached (${busyboxDigest})`]);
  assert.equal(blobGets(), before, 'no blob downloaded');
  assert.equal((await registry.settledRequests()).length, requestsBefore, 'a fresh tag is not even looked up');

  const recheck = await runKiln(['warm', '-i', tagRef, '-c', cacheDir, '--cache-ttl=0']);
  assert.equal(recheck.status, 0, recheck.stderr);
  assert.deepEqual(lines(recheck.stdout), [`${tagRef} is already cached (${busyboxDigest})`]);
  const recheckRequests = (await registry.settledRequests()).slice(requestsBefore);
  assert.deepEqual(recheckRequests.map((r) => r.method), ['HEAD'], JSON.stringify(recheckRequests));

  const forced = await runKiln(['warm', '-i', tagRef, '-c', cacheDir, '--force']);
  assert.equal(forced.status, 0, forced.stderr);
  assert.deepEqual(lines(forced.stdout), [`warmed ${tagRef} ${busyboxDigest}`]);
  const layerCount = (await skopeoInspect(registry, 'warm/busybox:1')).Layers.length;
  assert.ok(blobGets() - before >= layerCount + 1, 'every layer and the config are downloaded again');
});

test('--dockerfile warms the FROM images after expanding ARGs, skipping stage names and scratch', async () => {
  const dir = join(work, 'dockerfile-cache');
  const dockerfile = join(work, 'Dockerfile');
  writeFileSync(
    dockerfile,
    ['ARG REGISTRY', 'ARG TAG=1', 'FROM ${REGISTRY}/warm/busybox:${TAG} AS base', 'RUN true', 'FROM base AS second', 'FROM scratch', 'FROM ${REGISTRY}/warm/other:2', 'COPY --from=second /bin /bin', ''].join('\n'),
  );
  const result = await runKiln(['warm', '--dockerfile', dockerfile, '--build-arg', `REGISTRY=${registry.host}`, '--cache-dir', dir]);
  assert.equal(result.status, 0, result.stderr);
  const otherRef = `${registry.host}/warm/other:2`;
  // The second image has the same content under another name: its digest is stored already.
  assert.deepEqual(lines(result.stdout), [`warmed ${tagRef} ${busyboxDigest}`, `${otherRef} is already cached (${busyboxDigest})`]);
  assert.deepEqual(indexEntries(dir).map((e) => e.annotations[REF_NAME]).sort(), [tagRef, otherRef].sort());
});

test('an image the registry does not have is one clear sentence and a non-zero exit', async () => {
  const dir = join(work, 'missing-cache');
  const missing = `${registry.host}/warm/missing:1`;
  const result = await runKiln(['warm', '-i', missing, '-c', dir]);
  assert.equal(result.status, 1);
  const errors = lines(result.stderr).filter((line) => line.startsWith('kiln: error:'));
  assert.equal(errors.length, 1, result.stderr);
  assert.match(errors[0]!, new RegExp(`^kiln: error: cannot warm ${missing.replace(/[.]/g, '\\.')}: .*404.*; check the image name and tag\\.$`));
  assert.ok(!/\n\s+at /.test(result.stderr), 'no stack trace');
  assert.equal(result.stdout, '');
  assert.ok(!existsSync(join(dir, 'index.json')) || indexEntries(dir).length === 0, 'nothing recorded');
});

test('bad flags are refused in one sentence naming the flag', async () => {
  const ttl = await runKiln(['warm', '-i', tagRef, '-c', join(work, 'x'), '--cache-ttl', '2w']);
  assert.equal(ttl.status, 2);
  assert.equal(ttl.stderr.trim(), 'kiln: error: --cache-ttl=2w is not a duration; write it as Go does, e.g. 336h, 30m or 1h30m.');
  const nothing = await runKiln(['warm', '-c', join(work, 'x')]);
  assert.equal(nothing.status, 2);
  assert.match(nothing.stderr.trim(), /^kiln: error: kiln warm needs something to warm: give --image \(repeatable\) or --dockerfile\.$/);
});

test('--custom-platform picks that platform from a multi-platform index', async () => {
  const dir = join(work, 'multi-cache');
  const multiRef = `${registry.host}/warm/multi:1`;
  const rawIndex = await skopeo(['inspect', '--raw', ...registryFlags(registry, '').args, `docker://${multiRef}`]);
  const index = JSON.parse(rawIndex);
  const arm64 = index.manifests.find((m: { platform: { architecture: string } }) => m.platform.architecture === 'arm64').digest;
  const result = await runKiln(['warm', '-i', multiRef, '-c', dir, '--custom-platform', 'linux/arm64']);
  assert.equal(result.status, 0, result.stderr);
  assert.deepEqual(lines(result.stdout), [`warmed ${multiRef} ${arm64}`]);
  const [entry] = indexEntries(dir);
  assert.equal(entry!.digest, arm64);
  assert.equal(entry!.platform?.architecture, 'arm64');
  assert.equal(entry!.annotations['dev.kiln.warm.resolved-digest'], sha256(rawIndex), 'the entry records the index the tag resolved to');
  const cache = await openBaseImageCache(dir, { ttlMs: HOUR, logger: silentLogger() });
  const image = await cache!.find(parseReference(multiRef), { os: 'linux', architecture: 'arm64' });
  assert.equal(image?.config.architecture, 'arm64');
  assert.equal(await cache!.find(parseReference(multiRef), { os: 'linux', architecture: 's390x' }), undefined);
});

test('two warmers on one directory at once both land in index.json', async () => {
  const dir = join(work, 'shared-cache');
  const [a, b] = await Promise.all([runKiln(['warm', '-i', tagRef, '-c', dir]), runKiln(['warm', '-i', `${registry.host}/warm/other:2`, '-c', dir])]);
  assert.equal(a.status, 0, a.stderr);
  assert.equal(b.status, 0, b.stderr);
  assert.deepEqual(indexEntries(dir).map((e) => e.annotations[REF_NAME]).sort(), [tagRef, `${registry.host}/warm/other:2`].sort());
});

test('with the registry stopped, the cache serves a digest and a fresh tag, and not an expired tag', async () => {
  await registry.stop();
  const cache = await openBaseImageCache(cacheDir, { ttlMs: HOUR, logger: silentLogger() });
  assert.ok(cache, 'the warmed directory is a cache');

  const pinned = await cache.find(parseReference(`${registry.host}/warm/busybox@${busyboxDigest}`), AMD64);
  assert.ok(pinned, 'a digest is found');
  assert.equal(pinned.digest, busyboxDigest);
  const layer = pinned.layers[0]!;
  assert.equal(layer.location, undefined);
  assert.equal(sha256(await readAll(await layer.compressed())), layer.digest);

  const tagged = await cache.find(parseReference(tagRef), AMD64);
  assert.equal(tagged?.digest, busyboxDigest, 'a tag warmed within the TTL is found');

  const later = await openBaseImageCache(cacheDir, { ttlMs: HOUR, logger: silentLogger(), now: () => Date.now() + 2 * HOUR });
  assert.equal(await later!.find(parseReference(tagRef), AMD64), undefined, 'an expired tag is a miss');
  assert.equal((await later!.find(parseReference(pinnedRef), AMD64))?.digest, busyboxDigest, 'a digest never expires');
});
