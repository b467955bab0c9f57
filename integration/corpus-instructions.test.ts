// The Dockerfile corpus, part 1: every instruction. Each fixture under integration/corpus/ is
// built by kiln and pushed to a plain registry; the result is checked with skopeo (config and
// manifest), umoci (files, owners, modes) and runc (what the image prints when run).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { busyboxLayout, pushLayout, skopeoInspect, startRegistry, type RunningRegistry } from './harness/index.js';
import { addedHistory, Corpus, CORPUS_DIR, nonEmptyHistory, ownerAndMode, readIn } from './corpus/corpus.js';

const HELLO = 'hello over http\n';
let registry: RunningRegistry;
let corpus: Corpus;
let http: Server;
let httpRequests: string[] = [];
let baseConfig: any;
let baseDigest: string;

before(async () => {
  registry = await startRegistry('plain');
  const layout = await busyboxLayout();
  await pushLayout(layout.dir, layout.tag, registry, 'base/busybox:1');
  baseDigest = (await skopeoInspect(registry, 'base/busybox:1')).Digest;
  baseConfig = await skopeoInspect(registry, 'base/busybox:1', { config: true, raw: true });

  const archive = execFileSync('tar', ['-cz', '-C', join(CORPUS_DIR, 'add-archive', 'archive-src'), 'top']);
  http = createServer((req, res) => {
    httpRequests.push(`${req.method} ${req.url}`);
    const body = req.url === '/files/hello.txt' ? Buffer.from(HELLO) : req.url === '/files/archive.tar.gz' ? archive : undefined;
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  corpus = new Corpus(registry, {
    BASE_DIGEST: baseDigest,
    HTTP: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    HELLO_SHA256: `sha256:${createHash('sha256').update(HELLO).digest('hex')}`,
  });
});

after(async () => {
  await new Promise<void>((resolve) => (http ? http.close(() => resolve()) : resolve()));
  await registry?.stop();
  corpus?.remove();
});

const baseHistory = (): number => baseConfig.history.length;

/** Every image: layers match the non-empty history entries, and each instruction has an entry. */
function assertConsistent(config: any, instructions: number): void {
  assert.equal(config.history.length, baseHistory() + instructions, 'one history entry per instruction');
  assert.equal(nonEmptyHistory(config), config.rootfs.diff_ids.length, 'layers = non-empty history entries');
}

test('FROM: a digest-pinned base, scratch, --platform with AS, a stage, ARG before FROM', async () => {
  // from-digest
  await corpus.buildAndPush('from-digest', 'corpus/from-digest:1');
  let config = await corpus.config('corpus/from-digest:1');
  assert.equal(config.rootfs.diff_ids[0], baseConfig.rootfs.diff_ids[0], 'the base layer is kept as it is');
  assertConsistent(config, 2);
  let run = await corpus.run('corpus/from-digest:1');
  assert.equal(run.stdout, 'pinned\n', run.stderr);

  // from-scratch
  await corpus.buildAndPush('from-scratch', 'corpus/from-scratch:1');
  config = await corpus.config('corpus/from-scratch:1');
  assert.equal(config.rootfs.diff_ids.length, 2, 'no base layer, one per COPY');
  assert.equal(config.history.length, 3);
  assert.equal(config.os, 'linux');
  assert.equal(config.architecture, 'amd64');
  assert.deepEqual(config.config.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], "a scratch image gets Docker's PATH");
  const scratchRoot = await corpus.rootfs('corpus/from-scratch:1');
  assert.deepEqual(readdirSync(scratchRoot).sort(), ['busybox', 'hello.txt']);
  run = await corpus.run('corpus/from-scratch:1');
  assert.equal(run.stdout, 'hello from scratch\n', run.stderr);

  // platform-stage
  await corpus.buildAndPush('platform-stage', 'corpus/platform-stage:1');
  config = await corpus.config('corpus/platform-stage:1');
  assert.equal(config.architecture, 'amd64');
  assert.ok(config.config.Env.includes('BUILT_FOR=amd64'), 'ENV of the stage built on carries on');
  assertConsistent(config, 3);
  const platformRoot = await corpus.rootfs('corpus/platform-stage:1');
  assert.equal(readIn(platformRoot, 'arch-copy'), 'x86_64\n');
  assert.equal(readIn(platformRoot, 'built-for'), 'amd64\n');

  // arg-before-from: the default TAG names no image; --build-arg gives the real one.
  const dir = corpus.context('arg-before-from');
  const result = await corpus.build(['--context', dir, '--destination', corpus.ref('corpus/arg-before-from:1'), '--build-arg', 'TAG=1']);
  assert.equal(result.code, 0, result.stderr);
  config = await corpus.config('corpus/arg-before-from:1');
  assert.ok(!config.config.Env.some((e: string) => /^(REPO|TAG|UNDECLARED)=/.test(e)), 'ARGs are not in the config');
  assert.equal(readIn(await corpus.rootfs('corpus/arg-before-from:1'), 'args'), 'repo=base/busybox tag=1 undeclared=unset\n');
});

test('RUN: shell and exec forms, heredocs, heredoc with #!, SHELL', async () => {
  await corpus.buildAndPush('run-forms', 'corpus/run-forms:1');
  let root = await corpus.rootfs('corpus/run-forms:1');
  assert.equal(readIn(root, 'shell'), 'hello shell\nsecond\n');
  assert.equal(readIn(root, 'exec'), 'hello exec\n');
  assert.ok(existsSync(join(root, 'literal-$GREETING')), 'exec form is not expanded by the Dockerfile');

  await corpus.buildAndPush('run-heredoc', 'corpus/run-heredoc:1');
  root = await corpus.rootfs('corpus/run-heredoc:1');
  assert.equal(readIn(root, 'heredoc'), 'first line from heredoc\nsecond line\n');
  assert.equal(readIn(root, 'tabs'), 'tabs stripped\n');
  assert.equal(readIn(root, 'generated'), 'literal $WHO\n');
  assertConsistent(await corpus.config('corpus/run-heredoc:1'), 4);

  await corpus.buildAndPush('run-heredoc-shebang', 'corpus/run-heredoc-shebang:1');
  root = await corpus.rootfs('corpus/run-heredoc-shebang:1');
  assert.equal(readIn(root, 'shebang-sh'), 'ran as a file\n');
  assert.equal(readIn(root, 'shebang-awk'), 'awk ran the body\n');
  assert.deepEqual(readdirSync(root).filter((name) => name.startsWith('.')), [], 'no script file is left in the image');

  await corpus.buildAndPush('shell', 'corpus/shell:1');
  const config = await corpus.config('corpus/shell:1');
  assert.deepEqual(config.config.Shell, ['/bin/ash', '-c']);
  assert.deepEqual(config.config.Cmd, ['/bin/ash', '-c', 'echo "cmd through $0"']);
  root = await corpus.rootfs('corpus/shell:1');
  assert.equal(readIn(root, 'default-shell'), '/bin/sh\n');
  assert.equal(readIn(root, 'new-shell'), '/bin/ash\n');
  const run = await corpus.run('corpus/shell:1');
  assert.equal(run.stdout, 'cmd through /bin/ash\n', run.stderr);
});

test('RUN deletions and replacements reach the image: files, directories, a directory made again', async () => {
  const { result } = await corpus.buildAndPush('run-deletions', 'corpus/run-deletions:1', ['--verbosity', 'debug']);
  // The three RUNs after the one that makes the root large ran on an overlay.
  assert.equal(result.stderr.split("moved the command's changes from its overlay").length - 1, 3, result.stderr.slice(-4000));
  const root = await corpus.rootfs('corpus/run-deletions:1');
  assert.deepEqual(readdirSync(join(root, 'data')), ['fresh']);
  assert.equal(readIn(root, 'swap'), 'now-a-file\n');
  assert.equal(readdirSync(join(root, 'bulk')).length, 200);
  const run = await corpus.run('corpus/run-deletions:1');
  assert.equal(run.stdout, 'fresh\nnow-a-file\n200\n', run.stderr);
});

test('RUN as USER (from /etc/passwd and numeric), in WORKDIR, with ENV and ARG', async () => {
  await corpus.buildAndPush('run-as-user', 'corpus/run-as-user:1');
  const config = await corpus.config('corpus/run-as-user:1');
  assert.equal(config.config.User, 'root');
  const root = await corpus.rootfs('corpus/run-as-user:1');
  assert.equal(readIn(root, 'tmp/uid'), '65534\n');
  assert.equal(readIn(root, 'tmp/gid'), '65534\n');
  assert.deepEqual(ownerAndMode(root, 'tmp/uid'), { uid: 65534, gid: 65534, mode: 0o644 });
  const workdir = ownerAndMode(root, 'tmp/work');
  assert.deepEqual([workdir.uid, workdir.gid], [65534, 65534], 'WORKDIR made as USER');
  assert.equal(ownerAndMode(root, 'tmp/work/made-by-nobody').uid, 65534);
  assert.equal(readIn(root, 'tmp/numeric'), '1234\n2345\n');
  const numeric = ownerAndMode(root, 'tmp/numeric');
  assert.deepEqual([numeric.uid, numeric.gid], [1234, 2345]);
  assert.equal(readIn(root, 'tmp/home'), '/nonexistent\n');
  assert.equal(readIn(root, 'tmp/root-name'), 'root\n/root\n');
  assert.equal(ownerAndMode(root, 'tmp/root-name').uid, 0);
  assert.equal(ownerAndMode(root, 'tmp').mode, 0o1777, 'the base directory keeps its sticky bit');

  await corpus.buildAndPush('run-env-workdir', 'corpus/run-env-workdir:1');
  const envConfig = await corpus.config('corpus/run-env-workdir:1');
  assert.equal(envConfig.config.WorkingDir, '/srv/app');
  assert.ok(envConfig.config.Env.includes('MODE=production'));
  assert.ok(!envConfig.config.Env.some((e: string) => e.startsWith('VERSION=')), 'ARG is not saved');
  const envRoot = await corpus.rootfs('corpus/run-env-workdir:1');
  assert.equal(readIn(envRoot, 'srv/app/where'), '/srv/app\n');
  assert.equal(readIn(envRoot, 'srv/app/vars'), '1.2.3 production\n');
  const env = readIn(envRoot, 'srv/app/env.txt').split('\n');
  assert.ok(env.includes('VERSION=1.2.3') && env.includes('MODE=production'), env.join(' '));
  assert.ok(env.some((line) => line.startsWith('PATH=/usr/local/sbin:')), 'the base image PATH reaches RUN');
});

test('COPY: several sources, wildcards, directory contents, trailing slashes, JSON form', async () => {
  await corpus.buildAndPush('copy-sources', 'corpus/copy-sources:1');
  const root = await corpus.rootfs('corpus/copy-sources:1');
  assert.deepEqual(readdirSync(join(root, 'multi')).sort(), ['a.txt', 'b.txt']);
  assert.deepEqual(readdirSync(join(root, 'confs')).sort(), ['x.conf', 'y.conf']);
  assert.deepEqual(readdirSync(join(root, 'dir-contents')).sort(), ['one', 'sub'], 'a directory source copies its contents');
  assert.equal(readIn(root, 'dir-contents/sub/two'), 'two\n');
  assert.deepEqual(readdirSync(join(root, 'dir-contents-slash')).sort(), ['one', 'sub']);
  assert.ok(lstatSync(join(root, 'renamed')).isFile());
  assert.equal(readIn(root, 'renamed'), 'file a\n');
  assert.equal(readIn(root, 'new/nested/a.txt'), 'file a\n');
  assert.equal(readIn(root, 'w/relative/b.txt'), 'file b\n', 'a relative destination is under WORKDIR');
  assert.equal(readIn(root, 'with space.txt'), 'file a\n');
  assertConsistent(await corpus.config('corpus/copy-sources:1'), 9);
});

test('COPY --chown (name, id, user alone) and --chmod', async () => {
  await corpus.buildAndPush('copy-chown-chmod', 'corpus/copy-chown-chmod:1');
  const root = await corpus.rootfs('corpus/copy-chown-chmod:1');
  assert.deepEqual(ownerAndMode(root, 'by-name'), { uid: 65534, gid: 65534, mode: 0o644 });
  assert.deepEqual(ownerAndMode(root, 'by-id'), { uid: 1001, gid: 1002, mode: 0o644 });
  assert.deepEqual(ownerAndMode(root, 'user-only'), { uid: 65534, gid: 65534, mode: 0o644 });
  assert.deepEqual(ownerAndMode(root, 'script.sh'), { uid: 0, gid: 0, mode: 0o750 });
  assert.deepEqual(ownerAndMode(root, 'chowned/inner.txt'), { uid: 1001, gid: 1001, mode: 0o640 });
  const created = ownerAndMode(root, 'chowned');
  assert.deepEqual([created.uid, created.gid], [1001, 1001], 'the destination directory COPY creates gets the owner too');
});

test('.dockerignore with ! exceptions, and <Dockerfile>.dockerignore', async () => {
  await corpus.buildAndPush('dockerignore', 'corpus/dockerignore:1');
  let root = await corpus.rootfs('corpus/dockerignore:1');
  assert.ok(existsSync(join(root, 'ctx/app.txt')));
  assert.ok(existsSync(join(root, 'ctx/keep.log')), '!keep.log brings it back');
  assert.ok(existsSync(join(root, 'ctx/sub/b.txt')));
  assert.ok(!existsSync(join(root, 'ctx/debug.log')), '*.log');
  assert.ok(!existsSync(join(root, 'ctx/secret')), 'secret/');
  assert.ok(!existsSync(join(root, 'ctx/sub/a.tmp')), '**/*.tmp');

  const dir = corpus.context('dockerfile-dockerignore');
  const result = await corpus.build(['--context', dir, '--dockerfile', 'build/app.Dockerfile', '--destination', corpus.ref('corpus/dockerfile-dockerignore:1')]);
  assert.equal(result.code, 0, result.stderr);
  root = await corpus.rootfs('corpus/dockerfile-dockerignore:1');
  assert.deepEqual(readdirSync(join(root, 'ctx')).sort(), ['.dockerignore', 'a.txt'], 'only build/app.Dockerfile.dockerignore applies');
});

test('ADD: a local tar.gz is extracted; http URLs with --checksum right and wrong', async () => {
  const dir = corpus.context('add-archive');
  execFileSync('tar', ['-czf', join(dir, 'archive.tar.gz'), '-C', join(dir, 'archive-src'), 'top']);
  let result = await corpus.build(['--context', dir, '--destination', corpus.ref('corpus/add-archive:1')]);
  assert.equal(result.code, 0, result.stderr);
  let root = await corpus.rootfs('corpus/add-archive:1');
  assert.equal(readIn(root, 'opt/top/inner.txt'), 'inside the archive\n');
  assert.equal(readIn(root, 'opt/top/deeper/file'), 'deep\n');
  assert.equal(readIn(root, 'opt/plain.txt'), 'plain\n');
  assert.ok(!existsSync(join(root, 'opt/archive.tar.gz')));
  assert.deepEqual(readFileSync(join(root, 'kept/archive.tar.gz')), readFileSync(join(dir, 'archive.tar.gz')), 'COPY keeps the archive');

  httpRequests = [];
  await corpus.buildAndPush('add-url', 'corpus/add-url:1');
  root = await corpus.rootfs('corpus/add-url:1');
  assert.equal(readIn(root, 'downloads/checked.txt'), HELLO);
  assert.equal(readIn(root, 'downloads/hello.txt'), HELLO, 'the name comes from the URL');
  assert.equal(ownerAndMode(root, 'downloads/hello.txt').mode, 0o600, 'remote files are 0600, as in Docker');
  assert.ok(lstatSync(join(root, 'remote/archive.tar.gz')).isFile(), 'remote archives are not extracted');
  assert.ok(httpRequests.filter((r) => r.endsWith('/files/hello.txt')).length >= 2, httpRequests.join(', '));

  result = await corpus.build(['--context', corpus.context('add-url-bad-checksum'), '--destination', corpus.ref('corpus/add-url-bad-checksum:1')]);
  assert.equal(result.code, 1, result.stderr);
  assert.equal(result.errors.length, 1, result.stderr);
  assert.match(result.errors[0]!, /Dockerfile:4/);
  assert.match(result.errors[0]!, /checksum|digest/i);
  assert.ok(!(await corpus.exists('corpus/add-url-bad-checksum:1')), 'nothing is pushed');
});

test('COPY heredocs', async () => {
  await corpus.buildAndPush('copy-heredoc', 'corpus/copy-heredoc:1');
  const root = await corpus.rootfs('corpus/copy-heredoc:1');
  assert.equal(readIn(root, 'etc/greeting'), 'hello kiln\n');
  assert.equal(readIn(root, 'etc/literal'), 'hello ${NAME}\n');
  assert.equal(readIn(root, 'heredocs/one.txt'), 'first\n');
  assert.equal(readIn(root, 'heredocs/two.txt'), 'second\n');
});

test('ENV (both forms, into a stage built FROM a stage) and ARG (defaults, --build-arg, environment)', async () => {
  await corpus.buildAndPush('env-forms', 'corpus/env-forms:1');
  let config = await corpus.config('corpus/env-forms:1');
  for (const entry of ['A=changed', 'B=two words', 'C=three words', 'LEGACY=value with spaces', 'D=1-x', 'E=1', 'F=changed-1']) {
    assert.ok(config.config.Env.includes(entry), `${entry} in ${JSON.stringify(config.config.Env)}`);
  }
  assert.ok(config.config.Env.some((e: string) => e.startsWith('PATH=')));
  assert.equal(readIn(await corpus.rootfs('corpus/env-forms:1'), 'env'), 'changed|two words|three words|value with spaces|1-x|1|changed-1\n');

  const dir = corpus.context('arg-forms');
  const result = await corpus.build(
    ['--context', dir, '--destination', corpus.ref('corpus/arg-forms:1'), '--build-arg', 'WITHOUT_DEFAULT=given', '--build-arg', 'OVERRIDDEN=from-flag', '--build-arg', 'FROM_ENV'],
    { FROM_ENV: 'from-environment' },
  );
  assert.equal(result.code, 0, result.stderr);
  config = await corpus.config('corpus/arg-forms:1');
  assert.ok(!config.config.Env.some((e: string) => /^(WITH_DEFAULT|WITHOUT_DEFAULT|OVERRIDDEN|FROM_ENV|NOT_GIVEN)=/.test(e)), JSON.stringify(config.config.Env));
  assert.equal(readIn(await corpus.rootfs('corpus/arg-forms:1'), 'args'), 'default-value|given|from-flag|from-environment|unset\n');
  assertConsistent(config, 6);
});

test('LABEL with --label, EXPOSE, VOLUME, WORKDIR', async () => {
  const dir = corpus.context('labels');
  const result = await corpus.build(['--context', dir, '--destination', corpus.ref('corpus/labels:1'), '--label', 'overridden=from-flag', '--label', 'extra=added']);
  assert.equal(result.code, 0, result.stderr);
  let config = await corpus.config('corpus/labels:1');
  assert.deepEqual(config.config.Labels, {
    'org.opencontainers.image.title': 'corpus labels',
    version: '1',
    'quoted key': 'quoted value',
    'multi.line': 'yes',
    revision: 'abc123',
    overridden: 'from-flag',
    extra: 'added',
  });
  assert.equal(config.rootfs.diff_ids.length, baseConfig.rootfs.diff_ids.length, 'LABEL adds no layer');

  await corpus.buildAndPush('expose-volume', 'corpus/expose-volume:1');
  config = await corpus.config('corpus/expose-volume:1');
  assert.deepEqual(config.config.ExposedPorts, { '80/tcp': {}, '443/tcp': {}, '53/udp': {}, '8080/tcp': {}, '9090/udp': {} });
  assert.deepEqual(config.config.Volumes, { '/store': {}, '/data': {}, '/cache': {}, '/logs': {}, '/a': {}, '/b': {} });
  assert.ok(addedHistory(config, baseHistory()).every((h) => h.empty_layer === true), 'metadata steps are empty layers');
  assertConsistent(config, 9);

  await corpus.buildAndPush('workdir', 'corpus/workdir:1');
  config = await corpus.config('corpus/workdir:1');
  assert.equal(config.config.WorkingDir, '/tmp');
  assertConsistent(config, 7);
  const root = await corpus.rootfs('corpus/workdir:1');
  assert.equal(readIn(root, 'pwd'), '/a/b/c/d\n');
  assert.ok(statSync(join(root, 'a/b/c/d')).isDirectory());
});

test('ENTRYPOINT and CMD: exec and shell forms, a new ENTRYPOINT clears the inherited CMD', async () => {
  assert.deepEqual(baseConfig.config.Cmd, ['sh'], 'the base has a CMD to clear');

  await corpus.buildAndPush('entrypoint-exec', 'corpus/entrypoint-exec:1');
  let config = await corpus.config('corpus/entrypoint-exec:1');
  assert.deepEqual(config.config.Entrypoint, ['echo', 'entrypoint only']);
  assert.ok(config.config.Cmd === undefined || config.config.Cmd === null, `Cmd is ${JSON.stringify(config.config.Cmd)}`);
  let run = await corpus.run('corpus/entrypoint-exec:1');
  assert.equal(run.stdout, 'entrypoint only\n', run.stderr);

  await corpus.buildAndPush('entrypoint-shell', 'corpus/entrypoint-shell:1');
  config = await corpus.config('corpus/entrypoint-shell:1');
  assert.deepEqual(config.config.Entrypoint, ['/bin/sh', '-c', 'echo "hello $WHO from the shell form"']);
  assert.deepEqual(config.config.Cmd, ['ignored']);
  run = await corpus.run('corpus/entrypoint-shell:1');
  assert.equal(run.stdout, 'hello world from the shell form\n', run.stderr);

  await corpus.buildAndPush('cmd-entrypoint', 'corpus/cmd-entrypoint:1');
  config = await corpus.config('corpus/cmd-entrypoint:1');
  assert.deepEqual(config.config.Cmd, ['from', 'cmd']);
  run = await corpus.run('corpus/cmd-entrypoint:1');
  assert.equal(run.stdout, 'entrypoint from cmd\n', run.stderr);
});

test('HEALTHCHECK (options, exec form, NONE), STOPSIGNAL, MAINTAINER', async () => {
  const dir = corpus.context('healthcheck');
  let result = await corpus.build(['--context', dir, '--target', 'checked', '--destination', corpus.ref('corpus/healthcheck:checked')]);
  assert.equal(result.code, 0, result.stderr);
  let config = await corpus.config('corpus/healthcheck:checked');
  assert.deepEqual(config.config.Healthcheck, {
    Test: ['CMD-SHELL', 'wget -q -O- http://localhost/ || exit 1'],
    Interval: 5_000_000_000,
    Timeout: 3_000_000_000,
    StartPeriod: 60_000_000_000,
    Retries: 4,
  });
  result = await corpus.build(['--context', dir, '--destination', corpus.ref('corpus/healthcheck:none')]);
  assert.equal(result.code, 0, result.stderr);
  config = await corpus.config('corpus/healthcheck:none');
  assert.deepEqual(config.config.Healthcheck, { Test: ['NONE'] });

  await corpus.buildAndPush('stopsignal-maintainer', 'corpus/stopsignal-maintainer:1');
  config = await corpus.config('corpus/stopsignal-maintainer:1');
  assert.equal(config.author, 'Corpus Maintainer <corpus@example.com>');
  assert.equal(config.config.StopSignal, 'SIGUSR1');
  assert.deepEqual(config.config.Healthcheck, { Test: ['CMD', 'true'], Interval: 30_000_000_000 });
  assertConsistent(config, 3);
});

test('ONBUILD: stored by the parent, run and dropped by the child', async () => {
  await corpus.buildAndPush('onbuild-parent', 'corpus/onbuild-parent:1');
  const parent = await corpus.config('corpus/onbuild-parent:1');
  assert.deepEqual(parent.config.OnBuild, ['RUN echo "trigger ran" > /onbuild-ran', 'ENV TRIGGERED=yes']);
  assert.ok(!existsSync(join(await corpus.rootfs('corpus/onbuild-parent:1'), 'onbuild-ran')), 'triggers do not run in the parent');

  await corpus.buildAndPush('onbuild-child', 'corpus/onbuild-child:1');
  const child = await corpus.config('corpus/onbuild-child:1');
  assert.ok(child.config.OnBuild === undefined || child.config.OnBuild === null || child.config.OnBuild.length === 0, `OnBuild is ${JSON.stringify(child.config.OnBuild)}`);
  assert.ok(child.config.Env.includes('TRIGGERED=yes'));
  assert.equal(readIn(await corpus.rootfs('corpus/onbuild-child:1'), 'child-saw'), 'trigger ran\nyes\n');
  assert.equal(child.history.length, parent.history.length + 3, 'one entry per trigger and per instruction');
  assert.equal(nonEmptyHistory(child), child.rootfs.diff_ids.length);
});

test('history: one entry per instruction, empty_layer for steps that write nothing', async () => {
  await corpus.buildAndPush('history', 'corpus/history:1');
  const config = await corpus.config('corpus/history:1');
  assertConsistent(config, 6);
  const added = addedHistory(config, baseHistory());
  assert.deepEqual(added.map((h) => h.empty_layer === true), [true, false, true, false, true, true]);
  assert.match(added[1]!.created_by!, /echo layer > \/layer/);
  assert.match(added[3]!.created_by!, /COPY file\.txt \/file\.txt/);
  assert.equal(config.rootfs.diff_ids.length, baseConfig.rootfs.diff_ids.length + 2);
});
