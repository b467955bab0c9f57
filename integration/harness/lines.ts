// Splits a child's output stream into lines as they arrive.
import type { Readable } from 'node:stream';

export function onLines(stream: Readable, handle: (line: string) => void): void {
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    pending += chunk;
    let newline: number;
    while ((newline = pending.indexOf('\n')) >= 0) {
      handle(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
    }
  });
  stream.on('end', () => { if (pending) handle(pending); });
}
