import type { ProgressClock } from '../../src/util/progress.js';

/** A clock that moves only when told to, firing its timers on the way. */
export function fakeClock(): ProgressClock & { advance(ms: number): void; timers(): number } {
  let now = 1000;
  const timers = new Set<{ ms: number; fn: () => void; next: number }>();
  return {
    now: () => now,
    every(ms, fn) {
      const timer = { ms, fn, next: now + ms };
      timers.add(timer);
      return () => timers.delete(timer);
    },
    advance(ms) {
      const end = now + ms;
      for (;;) {
        const due = [...timers].filter((t) => t.next <= end).sort((a, b) => a.next - b.next)[0];
        if (!due) break;
        now = due.next;
        due.next += due.ms;
        due.fn();
      }
      now = end;
    },
    timers: () => timers.size,
  };
}

/** A terminal: what was written, and what the screen shows after interpreting CR, erase-line and LF. */
export function fakeTerminal(columns = 80) {
  const writes: string[] = [];
  const stream = {
    isTTY: true,
    columns,
    write(chunk: string | Uint8Array) {
      writes.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
      return true;
    },
    once() {},
  };
  const screen = (): string[] => {
    const lines: string[] = [];
    let line = '';
    let col = 0;
    const text = writes.join('');
    for (let i = 0; i < text.length; i++) {
      if (text.startsWith('\x1b[2K', i)) {
        line = '';
        i += 3;
      } else if (text[i] === '\r') col = 0;
      else if (text[i] === '\n') {
        lines.push(line);
        line = '';
        col = 0;
      } else {
        line = line.slice(0, col) + text[i] + line.slice(col + 1);
        col++;
      }
    }
    return [...lines, line];
  };
  return { stream: stream as unknown as NodeJS.WriteStream, writes, screen };
}
