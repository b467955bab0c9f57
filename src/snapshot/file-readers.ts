import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { KilnError, describeError } from '../util/errors.js';

/**
 * Threads that read small files whole, in batches. A layer of 100,000 small files costs an
 * open, a read and a close per file — about 10 µs of syscalls each on a small VM — which
 * the thread writing the tar stream would otherwise do one after the other.
 */
export class FileReaders {
  private readonly workers: { worker: Worker; pending: number }[];
  private readonly waiting = new Map<number, { resolve: (batch: ReadBatch) => void; reject: (err: Error) => void; worker: number }>();
  private requests = 0;

  constructor(readonly threads: number) {
    this.workers = Array.from({ length: threads }, (_, n) => {
      const worker = new Worker(WORKER_SOURCE, { eval: true, name: 'kiln-read' });
      worker.on('message', (reply: WorkerReply) => this.settle(reply));
      worker.on('error', (err) => this.failAll(n, err));
      // After the listeners: adding a message listener refs the worker's port again.
      worker.unref();
      return { worker, pending: 0 };
    });
  }

  /**
   * Reads each file (opened without following a symlink) up to its expected size: a file
   * that grew since is cut there, one that shrank gives what it has. `fsPaths` and `sizes`
   * go together; the sizes must add up to what a batch may hold in memory.
   */
  read(fsPaths: readonly string[], sizes: readonly number[]): Promise<ReadBatch> {
    const id = ++this.requests;
    let chosen = 0;
    for (let n = 1; n < this.workers.length; n++) if (this.workers[n]!.pending < this.workers[chosen]!.pending) chosen = n;
    const slot = this.workers[chosen]!;
    if (slot.pending++ === 0) slot.worker.ref();
    return new Promise<ReadBatch>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, worker: chosen });
      // One string instead of hundreds: cloning it costs a fraction. No path holds a NUL.
      slot.worker.postMessage({ id, paths: fsPaths.join('\0'), sizes: Float64Array.from(sizes) });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map(({ worker }) => worker.terminate()));
  }

  private settle(reply: WorkerReply): void {
    const waiter = this.waiting.get(reply.id);
    if (waiter === undefined) return;
    this.waiting.delete(reply.id);
    this.done(waiter.worker);
    waiter.resolve(new ReadBatch(Buffer.from(reply.data.buffer, reply.data.byteOffset, reply.data.byteLength), reply.offsets, reply.lengths, reply.failures));
  }

  private failAll(worker: number, err: Error): void {
    for (const [id, waiter] of this.waiting) {
      if (waiter.worker !== worker) continue;
      this.waiting.delete(id);
      this.done(worker);
      waiter.reject(new KilnError('INTERNAL', `a file reading thread failed: ${describeError(err)}`, { cause: err }));
    }
  }

  private done(worker: number): void {
    const slot = this.workers[worker]!;
    if (--slot.pending === 0) slot.worker.unref();
  }
}

/** What one file of a batch gave. */
export type FileRead =
  | { kind: 'read'; data: Buffer }
  /** Gone since it was found, or no longer a regular file (a directory, a symlink). */
  | { kind: 'gone' }
  | { kind: 'failed'; error: NodeJS.ErrnoException };

/** The files of one `read` call, in the order they were asked for. */
export class ReadBatch {
  constructor(
    private readonly data: Buffer,
    private readonly offsets: Float64Array,
    /** Bytes read, or GONE / FAILED. */
    private readonly lengths: Float64Array,
    private readonly failures: readonly (readonly [number, string, string])[],
  ) {}

  /** File `slot` of the batch; its data is a view into the batch, valid as long as the batch is. */
  file(slot: number): FileRead {
    const length = this.lengths[slot]!;
    if (length === GONE) return { kind: 'gone' };
    if (length === FAILED) {
      const [, code, message] = this.failures.find(([failed]) => failed === slot) ?? [slot, 'EIO', 'unknown error'];
      return { kind: 'failed', error: Object.assign(new Error(message), { code }) };
    }
    const start = this.offsets[slot]!;
    return { kind: 'read', data: this.data.subarray(start, start + length) };
  }
}

const GONE = -1;
const FAILED = -2;

interface WorkerReply {
  id: number;
  data: Uint8Array;
  offsets: Float64Array;
  lengths: Float64Array;
  failures: [number, string, string][];
}

let shared: FileReaders | undefined;

/** One set of reader threads for the process, started on first use; idle, they keep nothing alive. */
export function sharedFileReaders(): FileReaders | undefined {
  const threads = Math.min(4, availableParallelism());
  if (threads < 2) return undefined;
  return (shared ??= new FileReaders(threads));
}

/**
 * The worker's program, plain JavaScript (it runs the same from the sources, the compiled
 * files and the bundle). Errors a reader of a changing tree expects — the file is gone, a
 * directory or a symlink now — are GONE; anything else is reported with its code.
 */
const WORKER_SOURCE = `
'use strict';
const { parentPort } = require('node:worker_threads');
const { closeSync, constants, openSync, readSync } = require('node:fs');
const FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const GONE = ${GONE};
const FAILED = ${FAILED};
const goneOnOpen = new Set(['ENOENT', 'ENOTDIR', 'ELOOP']);

parentPort.on('message', ({ id, paths: joined, sizes }) => {
  const paths = joined.split('\0');
  let total = 0;
  const offsets = new Float64Array(paths.length);
  for (let i = 0; i < paths.length; i++) { offsets[i] = total; total += sizes[i]; }
  const data = new Uint8Array(total);
  const lengths = new Float64Array(paths.length);
  const failures = [];
  for (let i = 0; i < paths.length; i++) {
    let fd;
    try {
      fd = openSync(paths[i], FLAGS);
    } catch (err) {
      if (goneOnOpen.has(err.code)) lengths[i] = GONE;
      else { lengths[i] = FAILED; failures.push([i, String(err.code), String(err.message)]); }
      continue;
    }
    try {
      let got = 0;
      while (got < sizes[i]) {
        const n = readSync(fd, data, offsets[i] + got, sizes[i] - got, got);
        if (n === 0) break;
        got += n;
      }
      lengths[i] = got;
    } catch (err) {
      if (err.code === 'EISDIR') lengths[i] = GONE;
      else { lengths[i] = FAILED; failures.push([i, String(err.code), String(err.message)]); }
    } finally {
      closeSync(fd);
    }
  }
  parentPort.postMessage({ id, data, offsets, lengths, failures }, [data.buffer, offsets.buffer, lengths.buffer]);
});
`;
