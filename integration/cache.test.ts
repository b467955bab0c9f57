// The shared layer cache end to end: builds on "separate nodes" (separate root dirs, fresh
// processes, nothing local shared) meet only through the cache repository in the registry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { busyboxLayout, pullToLayout, pushLayout, runImage, runKiln, skopeoInspect, writeContext, startRegistry, type KilnRun, useBusyboxRegistry } from './harness/index.js';
import type { LoggedRequest } from './harness/access-log.js';

const fx = useBusyboxRegistry('kiln-cache-test-');
const { work } = fx;
let node = 0;

/** Writes (or rewrites) the files of a build context. */
function context(name: string, files: Record<string, string>): string {
  return writeContext(join(work, name), files);
}

interface Built extends KilnRun {
  digest: string;
}

/** One build as a fresh node: its own process and root dir, nothing left from earlier builds. */
async function kilnBuild(args: string[]): Promise<Built> {
  const rootDir = join(work, `node-${++node}`);
  try {
    const run = await kilnCommand(['build', '--log-format=text', '--root-dir', rootDir, ...args]);
    return { ...run, digest: run.stdout.trim() };
  } finally {
    rmSync(rootDir, { recursive: true, force: true });
  }
}

/** The lines kiln logged about cache misses, as `line: reason`. */
function misses(built: Built): string[] {
  return [...built.stderr.matchAll(/cache miss (\S+:\d+) [^\n]*?: ([^\n]*)/g)].map((m) => `${m[1]}: ${m[2]}`);
}

function hits(built: Built): string[] {
  return [...built.stderr.matchAll(/(\S+:\d+): cache hit/g)].map((m) => m[1]!);
}

async function requestsDuring<T>(fn: () => Promise<T>): Promise<{ result: T; requests: LoggedRequest[] }> {
  const before = (await fx.registry.settledRequests()).length;
  const result = await fn();
  return { result, requests: (await fx.registry.settledRequests()).slice(before) };
}

const DOCKERFILE = (from: string) =>
  [
    `FROM ${from}`,
    'ARG VERSION=1',
    'ARG COMMIT_SHA',
    'RUN mkdir /app && echo "version $VERSION" > /app/version',
    'COPY a.txt /app/a.txt',
    'RUN cat /app/a.txt /app/version > /app/combined',
    'WORKDIR /app/work',
    'RUN echo done > done.txt',
    'CMD ["cat", "/app/combined", "/app/work/done.txt"]',
    '',
  ].join('\n');

test('a second node hits every step, downloads no layer blob, and gets the same digest', async () => {
  const dir = context('same', { Dockerfile: DOCKERFILE(fx.base), 'a.txt': 'a\n' });
  const args = ['--context', dir, '--cache', '--cache-copy-layers', '--reproducible', '--build-arg', 'COMMIT_SHA=111'];
  const cold = await kilnBuild([...args, '--destination', `${fx.registry.host}/app/same:1`]);
  assert.equal(cold.code, 0, cold.stderr);
  assert.equal(misses(cold).length, 5, cold.stderr);
  assert.match(cold.stderr, /cache miss Dockerfile:4 [^\n]*: no earlier build of this step is cached/);

  // Another node, another commit SHA that no instruction refers to.
  const { result: warm, requests } = await requestsDuring(() =>
    kilnBuild([...args.slice(0, -1), 'COMMIT_SHA=222', '--destination', `${fx.registry.host}/app/same:2`]),
  );
  assert.equal(warm.code, 0, warm.stderr);
  assert.deepEqual(misses(warm), []);
  assert.deepEqual(hits(warm), ['Dockerfile:4', 'Dockerfile:5', 'Dockerfile:6', 'Dockerfile:7', 'Dockerfile:8']);
  assert.equal(warm.digest, cold.digest);
  assert.doesNotMatch(warm.stderr, /extracted/);
  const manifest = await skopeoInspect(fx.registry, 'app/same:2', { raw: true });
  const layerDigests = new Set<string>(manifest.layers.map((l: { digest: string }) => l.digest));
  const layerGets = requests.filter((r) => r.method === 'GET' && r.path.includes('/blobs/') && layerDigests.has(r.path.slice(r.path.lastIndexOf('/') + 1)));
  assert.deepEqual(layerGets, [], 'no layer blob is downloaded');
  assert.ok(!requests.some((r) => r.method === 'PATCH' || (r.method === 'PUT' && r.path.includes('/blobs/uploads/'))), 'no blob is uploaded');

  const layout = join(work, 'same-pulled');
  await pullToLayout(fx.registry, 'app/same:2', layout, 'image');
  const run = await runImage(layout, 'image');
  assert.equal(run.stdout, 'a\nversion 1\ndone\n');
});

