import type { Logger } from './log.js';
import { Ticker, elapsed, type ProgressClock, type ProgressSink, type TaskState } from './progress.js';

/** A task still running after this long gets a line saying how far it is, and again after as long. */
const STILL_RUNNING_MS = 10_000;
const CHECK_MS = 1000;

interface Running {
  state: TaskState;
  started: number;
  lastLine: number;
}

/**
 * Progress as plain log lines, for CI logs where a redrawn line would be a mess of control
 * characters: one line when a task starts, one when it ends, and one every ten seconds in
 * between so a long pull or push never looks like a hang.
 */
export function plainProgress(logger: Logger, clock: ProgressClock, options: { stillRunningMs?: number } = {}): ProgressSink {
  const every = options.stillRunningMs ?? STILL_RUNNING_MS;
  const tasks = new Set<Running>();
  const check = (): void => {
    const now = clock.now();
    for (const task of tasks) {
      if (now - task.lastLine < every) continue;
      task.lastLine = now;
      logger.info(`${task.state.text} (${Math.floor((now - task.started) / 1000)} s)`);
    }
  };
  const ticker = new Ticker(clock, CHECK_MS, check, () => tasks.size > 0);
  return {
    begin(_phase, state) {
      const now = clock.now();
      const task: Running = { state, started: now, lastLine: now };
      tasks.add(task);
      logger.info(state.text);
      ticker.start();
      return {
        update(next) {
          task.state = next;
        },
        end(message) {
          tasks.delete(task);
          logger.info(message ?? `${task.state.text}: done in ${elapsed(clock, task.started)} s`);
        },
        fail() {
          tasks.delete(task);
        },
      };
    },
    close() {
      ticker.cancel();
      tasks.clear();
    },
  };
}
