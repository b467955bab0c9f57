// A build stopped by a signal — Ctrl-C, a cancelled CI job, a pod being stopped — ends with
// one line and the exit status a shell reports, pushes nothing, and leaves nothing behind:
// no work directory and no process of the RUN it interrupted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { busyboxLayout, pushLayout, runKiln, startRegistry, writeContext, type RunningRegistry } from './harness/index.js';

const work = mkdtempSync(join(tmpdir(), 'kiln-interrupt-test-'));
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

/** Polls `check` until it holds or `ms` pass; returns whether it held. */
async function eventually(check: () => boolean, ms = 20_000): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += 100) {
    if (check()) return true;
    await sleep(100);
  }
  return check();
}

for (const [signal, status] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  test(`${signal} during a RUN: exit ${status}, one line, nothing pushed, no work directory or process left`, async () => {
    const marker = `kiln-interrupt-${signal}-${process.pid}`;
    const dir = writeContext(join(work, `context-${signal}`), { Dockerfile: `FROM ${base}\nRUN echo started-${marker} && sleep 600\nRUN echo never\n` });
    const rootDir = join(work, `root-${signal}`);
    const repo = `app/interrupt-${signal.toLowerCase()}`;
    const run = await runKiln(['build', '--context', dir, '--destination', `${registry.host}/${repo}:1`, '--root-dir', rootDir], {
      interrupt: { when: new RegExp(`started-${marker}`), signal },
    });
    assert.equal(run.code, status, run.stderr);
    const errors = run.stderr.split('\n').filter((line) => line.startsWith('kiln: error:'));
    assert.deepEqual(errors, [`kiln: error: stopped by ${signal}; the build did not finish.`]);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(run.stdout, '', 'no digest is printed');

    const manifest = await fetch(`http://${registry.host}/v2/${repo}/manifests/1`, { method: 'HEAD' });
    assert.equal(manifest.status, 404, 'nothing is pushed');
    assert.ok(await eventually(() => readdirSync(rootDir).length === 0), `kiln's work directory is removed: ${readdirSync(rootDir).join(', ')}`);
    const running = () => spawnSync('pgrep', ['-f', marker], { encoding: 'utf8' }).stdout.trim();
    assert.ok(await eventually(() => running() === ''), `the RUN's processes are gone: ${running()}`);
  });
}
