import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KILN as kiln, runKiln, useBusyboxRegistry, type KilnRun } from './harness/index.js';

const fx = useBusyboxRegistry('kiln-progress-test-');
const { work } = fx;

const DOCKERFILE = ['FROM BASE', 'COPY hello.txt /hello.txt', 'RUN echo built > /built.txt && cat /hello.txt', 'ENV GREETING=hi', ''].join('\n');

function context(name: string): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'Dockerfile'), DOCKERFILE.replace('BASE', fx.base));
  writeFileSync(join(dir, 'hello.txt'), 'hello from the context\n');
  return dir;
}

/** `kiln build` with stdout and stderr piped, as in a CI job. */
function kilnBuild(args: string[]): Promise<KilnRun> {
  return runKiln(['build', ...args], { env: { DOCKER_CONFIG: join(work, 'no-docker-config') } });
}

interface SummaryRecord {
  digest: string;
  seconds: number;
  steps: { stage: number; where: string; text: string; seconds: number; layerBytes: number | null; cached: boolean | null }[];
  pulledBytes: number;
  pushedBytes: number;
  blobs: { uploaded: number; mounted: number; existing: number };
  cache: { hits: number; misses: number } | null;
  phases: Record<string, number>;
}

test('with --log-format json, the build ends with one summary record and progress comes as records', async () => {
  const dir = context('json');
  const result = await kilnBuild(['--log-format=json', '--context', dir, '--destination', `${fx.registry.host}/app/progress-json:1`]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^sha256:[0-9a-f]{64}\n$/, 'stdout is the digest line and nothing else');
  const digest = result.stdout.trim();
  // RUN output shares stderr with the records: it is the only thing there that is not JSON.
  const lines = result.stderr.split('\n').filter(Boolean);
  assert.deepEqual(lines.filter((line) => !line.startsWith('{')), ['hello from the context']);
  const records = lines.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { msg: string; summary?: SummaryRecord; progress?: { phase: string; state: string; done?: number; total?: number } });

  const summaries = records.filter((r) => r.summary);
  assert.equal(summaries.length, 1, 'one summary record');
  const summary = summaries[0]!.summary!;
  assert.equal(summary.digest, digest);
  assert.ok(summary.pushedBytes > 0, 'bytes pushed');
  assert.ok(summary.pulledBytes > 0, 'the base image was pulled');
  assert.deepEqual(summary.blobs, { uploaded: 3, mounted: 1, existing: 0 }, 'two new layers and the config uploaded, the base layer mounted');
  assert.equal(summary.cache, null, 'no --cache');
  assert.deepEqual(summary.steps.map((s) => [s.stage, s.where, s.text, s.cached]), [
    [0, 'Dockerfile:2', 'COPY hello.txt /hello.txt', null],
    [0, 'Dockerfile:3', 'RUN echo built > /built.txt && cat /hello.txt', null],
    [0, 'Dockerfile:4', 'ENV GREETING=hi', null],
  ]);
  assert.ok(summary.steps[0]!.layerBytes! > 0 && summary.steps[1]!.layerBytes! > 0);
  assert.equal(summary.steps[2]!.layerBytes, null);
  assert.deepEqual(Object.keys(summary.phases).sort(), ['plan', 'pull', 'push', 'run', 'snapshot']);
  assert.ok(records.indexOf(summaries[0]!) === records.length - 1, 'the summary is the last record');

  const phases = new Set(records.filter((r) => r.progress).map((r) => `${r.progress!.phase} ${r.progress!.state}`));
  for (const expected of ['pull start', 'pull end', 'extract start', 'extract end', 'snapshot start', 'snapshot end', 'push start', 'push end']) {
    assert.ok(phases.has(expected), `a "${expected}" progress record`);
  }
  const pullEnd = records.find((r) => r.progress?.phase === 'pull' && r.progress.state === 'end')!;
  assert.equal(pullEnd.progress!.done, pullEnd.progress!.total, 'the whole base image was counted');
  assert.ok(!result.stderr.includes('\x1b'), 'no terminal control characters in JSON logs');
});

