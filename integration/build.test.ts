import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pullToLayout, runImage, runKiln, skopeoInspect, writeContext, type KilnRun, useBusyboxRegistry } from './harness/index.js';

const fx = useBusyboxRegistry('kiln-build-test-');
const { work } = fx;

/** A build context directory with these files (Dockerfile included). */
function context(name: string, files: Record<string, string>): string {
  return writeContext(join(work, name), files);
}

function kilnBuild(args: string[]): Promise<KilnRun> {
  return runKiln(['build', '--log-format=text', ...args], { env: { DOCKER_CONFIG: join(work, 'no-docker-config') } });
}

async function pulled(repoTag: string): Promise<string> {
  const dir = join(work, `pulled-${repoTag.replace(/[/:]/g, '-')}`);
  await pullToLayout(fx.registry, repoTag, dir, 'image');
  return dir;
}

test('a single-stage build with RUN, COPY and metadata is pushed, inspected and run', async () => {
  const dir = context('single', {
    Dockerfile: [
      `FROM ${fx.base}`,
      'ARG GREETING=hello',
      'ENV APP_HOME=/app',
      'WORKDIR $APP_HOME',
      'COPY greet.txt ./',
      'RUN echo "$GREETING from run" > run.txt && mkdir -p /data && echo x > /data/x && echo y > /data/y',
      'RUN rm /data/x',
      'EXPOSE 8080',
      'LABEL org.example.name=demo',
      'ENTRYPOINT ["sh", "-c"]',
      'CMD ["cat /app/greet.txt /app/run.txt; ls /data"]',
      '',
    ].join('\n'),
    'greet.txt': 'greetings from the context\n',
  });
  const result = await kilnBuild(['--context', dir, '--destination', `${fx.registry.host}/app/single:1`]);
  assert.equal(result.code, 0, result.stderr);
  const digest = result.stdout.trim();
  const inspected = await skopeoInspect(fx.registry, 'app/single:1');
  assert.equal(inspected.Digest, digest);
  const config = await skopeoInspect(fx.registry, 'app/single:1', { config: true });
  assert.ok(config.config.Env.includes('APP_HOME=/app'));
  assert.ok(!config.config.Env.some((e: string) => e.startsWith('GREETING=')), 'build args are not persisted');
  assert.equal(config.config.WorkingDir, '/app');
  assert.deepEqual(config.config.ExposedPorts, { '8080/tcp': {} });
  assert.equal(config.config.Labels['org.example.name'], 'demo');
  assert.deepEqual(config.config.Entrypoint, ['sh', '-c']);
  assert.equal(config.history.length, 1 + 10);
  assert.equal(config.history.filter((h: { empty_layer?: boolean }) => !h.empty_layer).length, config.rootfs.diff_ids.length);
  const run = await runImage(await pulled('app/single:1'), 'image');
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, 'greetings from the context\nhello from run\ny\n');
});

test('multi-stage: COPY --from an earlier stage, only the final stage is in the image', async () => {
  const dir = context('multi', {
    Dockerfile: [
      `FROM ${fx.base} AS builder`,
      'RUN mkdir /out && echo built > /out/artifact && echo junk > /junk',
      `FROM ${fx.base}`,
      'COPY --from=builder /out/artifact /artifact',
      'CMD ["cat", "/artifact"]',
      '',
    ].join('\n'),
  });
  const result = await kilnBuild(['--context', dir, '--destination', `${fx.registry.host}/app/multi:1`]);
  assert.equal(result.code, 0, result.stderr);
  const layout = await pulled('app/multi:1');
  assert.equal((await runImage(layout, 'image')).stdout, 'built\n');
  assert.equal((await runImage(layout, 'image', ['sh', '-c', 'test -e /junk && echo present || echo absent'])).stdout, 'absent\n');
});

