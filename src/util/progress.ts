import type { Logger } from './log.js';

/**
 * Where kiln reports long work (pulls, extractions, snapshots, pushes) while it runs. Which
 * sink a build gets depends on where its output goes: a live status line on a terminal,
 * occasional plain lines in a CI log, JSON records with --log-format json.
 */
export interface ProgressSink {
  /** Starts a task of `phase` (pull, extract, snapshot, push) in the state given. */
  begin(phase: string, state: TaskState): ProgressTask;
  /** Removes every trace of live output (the status line) and stops the sink's timer. */
  close(): void;
}

export interface ProgressTask {
  /** The task's new state; sinks decide how often it is shown. */
  update(state: TaskState): void;
  /**
   * The task is done. `message` is its result as a log line every sink keeps (also in a CI
   * log and on a terminal); without one, only the CI and JSON sinks note the end.
   */
  end(message?: string): void;
  /** The task stopped with an error, which kiln reports on its own. */
  fail(): void;
}

export interface TaskState {
  /** What a person reads: `pulling layer 3/7 (sha256:ab12…) 45.2/120.0 MiB`. */
  text: string;
  /** For JSON records: how far the task is, in `unit`s. */
  done?: number;
  total?: number;
  unit?: 'bytes' | 'layers' | 'blobs';
  /** For JSON records of tasks counted in other units: bytes moved so far. */
  bytes?: number;
}

/** Time and a repeating timer, so sinks can be tested without waiting. */
export interface ProgressClock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Calls `fn` every `ms` until the returned function is called. */
  every(ms: number, fn: () => void): () => void;
}

export const systemClock: ProgressClock = {
  now: () => performance.now(),
  every(ms, fn) {
    const timer = setInterval(fn, ms);
    // A progress timer must never keep kiln running after its work is done.
    timer.unref();
    return () => clearInterval(timer);
  },
};

/**
 * The sink for callers that asked for no progress (library use, tests): results are still
 * logged, so their logs read the same as a build's.
 */
export function logOnlyProgress(logger: Logger): ProgressSink {
  return {
    begin: () => ({
      update() {},
      end(message) {
        if (message) logger.info(message);
      },
      fail() {},
    }),
    close() {},
  };
}

/**
 * Runs `fn` every `ms` while `active()` says there is something to do: sinks start it when a
 * task begins, and it stops by itself once nothing is left.
 */
export class Ticker {
  private stop: (() => void) | undefined;

  constructor(
    private readonly clock: ProgressClock,
    private readonly ms: number,
    private readonly fn: () => void,
    private readonly active: () => boolean,
  ) {}

  start(): void {
    if (this.stop) return;
    this.stop = this.clock.every(this.ms, () => {
      this.fn();
      if (!this.active()) this.cancel();
    });
  }

  cancel(): void {
    this.stop?.();
    this.stop = undefined;
  }
}

/** Seconds since `since` as a log line shows them. */
export function elapsed(clock: ProgressClock, since: number): string {
  return ((clock.now() - since) / 1000).toFixed(2);
}
