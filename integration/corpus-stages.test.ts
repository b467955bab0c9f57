// The Dockerfile corpus, part 2: multi-stage builds and the build's outputs (registry pushes,
// docker tarball, OCI layout, digest files) and the flags that shape layers (--reproducible,
// --snapshot-mode, --single-snapshot, --compression). Checked with skopeo, umoci and runc.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { busyboxLayout, pushLayout, runImage, skopeoInspect, startRegistry, type RunningRegistry } from './harness/index.js';
import { skopeo } from './harness/skopeo.js';
import { addedHistory, Corpus, nonEmptyHistory, ownerAndMode, readIn } from './corpus/corpus.js';

let registry: RunningRegistry;
let corpus: Corpus;
let baseConfig: any;

before(async () => {
  registry = await startRegistry('plain');
  const layout = await busyboxLayout();
  await pushLayout(layout.dir, layout.tag, registry, 'base/busybox:1');
  baseConfig = await skopeoInspect(registry, 'base/busybox:1', { config: true, raw: true });
  corpus = new Corpus(registry);
});

after(async () => {
  await registry?.stop();
  corpus?.remove();
});

test('--target builds the named stage; an unknown target lists the stages', async () => {
  const dir = corpus.context('target');
  let result = await corpus.build(['--context', dir, '--target', 'test', '--destination', corpus.ref('corpus/target:test')]);
  assert.equal(result.code, 0, result.stderr);
  const root = await corpus.rootfs('corpus/target:test');
  assert.equal(readIn(root, 'base'), 'base\n');
  assert.equal(readIn(root, 'test'), 'test\n');
  assert.ok(!existsSync(join(root, 'release')));

  result = await corpus.build(['--context', dir, '--target', 'nosuch', '--destination', corpus.ref('corpus/target:nosuch')]);
  assert.notEqual(result.code, 0);
  assert.equal(result.errors.length, 1, result.stderr);
  assert.match(result.errors[0]!, /nosuch/);
  assert.match(result.errors[0]!, /base, test, release/);
  assert.ok(!(await corpus.exists('corpus/target:nosuch')));
});

test('--skip-unused-stages leaves out a broken stage the target does not need', async () => {
  const dir = corpus.context('skip-unused');
  let result = await corpus.build(['--context', dir, '--skip-unused-stages', '--destination', corpus.ref('corpus/skip-unused:1')]);
  assert.equal(result.code, 0, result.stderr);
  assert.doesNotMatch(result.stderr, /this stage is not needed/);
  const run = await corpus.run('corpus/skip-unused:1');
  assert.equal(run.stdout, 'used\n', run.stderr);

  // Without the flag every stage up to the target is built, as in kaniko: the broken one fails.
  result = await corpus.build(['--context', dir, '--destination', corpus.ref('corpus/skip-unused:all')]);
  assert.equal(result.code, 1);
  assert.match(result.errors.join('\n'), /Dockerfile:3: RUN exited with code 7/);
  assert.ok(!(await corpus.exists('corpus/skip-unused:all')));
});

test('COPY --from a stage two back and by index; only the final stage is in the image', async () => {
  await corpus.buildAndPush('copy-from-two-back', 'corpus/copy-from-two-back:1');
  const config = await corpus.config('corpus/copy-from-two-back:1');
  assert.equal(config.rootfs.diff_ids.length, baseConfig.rootfs.diff_ids.length + 2);
  assert.equal(config.history.length, baseConfig.history.length + 3);
  const run = await corpus.run('corpus/copy-from-two-back:1');
  assert.equal(run.stdout, 'made two stages back\nmiddle\n', run.stderr);
  const root = await corpus.rootfs('corpus/copy-from-two-back:1');
  assert.ok(!existsSync(join(root, 'junk')) && !existsSync(join(root, 'out')));
});

