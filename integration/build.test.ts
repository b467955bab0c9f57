import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxLayout, pullToLayout, pushLayout, runImage, runKiln, skopeoInspect, writeContext, startRegistry, type KilnRun, type RunningRegistry } from './harness/index.js';

const work = mkdtempSync(join(tmpdir(), 'kiln-build-test-'));
let registry: RunningRegistry;
let base: string;

before(async () => {
  registry = await startRegistry('plain');
  const layout = await busyboxLayout();
  await pushLayout(layout.dir, layout.tag, registry, 'base/busybox:1');
  base = `${registry.host}/base/busybox:1`;
});
after(async () => {
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** A build context directory with these files (Dockerfile included). */
function context(name: string, files: Record<string, string>): string {
  return writeContext(join(work, name), files);
}

function kilnBuild(args: string[]): Promise<KilnRun> {
  return runKiln(['build', '--log-format=text', ...args], { env: { DOCKER_CONFIG: join(work, 'no-docker-config') } });
}

async function pulled(repoTag: string): Promise<string> {
  const dir = join(work, `pulled-${repoTag.replace(/[/:]/g, '-')}`);
  await pullToLayout(registry, repoTag, dir, 'image');
  return dir;
}

test('a single-stage build with RUN, COPY and metadata is pushed, inspected and run', async () => {
  const dir = context('single', {
    Dockerfile: [
      `FROM ${base}`,
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
  const result = await kilnBuild(['--context', dir, '--destination', `${registry.host}/app/single:1`]);
  assert.equal(result.code, 0, result.stderr);
  const digest = result.stdout.trim();
  const inspected = await skopeoInspect(registry, 'app/single:1');
  assert.equal(inspected.Digest, digest);
  const config = await skopeoInspect(registry, 'app/single:1', { config: true });
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
      `FROM ${base} AS builder`,
      'RUN mkdir /out && echo built > /out/artifact && echo junk > /junk',
      `FROM ${base}`,
      'COPY --from=builder /out/artifact /artifact',
      'CMD ["cat", "/artifact"]',
      '',
    ].join('\n'),
  });
  const result = await kilnBuild(['--context', dir, '--destination', `${registry.host}/app/multi:1`]);
  assert.equal(result.code, 0, result.stderr);
  const layout = await pulled('app/multi:1');
  assert.equal((await runImage(layout, 'image')).stdout, 'built\n');
  assert.equal((await runImage(layout, 'image', ['sh', '-c', 'test -e /junk && echo present || echo absent'])).stdout, 'absent\n');
});

test('a failing RUN names the line and exit code, and nothing is pushed', async () => {
  const dir = context('failing', { Dockerfile: `FROM ${base}\nRUN echo ok\nRUN exit 3\n` });
  const result = await kilnBuild(['--context', dir, '--destination', `${registry.host}/app/failing:1`]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /kiln: error: Dockerfile:3: RUN exited with code 3/);
  await assert.rejects(skopeoInspect(registry, 'app/failing:1'));
});

test('an unknown instruction is one sentence with file and line', async () => {
  const dir = context('unknown', { Dockerfile: `FROM ${base}\nFROBNICATE now\n` });
  const result = await kilnBuild(['--context', dir, '--destination', `${registry.host}/app/unknown:1`]);
  assert.notEqual(result.code, 0);
  const errors = result.stderr.split('\n').filter((l) => l.startsWith('kiln: error:'));
  assert.equal(errors.length, 1, result.stderr);
  assert.match(errors[0]!, /Dockerfile:2/);
  assert.match(errors[0]!, /FROBNICATE/i);
});

test('a FROM image that does not exist is one sentence and nothing is pushed', async () => {
  const dir = context('missing-base', { Dockerfile: `FROM ${registry.host}/no/such:image\nRUN true\n` });
  const result = await kilnBuild(['--context', dir, '--destination', `${registry.host}/app/missing:1`]);
  assert.equal(result.code, 1);
  const errors = result.stderr.split('\n').filter((l) => l.startsWith('kiln: error:'));
  assert.equal(errors.length, 1, result.stderr);
  assert.match(errors[0]!, /no\/such/);
  await assert.rejects(skopeoInspect(registry, 'app/missing:1'));
});