test('in text, the build ends with a summary: a line per step, the totals, the digest', async () => {
  const dir = context('text');
  const result = await kilnBuild(['--log-format=text', '--context', dir, '--destination', `${fx.registry.host}/app/progress-text:1`]);
  assert.equal(result.code, 0, result.stderr);
  const digest = result.stdout.trim();
  assert.match(result.stdout, /^sha256:[0-9a-f]{64}\n$/);
  const lines = result.stderr.split('\n');
  const start = lines.findIndex((line) => /^INFO {2}build summary: 3 steps in \d+\.\d\d s$/.test(line));
  assert.ok(start >= 0, result.stderr);
  const summary = lines.slice(start, start + 6);
  assert.match(summary[1]!, /^INFO {4}stage 0 {2}Dockerfile:2 {2}\d+\.\d\d s {2}\d+\.\d (KiB|MiB) +COPY hello\.txt \/hello\.txt$/);
  assert.match(summary[2]!, /^INFO {4}stage 0 {2}Dockerfile:3 {2}\d+\.\d\d s {2}\d+\.\d (KiB|MiB) +RUN echo built > \/built\.txt && cat \/hello\.txt$/);
  assert.match(summary[3]!, /^INFO {4}stage 0 {2}Dockerfile:4 {2}\d+\.\d\d s {2}no layer {2}ENV GREETING=hi$/);
  assert.match(summary[4]!, /^INFO {2}pulled \d+\.\d (KiB|MiB), pushed \d+\.\d (KiB|MiB) \(1 blob mounted\), cache off, phases: plan\+cache lookup \d+\.\d\d s, pull\+extract \d+\.\d\d s, run \d+\.\d\d s, snapshot \d+\.\d\d s, push \d+\.\d\d s$/);
  assert.equal(summary[5], `INFO  built ${digest}`);

  // A CI log: progress as plain lines (a task's start and end), RUN output intact, no control characters.
  assert.ok(!/[\r\x1b]/.test(result.stderr), 'no terminal control characters in a CI log');
  assert.ok(lines.includes('INFO  snapshotting stage 0 step 2'), result.stderr);
  assert.ok(lines.some((line) => /^INFO {2}snapshotting stage 0 step 2: done in \d+\.\d\d s$/.test(line)), result.stderr);
  assert.ok(lines.some((line) => /^INFO {2}stage 0: extracted 1 layer \(\d+\.\d (KiB|MiB) pulled\) in \d+\.\d\d s$/.test(line)), result.stderr);
  assert.ok(lines.some((line) => line.startsWith(`INFO  pushing ${fx.registry.host}/app/progress-text:1: 0/`)), result.stderr);
  assert.ok(lines.includes('hello from the context'), 'the RUN output is there, on a line of its own');
});

test('on a terminal, progress is one status line that log lines scroll past and that is gone at the end', async () => {
  const dir = context('tty');
  const command = [process.execPath, kiln, 'build', '--context', dir, '--destination', `${fx.registry.host}/app/progress-tty:1`].map((word) => `'${word}'`).join(' ');
  // `script` gives kiln a terminal as its stdout and stderr, as an interactive shell would.
  const result = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', env: { ...process.env, DOCKER_CONFIG: join(work, 'no-docker-config') } });
  assert.equal(result.status, 0, result.stdout + result.stderr);
  const raw = result.stdout;
  // The build's first status is drawn at once (later ones at most ten times a second), then erased.
  assert.match(raw, /\nstage 0: pulling 1 layer, \d+\.\d (KiB|MiB)\r\x1b\[2K/, 'the pull was shown on the status line');
  // What the screen shows: on each line, only what follows its last erase.
  const screen = raw.split('\n').map((line) => line.split('\x1b[2K').at(-1)!.replace(/\r/g, ''));
  const logLines = screen.filter((line) => line.includes('INFO'));
  assert.ok(logLines.length > 10);
  for (const line of logLines) assert.match(line, /^\x1b\[32mINFO \x1b\[0m /, `a log line starts a line of its own: ${JSON.stringify(line)}`);
  assert.ok(screen.includes('hello from the context'), 'the RUN output is a line of its own');
  assert.ok(screen.some((line) => /INFO .* {2}stage 0 {2}Dockerfile:3 {2}/.test(line)), 'the summary is there');
  assert.match(screen.at(-2)!, /^sha256:[0-9a-f]{64}$/, 'the digest is the last line, no status line after it');
  assert.equal(screen.at(-1), '');
});
