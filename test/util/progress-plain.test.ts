import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBuildOutput } from '../../src/util/progress-output.js';
import { fakeClock } from './progress-fakes.js';

/** A pipe into a CI log: not a terminal. */
function ciLog() {
  let text = '';
  const stream = {
    isTTY: false,
    write(chunk: string | Uint8Array) {
      text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
      return true;
    },
    once() {},
  };
  return { stream: stream as unknown as NodeJS.WriteStream, lines: () => text.split('\n').filter((line) => line !== ''), text: () => text };
}

function ciBuild(format: 'text' | 'color' = 'text') {
  const clock = fakeClock();
  const log = ciLog();
  const output = createBuildOutput({ level: 'info', format, timestamp: false, stream: log.stream, clock });
  return { clock, log, output };
}

test('in a CI log, a task is one line at its start and one at its end, whatever its updates', () => {
  const { clock, log, output } = ciBuild();
  const task = output.progress.begin('snapshot', { text: 'snapshotting stage 0 step 4' });
  for (let i = 0; i < 50; i++) task.update({ text: `snapshotting stage 0 step 4 (${i})` });
  clock.advance(1500);
  task.end();
  assert.deepEqual(log.lines(), ['INFO  snapshotting stage 0 step 4', 'INFO  snapshotting stage 0 step 4 (49): done in 1.50 s']);
});

test('in a CI log, a task that ends with a result logs that result', () => {
  const { log, output } = ciBuild();
  output.progress.begin('push', { text: 'pushing r/app:1: 0/2 blobs' }).end('pushed r/app:1@sha256:12 in 0.20 s');
  assert.deepEqual(log.lines(), ['INFO  pushing r/app:1: 0/2 blobs', 'INFO  pushed r/app:1@sha256:12 in 0.20 s']);
});

test('in a CI log, a long task says how far it is every ten seconds', () => {
  const { clock, log, output } = ciBuild();
  const task = output.progress.begin('pull', { text: 'stage 0: pulling 3 layers, 120.0 MiB' });
  task.update({ text: 'stage 0: pulling layer 1/3 (sha256:ab12cd34ef56) 10.0/120.0 MiB' });
  clock.advance(9000);
  assert.equal(log.lines().length, 1);
  clock.advance(1500);
  task.update({ text: 'stage 0: pulling layer 2/3 (sha256:cd34ef56ab12) 45.2/120.0 MiB' });
  clock.advance(10_000);
  task.fail();
  clock.advance(30_000);
  assert.deepEqual(log.lines(), [
    'INFO  stage 0: pulling 3 layers, 120.0 MiB',
    'INFO  stage 0: pulling layer 1/3 (sha256:ab12cd34ef56) 10.0/120.0 MiB (10 s)',
    'INFO  stage 0: pulling layer 2/3 (sha256:cd34ef56ab12) 45.2/120.0 MiB (20 s)',
  ]);
  assert.equal(clock.timers(), 0, 'no timer once nothing runs');
});

test('a CI log never gets terminal control characters, even with --log-format color', () => {
  const { clock, log, output } = ciBuild('color');
  const task = output.progress.begin('pull', { text: 'pulling' });
  output.commandOutput.write('step output\n');
  clock.advance(12_000);
  task.end();
  output.close();
  assert.doesNotMatch(log.text(), /[\r\x1b]/);
  assert.match(log.text(), /^INFO  pulling\nstep output\n/);
});