test('a changed COPY source misses from that COPY on, and the miss names the source', async () => {
  const dir = context('copy-change', { Dockerfile: DOCKERFILE(fx.base), 'a.txt': 'a\n' });
  const args = ['--context', dir, '--cache', '--cache-copy-layers', '--destination', `${fx.registry.host}/app/copy-change:1`];
  assert.equal((await kilnBuild(args)).code, 0);
  context('copy-change', { 'a.txt': 'changed\n' });
  const rebuilt = await kilnBuild(args);
  assert.equal(rebuilt.code, 0, rebuilt.stderr);
  assert.deepEqual(hits(rebuilt), ['Dockerfile:4']);
  const lines = misses(rebuilt);
  assert.equal(lines.length, 4, rebuilt.stderr);
  assert.match(lines[0]!, /^Dockerfile:5: source a\.txt changed/);
  assert.match(lines[1]!, /^Dockerfile:6: .*earlier step/);
});

test('a changed build arg misses only from the step that refers to it', async () => {
  const dockerfile = [`FROM ${fx.base}`, 'ARG A=1', 'ARG B=1', 'RUN echo "$A" > /a', 'RUN echo "$B" > /b', ''].join('\n');
  const dir = context('arg-change', { Dockerfile: dockerfile });
  const args = ['--context', dir, '--cache', '--destination', `${fx.registry.host}/app/arg-change:1`];
  assert.equal((await kilnBuild([...args, '--build-arg', 'B=1'])).code, 0);
  const rebuilt = await kilnBuild([...args, '--build-arg', 'B=2']);
  assert.equal(rebuilt.code, 0, rebuilt.stderr);
  assert.deepEqual(hits(rebuilt), ['Dockerfile:4']);
  assert.deepEqual(misses(rebuilt), ['Dockerfile:5: build arg B changed']);

  // --cache-explain shows each key's inputs; build arg values only as hashes.
  const explained = await kilnBuild([...args, '--build-arg', 'B=secret-value', '--cache-explain']);
  assert.equal(explained.code, 0, explained.stderr);
  assert.match(explained.stderr, /Dockerfile:5 RUN echo "\$B" > \/b\n[^\n]*key: sha256:[0-9a-f]{64}/);
  assert.match(explained.stderr, /build arg B: sha256:[0-9a-f]{64}/);
  assert.doesNotMatch(explained.stderr, /secret-value/);
});

test('an entry older than --cache-ttl is a miss that says so', async () => {
  const dir = context('ttl', { Dockerfile: `FROM ${fx.base}\nRUN echo ttl > /ttl\n` });
  const args = ['--context', dir, '--cache', '--destination', `${fx.registry.host}/app/ttl:1`];
  assert.equal((await kilnBuild(args)).code, 0);
  await new Promise((r) => setTimeout(r, 1500));
  const rebuilt = await kilnBuild([...args, '--cache-ttl', '1s']);
  assert.equal(rebuilt.code, 0, rebuilt.stderr);
  assert.equal(misses(rebuilt).length, 1);
  assert.match(misses(rebuilt)[0]!, /^Dockerfile:2: expired/);
});