test('a failing RUN names the line and exit code, and nothing is pushed', async () => {
  const dir = context('failing', { Dockerfile: `FROM ${fx.base}\nRUN echo ok\nRUN exit 3\n` });
  const result = await kilnBuild(['--context', dir, '--destination', `${fx.registry.host}/app/failing:1`]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /kiln: error: Dockerfile:3: RUN exited with code 3/);
  await assert.rejects(skopeoInspect(fx.registry, 'app/failing:1'));
});

test('an unknown instruction is one sentence with file and line', async () => {
  const dir = context('unknown', { Dockerfile: `FROM ${fx.base}\nFROBNICATE now\n` });
  const result = await kilnBuild(['--context', dir, '--destination', `${fx.registry.host}/app/unknown:1`]);
  assert.notEqual(result.code, 0);
  const errors = result.stderr.split('\n').filter((l) => l.startsWith('kiln: error:'));
  assert.equal(errors.length, 1, result.stderr);
  assert.match(errors[0]!, /Dockerfile:2/);
  assert.match(errors[0]!, /FROBNICATE/i);
});

test('a FROM image that does not exist is one sentence and nothing is pushed', async () => {
  const dir = context('missing-base', { Dockerfile: `FROM ${fx.registry.host}/no/such:image\nRUN true\n` });
  const result = await kilnBuild(['--context', dir, '--destination', `${fx.registry.host}/app/missing:1`]);
  assert.equal(result.code, 1);
  const errors = result.stderr.split('\n').filter((l) => l.startsWith('kiln: error:'));
  assert.equal(errors.length, 1, result.stderr);
  assert.match(errors[0]!, /no\/such/);
  await assert.rejects(skopeoInspect(fx.registry, 'app/missing:1'));
});

/** Polls `check` until it holds or `ms` pass; returns whether it held. */
async function eventually(check: () => boolean, ms = 20_000): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += 100) {
    if (check()) return true;
    await sleep(100);
  }
  return check();
}

// A build stopped by a signal (Ctrl-C, a cancelled CI job, a pod being stopped) ends with one
// line and the exit status a shell reports, pushes nothing, and leaves nothing behind: no
// work directory and no process of the RUN it interrupted.
// SIGINT comes while the RUN runs (its output, computed by the shell, has appeared); SIGTERM
// as soon as the step starts, while the base image is still being pulled and extracted.
for (const [signal, status, moment] of [['SIGINT', 130, 'run'], ['SIGTERM', 143, 'extract']] as const) {
  test(`${signal} during the ${moment === 'run' ? 'RUN' : 'extraction'}: exit ${status}, one line, nothing pushed, no work directory or process left`, async () => {
    const marker = `kiln-interrupt-${signal}-${process.pid}`;
    const dir = context(`interrupt-${signal}`, { Dockerfile: `FROM ${fx.base}\nRUN echo "started-$((6*7))-${marker}" && sleep 600\nRUN echo never\n` });
    const rootDir = join(work, `root-${signal}`);
    const repo = `app/interrupt-${signal.toLowerCase()}`;
    const when = moment === 'run' ? new RegExp(`started-42-${marker}`) : /STEP 1\//;
    const run = await runKiln(['build', '--context', dir, '--destination', `${fx.registry.host}/${repo}:1`, '--root-dir', rootDir], { interrupt: { when, signal } });
    assert.equal(run.code, status, run.stderr);
    const errors = run.stderr.split('\n').filter((line) => line.startsWith('kiln: error:'));
    assert.deepEqual(errors, [`kiln: error: stopped by ${signal}; the build did not finish.`]);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(run.stdout, '', 'no digest is printed');

    const manifest = await fetch(`http://${fx.registry.host}/v2/${repo}/manifests/1`, { method: 'HEAD' });
    assert.equal(manifest.status, 404, 'nothing is pushed');
    assert.ok(await eventually(() => readdirSync(rootDir).length === 0), `kiln's work directory is removed: ${readdirSync(rootDir).join(', ')}`);
    const running = () => spawnSync('pgrep', ['-f', marker], { encoding: 'utf8' }).stdout.trim();
    assert.ok(await eventually(() => running() === ''), `the RUN's processes are gone: ${running()}`);
  });
}
