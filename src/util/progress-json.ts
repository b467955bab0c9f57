import type { Logger } from './log.js';
import { Ticker, type ProgressClock, type ProgressSink, type TaskState } from './progress.js';

/** At most one update record per phase in this many ms: enough to follow, few enough to store. */
const UPDATE_MS = 1000;
const CHECK_MS = 250;

type RecordState = 'start' | 'update' | 'end' | 'failed';

interface Running {
  phase: string;
  state: TaskState;
  started: number;
  /** An update not yet written because its phase wrote one less than a second ago. */
  dirty: boolean;
}

/**
 * Progress as JSON log records for --log-format json, each with a `progress` object:
 * `{"phase":"pull","state":"update","done":…,"total":…,"unit":"bytes"}`. A task's start and
 * end are always written; updates at most once a second per phase, the latest one winning.
 */
export function jsonProgress(logger: Logger, clock: ProgressClock): ProgressSink {
  const tasks = new Set<Running>();
  const lastRecord = new Map<string, number>();
  const write = (task: Running, state: RecordState, message?: string): void => {
    const { text, done, total, unit, bytes } = task.state;
    const seconds = state === 'end' || state === 'failed' ? Number(((clock.now() - task.started) / 1000).toFixed(2)) : undefined;
    logger.info({ progress: { phase: task.phase, state, done, total, unit, bytes, seconds } }, message ?? text);
    lastRecord.set(task.phase, clock.now());
    task.dirty = false;
  };
  const due = (task: Running): boolean => clock.now() - (lastRecord.get(task.phase) ?? Number.NEGATIVE_INFINITY) >= UPDATE_MS;
  const ticker = new Ticker(clock, CHECK_MS, () => {
    for (const task of tasks) if (task.dirty && due(task)) write(task, 'update');
  }, () => tasks.size > 0);
  return {
    begin(phase, state) {
      const task: Running = { phase, state, started: clock.now(), dirty: false };
      tasks.add(task);
      write(task, 'start');
      ticker.start();
      return {
        update(next) {
          task.state = next;
          task.dirty = true;
          if (due(task)) write(task, 'update');
        },
        end(message) {
          tasks.delete(task);
          write(task, 'end', message);
        },
        fail() {
          tasks.delete(task);
          write(task, 'failed');
        },
      };
    },
    close() {
      ticker.cancel();
      tasks.clear();
    },
  };
}
