// A command's output goes to the caller's streams as it arrives. The caller's streams are
// never ended (they are often kiln's own stdout and stderr), and a slow one pauses the
// source instead of piling output up in memory.
import type { Readable, Writable } from 'node:stream';

/** Copies `source` into `target` chunk by chunk, pausing while `target` is full. */
export function forward(source: Readable, target: Writable): void {
  source.on('data', (chunk: Buffer) => {
    if (!target.write(chunk)) {
      source.pause();
      target.once('drain', () => source.resume());
    }
  });
}

/** Frame types of the chroot init's one output channel (see init.ts). */
export const FRAME = { stdout: 1, stderr: 2, status: 3, error: 4 } as const;
const HEADER = 5;

export type Frame = { type: number; payload: Buffer };

/**
 * Splits the init's channel into frames: one type byte, a 32-bit big-endian length, the
 * payload. Output frames are written to their stream, pausing `source` on backpressure;
 * other frames go to `onControl`.
 */
export function demultiplex(source: Readable, outputs: Record<number, Writable>, onControl: (frame: Frame) => void): void {
  let buffered: Buffer = Buffer.alloc(0);
  let waiting = 0;
  source.on('data', (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    while (buffered.length >= HEADER) {
      const length = buffered.readUInt32BE(1);
      if (buffered.length < HEADER + length) break;
      const frame = { type: buffered[0]!, payload: buffered.subarray(HEADER, HEADER + length) };
      buffered = buffered.subarray(HEADER + length);
      const target = outputs[frame.type];
      if (target === undefined) {
        onControl(frame);
      } else if (!target.write(frame.payload)) {
        waiting++;
        source.pause();
        target.once('drain', () => {
          if (--waiting === 0) source.resume();
        });
      }
    }
  });
}
