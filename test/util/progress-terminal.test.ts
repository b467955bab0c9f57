import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBuildOutput } from '../../src/util/progress-output.js';
import { StatusLine } from '../../src/util/progress-line.js';
import { fakeClock, fakeTerminal } from './progress-fakes.js';

function terminalBuild(columns = 80) {
  const clock = fakeClock();
  const terminal = fakeTerminal(columns);
  const output = createBuildOutput({ level: 'info', format: 'text', timestamp: false, stream: terminal.stream, clock });
  return { clock, terminal, output };
}

test('on a terminal, running tasks share one status line below the log lines', () => {
  const { clock, terminal, output } = terminalBuild();
  const pull = output.progress.begin('pull', { text: 'stage 0: pulling layer 1/3 0.0/2.0 MiB' });
  output.progress.begin('extract', { text: 'stage 0: extracting layer 1/3' });
  clock.advance(100);
  assert.deepEqual(terminal.screen(), ['stage 0: pulling layer 1/3 0.0/2.0 MiB · extracting layer 1/3']);
  output.logger.info('base image busybox is sha256:1234');
  clock.advance(100);
  assert.deepEqual(terminal.screen(), ['INFO  base image busybox is sha256:1234', 'stage 0: pulling layer 1/3 0.0/2.0 MiB · extracting layer 1/3']);
  pull.end('stage 0: pulled');
  clock.advance(100);
  assert.deepEqual(terminal.screen(), ['INFO  base image busybox is sha256:1234', 'INFO  stage 0: pulled', 'stage 0: extracting layer 1/3']);
});

test('the status line comes back after a log line and never ends up inside one', () => {
  const { clock, terminal, output } = terminalBuild();
  const task = output.progress.begin('push', { text: 'pushing r/app:1: 0/5 blobs, 0.0 KiB uploaded' });
  for (let i = 0; i < 5; i++) {
    clock.advance(150);
    task.update({ text: `pushing r/app:1: ${i + 1}/5 blobs, ${i + 1}.0 MiB uploaded` });
    output.logger.info(`line ${i}`);
  }
  clock.advance(150);
  const screen = terminal.screen();
  assert.deepEqual(screen.slice(0, 5), ['INFO  line 0', 'INFO  line 1', 'INFO  line 2', 'INFO  line 3', 'INFO  line 4']);
  assert.equal(screen[5], 'pushing r/app:1: 5/5 blobs, 5.0 MiB uploaded');
  output.close();
  assert.deepEqual(terminal.screen().at(-1), '', 'the status line is gone at the end');
});

test('the status line is redrawn at most ten times a second however often it changes', () => {
  const { clock, terminal, output } = terminalBuild();
  const task = output.progress.begin('pull', { text: 'pulling 0' });
  const drawsBefore = terminal.writes.length;
  for (let i = 1; i <= 100; i++) {
    task.update({ text: `pulling ${i}` });
    clock.advance(5);
  }
  // 500 ms of updates: the first draw came at begin, then one per 100 ms.
  const draws = terminal.writes.length - drawsBefore;
  assert.ok(draws >= 4 && draws <= 5, `${draws} draws`);
  clock.advance(100);
  assert.equal(terminal.screen().at(-1), 'pulling 100', 'the latest state is shown once the throttle allows');
});

test("a command's partial line is never cut by the status line", () => {
  const { clock, terminal, output } = terminalBuild();
  output.progress.begin('pull', { text: 'pulling for COPY --from' });
  output.commandOutput.write('downloading 10%');
  clock.advance(500);
  assert.deepEqual(terminal.screen(), ['downloading 10%']);
  output.commandOutput.write('... 100%\n');
  clock.advance(200);
  assert.deepEqual(terminal.screen(), ['downloading 10%... 100%', 'pulling for COPY --from']);
});

test('a status longer than the terminal is cut to fit one line', () => {
  const { terminal, output } = terminalBuild(30);
  output.progress.begin('snapshot', { text: 'snapshotting stage 0 (builder) step 12 of a long stage' });
  const shown = terminal.screen().at(-1)!;
  assert.equal([...shown].length, 29);
  assert.ok(shown.endsWith('…'));
});

test('a task running for a while shows its seconds, and the timer stops when nothing runs', () => {
  const { clock, terminal, output } = terminalBuild();
  const task = output.progress.begin('snapshot', { text: 'snapshotting stage 0 step 4' });
  clock.advance(3200);
  assert.equal(terminal.screen().at(-1), 'snapshotting stage 0 step 4 (3 s)');
  task.end();
  clock.advance(200);
  assert.equal(terminal.screen().at(-1), '');
  assert.equal(clock.timers(), 0);
});

test('a log line written while nothing runs is left alone', () => {
  const clock = fakeClock();
  const terminal = fakeTerminal();
  const line = new StatusLine(terminal.stream, clock);
  line.write('INFO  plain\n');
  assert.deepEqual(terminal.writes, ['INFO  plain\n']);
});

test('with a level above info the terminal gets no status line', () => {
  const clock = fakeClock();
  const terminal = fakeTerminal();
  const output = createBuildOutput({ level: 'warn', format: 'color', timestamp: false, stream: terminal.stream, clock });
  output.progress.begin('pull', { text: 'pulling' }).end('pulled');
  assert.deepEqual(terminal.writes, []);
});