test('--no-push with --tar-path, --oci-layout-path and --digest-file', async () => {
  const dir = corpus.context('outputs-local');
  const out = join(corpus.work, 'outputs-local-out');
  const before = (await registry.settledRequests()).length;
  const result = await corpus.build([
    '--context', dir, '--no-push',
    '--tar-path', join(out, 'image.tar'),
    '--oci-layout-path', join(out, 'layout'),
    '--digest-file', join(out, 'digest'),
  ]);
  assert.equal(result.code, 0, result.stderr);
  const digest = result.stdout.trim();
  assert.match(digest, /^sha256:[0-9a-f]{64}$/);
  assert.equal(readFileSync(join(out, 'digest'), 'utf8'), digest);
  const after = (await registry.settledRequests()).slice(before);
  assert.deepEqual(after.filter((r) => r.method !== 'GET' && r.method !== 'HEAD'), [], 'no-push writes nothing to the registry');

  const archive = JSON.parse(await skopeo(['inspect', `docker-archive:${join(out, 'image.tar')}`]));
  assert.equal(archive.Layers.length, baseConfig.rootfs.diff_ids.length + 1);
  assert.equal(archive.Architecture, 'amd64');

  const index = JSON.parse(readFileSync(join(out, 'layout', 'index.json'), 'utf8'));
  assert.equal(index.manifests.length, 1);
  assert.equal(index.manifests[0].digest, digest, 'the layout holds the image the digest names');
  const tag = index.manifests[0].annotations['org.opencontainers.image.ref.name'];
  const root = await corpus.unpackLayout(join(out, 'layout'), tag);
  assert.equal(readIn(root, 'local'), 'local\n');
  const run = await runImage(join(out, 'layout'), tag);
  assert.equal(run.stdout, 'local\n', run.stderr);
});

test('two --destinations on one registry: the second mounts every blob; digest files are exact', async () => {
  const dir = corpus.context('outputs-destinations');
  const out = join(corpus.work, 'outputs-destinations-out');
  const first = corpus.ref('corpus/first:1');
  const second = corpus.ref('corpus/second:v2');
  await registry.settledRequests();
  const before = registry.requests().length;
  const result = await corpus.build([
    '--context', dir, '--destination', first, '--destination', second,
    '--digest-file', join(out, 'digest'),
    '--image-name-with-digest-file', join(out, 'name-digest'),
    '--image-name-tag-with-digest-file', join(out, 'name-tag-digest'),
  ]);
  assert.equal(result.code, 0, result.stderr);
  const digest = result.stdout.trim();
  assert.equal(readFileSync(join(out, 'digest'), 'utf8'), digest);
  assert.equal(readFileSync(join(out, 'name-digest'), 'utf8'), `${registry.host}/corpus/first@${digest}\n${registry.host}/corpus/second@${digest}\n`);
  assert.equal(readFileSync(join(out, 'name-tag-digest'), 'utf8'), `${first}@${digest}\n${second}@${digest}\n`);
  assert.equal((await skopeoInspect(registry, 'corpus/first:1')).Digest, digest);
  assert.equal((await skopeoInspect(registry, 'corpus/second:v2')).Digest, digest);

  const requests = (await registry.settledRequests()).slice(before);
  const toSecond = requests.filter((r) => r.path.startsWith('/v2/corpus/second/blobs/uploads/'));
  const mounts = toSecond.filter((r) => r.method === 'POST' && /(^|&)mount=sha256:/.test(decodeURIComponent(r.query)));
  assert.ok(mounts.length >= 2, `the new layer and the config are mounted: ${JSON.stringify(toSecond)}`);
  assert.ok(mounts.every((r) => r.status === 201), JSON.stringify(mounts));
  assert.deepEqual(toSecond.filter((r) => r.method === 'PATCH' || r.method === 'PUT'), [], 'no blob is uploaded twice');
  const manifest = await corpus.manifest('corpus/second:v2');
  for (const blob of [manifest.config, ...manifest.layers]) {
    const digestHex = blob.digest as string;
    const mounted = mounts.some((r) => decodeURIComponent(r.query).includes(`mount=${digestHex}`)) || requests.some((r) => r.method === 'HEAD' && r.path === `/v2/corpus/second/blobs/${digestHex}` && r.status === 200);
    assert.ok(mounted, `${digestHex} reached corpus/second without an upload`);
  }
});

