import type { Logger } from './log.js';
import { Ticker, type ProgressClock, type ProgressSink, type TaskState } from './progress.js';
import type { StatusLine } from './progress-line.js';

/** How often the status line may change: often enough to look alive, rarely enough to cost nothing. */
const REDRAW_MS = 100;
/** A task shows how long it has been running once it has run this long. */
const SHOW_ELAPSED_MS = 2000;

interface Running {
  state: TaskState;
  started: number;
}

/**
 * Progress on a terminal: every running task on the one status line (`pulling layer 3/7 …
 * · extracting layer 2/7`), gone when nothing runs. Results are log lines, which scroll
 * above it.
 */
export function terminalProgress(line: StatusLine, logger: Logger, clock: ProgressClock): ProgressSink {
  const tasks = new Map<number, Running>();
  let nextId = 0;
  const render = (): string => {
    const now = clock.now();
    let subject: string | undefined;
    return [...tasks.values()]
      .map(({ state, started }) => {
        const text = now - started >= SHOW_ELAPSED_MS ? `${state.text} (${Math.floor((now - started) / 1000)} s)` : state.text;
        // `stage 0: pulling … · extracting …`: the line is narrow, a subject is said once.
        const prefix = /^[^:]+: /.exec(text)?.[0];
        const shown = prefix !== undefined && prefix === subject ? text.slice(prefix.length) : text;
        subject = prefix;
        return shown;
      })
      .join(' · ');
  };
  const ticker = new Ticker(clock, REDRAW_MS, () => line.set(render()), () => tasks.size > 0 || line.pending);
  return {
    begin(_phase, state) {
      const id = nextId++;
      const running: Running = { state, started: clock.now() };
      tasks.set(id, running);
      line.set(render());
      ticker.start();
      const stop = (): void => {
        tasks.delete(id);
        line.set(render());
      };
      return {
        update(next) {
          running.state = next;
          line.set(render());
        },
        end(message) {
          stop();
          if (message) logger.info(message);
        },
        fail: stop,
      };
    },
    close() {
      ticker.cancel();
      tasks.clear();
      line.set('');
    },
  };
}
