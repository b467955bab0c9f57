import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBuildOutput } from '../../src/util/progress-output.js';
import { fakeClock } from './progress-fakes.js';

interface ProgressRecord {
  level: number;
  msg: string;
  progress: { phase: string; state: string; done?: number; total?: number; unit?: string; bytes?: number; seconds?: number };
}

/** --log-format json, on a terminal or not: records only, one per line. */
function jsonBuild(isTTY: boolean) {
  const clock = fakeClock();
  let text = '';
  const stream = {
    isTTY,
    columns: 80,
    write(chunk: string | Uint8Array) {
      text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
      return true;
    },
    once() {},
  } as unknown as NodeJS.WriteStream;
  const output = createBuildOutput({ level: 'info', format: 'json', timestamp: false, stream, clock });
  const records = (): ProgressRecord[] => text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as ProgressRecord);
  return { clock, output, records, text: () => text };
}

test('with --log-format json, progress is records with a progress object', () => {
  const { clock, output, records } = jsonBuild(true);
  assert.equal(output.json, true);
  const pull = output.progress.begin('pull', { text: 'stage 0: pulling 2 layers, 3.0 MiB', done: 0, total: 3145728, unit: 'bytes' });
  clock.advance(1200);
  pull.update({ text: 'stage 0: pulling layer 1/2', done: 1048576, total: 3145728, unit: 'bytes' });
  clock.advance(300);
  pull.end();
  assert.deepEqual(records().map((r) => [r.level, r.progress]), [
    [30, { phase: 'pull', state: 'start', done: 0, total: 3145728, unit: 'bytes' }],
    [30, { phase: 'pull', state: 'update', done: 1048576, total: 3145728, unit: 'bytes' }],
    [30, { phase: 'pull', state: 'end', done: 1048576, total: 3145728, unit: 'bytes', seconds: 1.5 }],
  ]);
  assert.equal(records()[1]!.msg, 'stage 0: pulling layer 1/2');
});

test('with --log-format json, updates are written at most once a second per phase, the latest winning', () => {
  const { clock, output, records } = jsonBuild(false);
  const push = output.progress.begin('push', { text: 'pushing', done: 0, total: 100, unit: 'blobs' });
  const snapshot = output.progress.begin('snapshot', { text: 'snapshotting stage 0 step 2' });
  for (let i = 1; i <= 100; i++) {
    push.update({ text: 'pushing', done: i, total: 100, unit: 'blobs', bytes: i * 10 });
    clock.advance(25);
  }
  // 2.5 s of updates: one record per full second since the last one, plus the start.
  const pushes = records().filter((r) => r.progress.phase === 'push');
  const updates = pushes.filter((r) => r.progress.state === 'update');
  assert.ok(updates.length >= 2 && updates.length <= 3, `${updates.length} updates`);
  clock.advance(1000);
  const last = records().filter((r) => r.progress.phase === 'push').at(-1)!;
  assert.deepEqual(last.progress, { phase: 'push', state: 'update', done: 100, total: 100, unit: 'blobs', bytes: 1000 }, 'the latest update is written once the second is over');
  push.end('pushed r/app:1@sha256:12 in 3.50 s');
  snapshot.fail();
  const ends = records().slice(-2);
  assert.deepEqual(ends.map((r) => [r.progress.phase, r.progress.state, r.msg]), [
    ['push', 'end', 'pushed r/app:1@sha256:12 in 3.50 s'],
    ['snapshot', 'failed', 'snapshotting stage 0 step 2'],
  ]);
  assert.equal(clock.timers(), 1, 'the ticker stops at its next check');
  clock.advance(1000);
  assert.equal(clock.timers(), 0);
});

test('with --log-format json, nothing but JSON reaches stderr, also on a terminal', () => {
  const { clock, output, text } = jsonBuild(true);
  const task = output.progress.begin('extract', { text: 'stage 0: extracting layer 1/1', done: 0, total: 1, unit: 'layers' });
  clock.advance(5000);
  task.end('stage 0: extracted 1 layer in 5.00 s');
  output.close();
  for (const line of text().split('\n').filter(Boolean)) assert.doesNotThrow(() => JSON.parse(line), line);
  assert.doesNotMatch(text(), /\x1b/);
});