test('--reproducible: the same digest twice, no timestamps', async () => {
  const a = await corpus.buildAndPush('reproducible', 'corpus/reproducible:a', ['--reproducible']);
  const b = await corpus.buildAndPush('reproducible', 'corpus/reproducible:b', ['--reproducible']);
  assert.equal(a.digest, b.digest);
  const config = await corpus.config('corpus/reproducible:a');
  assert.equal(config.created, '1970-01-01T00:00:00Z');
  for (const entry of addedHistory(config, baseConfig.history.length)) assert.equal(entry.created ?? '1970-01-01T00:00:00Z', '1970-01-01T00:00:00Z', JSON.stringify(entry));
  const root = await corpus.rootfs('corpus/reproducible:a');
  for (const path of ['app/app.txt', 'app/built', 'app/stamp']) assert.equal(statSync(join(root, path)).mtimeMs, 0, `${path} has mtime 0`);
});

test('--snapshot-mode redo and time build images that run as the Dockerfile says', async () => {
  for (const mode of ['redo', 'time']) {
    await corpus.buildAndPush('snapshot-modes', `corpus/snapshot-modes:${mode}`, ['--snapshot-mode', mode]);
    const config = await corpus.config(`corpus/snapshot-modes:${mode}`);
    assert.equal(config.rootfs.diff_ids.length, baseConfig.rootfs.diff_ids.length + 2, mode);
    const run = await corpus.run(`corpus/snapshot-modes:${mode}`);
    assert.equal(run.stdout, 'one\ntwo\nkept\nlink\nnewdir\n', `${mode}: ${run.stderr}`);
    const root = await corpus.rootfs(`corpus/snapshot-modes:${mode}`);
    assert.equal(ownerAndMode(root, 'state/kept').mode, 0o600, mode);
    assert.deepEqual(readdirSync(join(root, 'state')).sort(), ['kept', 'link', 'newdir'], mode);
  }
});

test('--single-snapshot: one new layer with the end state; history still per instruction', async () => {
  await corpus.buildAndPush('single-snapshot', 'corpus/single-snapshot:1', ['--single-snapshot']);
  const config = await corpus.config('corpus/single-snapshot:1');
  assert.equal(config.rootfs.diff_ids.length, baseConfig.rootfs.diff_ids.length + 1);
  assert.equal(config.history.length, baseConfig.history.length + 5);
  assert.equal(nonEmptyHistory(config), config.rootfs.diff_ids.length);
  assert.ok(config.config.Env.includes('X=1'));
  const run = await corpus.run('corpus/single-snapshot:1');
  assert.equal(run.stdout, 'two\nthree\none-absent\n', run.stderr);
});

test('--compression zstd: new layers are zstd, decompress to their diff_ids, and the image runs', async () => {
  await corpus.buildAndPush('zstd', 'corpus/zstd:1', ['--compression', 'zstd']);
  const manifest = await corpus.manifest('corpus/zstd:1');
  const base = await corpus.manifest('base/busybox:1');
  assert.equal(manifest.layers.length, base.layers.length + 1);
  assert.deepEqual(manifest.layers[0], base.layers[0], 'the base layer is reused as it is');
  const layer = manifest.layers.at(-1);
  assert.equal(layer.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
  const config = await corpus.config('corpus/zstd:1');
  assert.equal(addedHistory(config, baseConfig.history.length).length, 2);

  // The zstd tool decompresses the blob to the tar its diff_id names.
  const layout = await corpus.layout('corpus/zstd:1');
  const tar = execFileSync('zstd', ['-dc', join(layout, 'blobs', 'sha256', layer.digest.slice('sha256:'.length))]);
  assert.equal(`sha256:${createHash('sha256').update(tar).digest('hex')}`, config.rootfs.diff_ids.at(-1));
  // umoci 0.4 reads only gzip layers: skopeo recompresses (decoding kiln's zstd), then runc runs it.
  const gzipLayout = join(corpus.work, 'zstd-as-gzip');
  await skopeo(['copy', '--quiet', '--dest-compress', '--dest-compress-format', 'gzip', `oci:${layout}:image`, `oci:${gzipLayout}:image`]);
  const run = await runImage(gzipLayout, 'image');
  assert.equal(run.stdout, 'compressed\n', run.stderr);
});
