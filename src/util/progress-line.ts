import type { ProgressClock } from './progress.js';

/** The part of a terminal stream (process.stderr) the status line needs. */
export interface TerminalStream {
  write(chunk: string | Uint8Array): boolean;
  readonly columns?: number;
}

/** Back to the start of the line, then erase it. */
const CLEAR = '\r\x1b[2K';

/**
 * One status line at the bottom of a terminal that kiln's log lines and a RUN command's
 * output share. Everything written through `write` first erases the status, so it never ends
 * up in the middle of a log line; the status comes back only once the cursor is at the start
 * of a line again, so a command that prints a partial line (a progress bar of its own) is
 * never cut into. Redrawn at most once per `minInterval` ms: fast updates cost nothing.
 */
export class StatusLine {
  private shown = '';
  private wanted = '';
  private atLineStart = true;
  private lastDraw = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly stream: TerminalStream,
    private readonly clock: ProgressClock,
    private readonly minInterval = 100,
  ) {}

  /** Text of anyone else: a log line, a command's output. */
  write(chunk: string | Uint8Array): boolean {
    if (chunk.length === 0) return true;
    this.hide();
    const ok = this.stream.write(chunk);
    this.atLineStart = typeof chunk === 'string' ? chunk.endsWith('\n') : chunk[chunk.length - 1] === 0x0a;
    this.flush();
    return ok;
  }

  /** The status to show ('' for none): drawn now, or by a later `flush` when drawn too recently. */
  set(text: string): void {
    this.wanted = text;
    this.flush();
  }

  /** Whether the screen still lags behind the last `set`. */
  get pending(): boolean {
    return this.wanted !== this.shown;
  }

  /** Draws what was last `set`, if the throttle and the cursor allow it. */
  flush(): void {
    if (this.wanted === this.shown) return;
    if (this.wanted === '') return this.hide();
    if (!this.atLineStart) return;
    const now = this.clock.now();
    if (now - this.lastDraw < this.minInterval) return;
    this.lastDraw = now;
    this.stream.write(`${this.shown ? CLEAR : ''}${this.fit(this.wanted)}`);
    this.shown = this.wanted;
  }

  private hide(): void {
    if (!this.shown) return;
    this.stream.write(CLEAR);
    this.shown = '';
  }

  // A line that wraps could no longer be erased with one CLEAR.
  private fit(text: string): string {
    // A terminal that does not say its size (0 columns) gets the usual 80.
    const width = Math.max(10, (this.stream.columns || 80) - 1);
    const chars = [...text];
    return chars.length <= width ? text : `${chars.slice(0, width - 1).join('')}…`;
  }
}