test('multi-stage: when the final stage hits, the builder stage is not built at all', async () => {
  const dockerfile = [
    `FROM ${fx.base} AS builder`,
    'COPY a.txt /src/a.txt',
    'RUN cp /src/a.txt /out.txt && echo built >> /out.txt',
    `FROM ${fx.base}`,
    'COPY --from=builder /out.txt /out.txt',
    'CMD ["cat", "/out.txt"]',
    '',
  ].join('\n');
  const dir = context('stages', { Dockerfile: dockerfile, 'a.txt': 'from a\n' });
  const args = ['--context', dir, '--cache', '--cache-copy-layers', '--destination', `${fx.registry.host}/app/stages:1`];
  const cold = await kilnBuild(args);
  assert.equal(cold.code, 0, cold.stderr);
  const warm = await kilnBuild(args);
  assert.equal(warm.code, 0, warm.stderr);
  assert.deepEqual(hits(warm), ['Dockerfile:5']);
  assert.doesNotMatch(warm.stderr, /STEP \d+\/\d+ of stage 0/);
  assert.doesNotMatch(warm.stderr, /extracted/);

  // A changed source of the builder stage: the builder runs, the final COPY misses.
  context('stages', { 'a.txt': 'from b\n' });
  const changed = await kilnBuild(args);
  assert.equal(changed.code, 0, changed.stderr);
  assert.match(changed.stderr, /cache miss Dockerfile:2 [^\n]*: source a\.txt changed/);
  const layout = join(work, 'stages-pulled');
  await pullToLayout(fx.registry, 'app/stages:1', layout, 'image');
  assert.equal((await runImage(layout, 'image')).stdout, 'from b\nbuilt\n');
});

test('a cache repo that cannot be reached costs a warning, not the build', async () => {
  const dir = context('unreachable', { Dockerfile: `FROM ${fx.base}\nRUN echo x > /x\n` });
  const built = await kilnBuild(['--context', dir, '--cache', '--cache-repo', '127.0.0.1:9/nowhere/cache', '--destination', `${fx.registry.host}/app/unreachable:1`]);
  assert.equal(built.code, 0, built.stderr);
  assert.match(built.stderr, /WARN/);
  assert.ok((await skopeoInspect(fx.registry, 'app/unreachable:1')).Digest);
});

test('two builds at once sharing a cache repo both succeed, and a third hits their entries', async () => {
  const dir = context('concurrent', { Dockerfile: DOCKERFILE(fx.base), 'a.txt': 'same\n' });
  const args = (tag: string) => ['--context', dir, '--cache', '--cache-copy-layers', '--cache-repo', `${fx.registry.host}/shared/cache`, '--destination', `${fx.registry.host}/app/concurrent:${tag}`];
  const [one, two] = await Promise.all([kilnBuild(args('1')), kilnBuild(args('2'))]);
  assert.equal(one.code, 0, one.stderr);
  assert.equal(two.code, 0, two.stderr);
  const third = await kilnBuild(args('3'));
  assert.equal(third.code, 0, third.stderr);
  assert.deepEqual(misses(third), []);
  const layout = join(work, 'concurrent-pulled');
  await pullToLayout(fx.registry, 'app/concurrent:3', layout, 'image');
  assert.equal((await runImage(layout, 'image')).stdout, 'same\nversion 1\ndone\n');
});

test('kiln warm, then a build from --cache-dir while the registry is down', async () => {
  const own = await startRegistry('plain');
  let stopped = false;
  try {
    const layout = await busyboxLayout();
    await pushLayout(layout.dir, layout.tag, own, 'base/busybox:1');
    const pinned = `${own.host}/base/busybox@${(await skopeoInspect(own, 'base/busybox:1')).Digest}`;
    const cacheDir = join(work, 'warm-cache');
    const warmed = await kilnCommand(['warm', '--image', pinned, '--cache-dir', cacheDir]);
    assert.equal(warmed.code, 0, warmed.stderr);
    await own.stop();
    stopped = true;
    const dir = context('offline', { Dockerfile: `FROM ${pinned}\nRUN echo offline > /offline\nCMD ["cat", "/offline"]\n` });
    const tarPath = join(work, 'offline.tar');
    const built = await kilnBuild(['--context', dir, '--cache-dir', cacheDir, '--no-push', '--tar-path', tarPath]);
    assert.equal(built.code, 0, built.stderr);
    assert.match(built.stderr, /from .*warm-cache/);
  } finally {
    if (!stopped) await own.stop();
  }
});

function kilnCommand(args: string[]): Promise<KilnRun> {
  return runKiln(args, { env: { DOCKER_CONFIG: join(work, 'no-docker-config') } });
}
