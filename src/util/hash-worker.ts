import { Worker } from 'node:worker_threads';
import { KilnError, describeError } from './errors.js';

/**
 * Hashing on a thread of its own. A blob download has its main thread busy reading the
 * socket and handing bytes to the file; sha256 on top of that on the same thread halves the
 * speed. Here each session copies bytes into a small ring of slots in shared memory and tells
 * one worker thread which slot to hash; the slot is reused once the worker is done. Nothing
 * is allocated or transferred per batch, so the garbage collector has no extra work. Rings
 * outlive sessions and are handed to the worker once: it seldom runs its own collector, so
 * memory sent to it per session would linger.
 *
 * One HashWorker serves any number of concurrent sessions. Its thread starts with the first
 * session and never keeps the process alive while no session is open.
 */

const SLOT_BYTES = 1 << 20;
/** Slots per session: how far the copying thread may run ahead of the hashing one. */
const SLOTS = 4;

// The worker's code, evaluated as CommonJS so that it works wherever kiln is installed.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const rings = new Map();
const sessions = new Map();
parentPort.on('message', (m) => {
  if (m.op === 'ring') {
    rings.set(m.ring, m.buffer);
  } else if (m.op === 'start') {
    sessions.set(m.id, { hash: createHash(m.algorithm), ring: rings.get(m.ring) });
  } else if (m.op === 'update') {
    const session = sessions.get(m.id);
    if (session) session.hash.update(new Uint8Array(session.ring, m.slot * ${SLOT_BYTES}, m.length));
    parentPort.postMessage({ op: 'done', id: m.id, slot: m.slot });
  } else if (m.op === 'digest') {
    const session = sessions.get(m.id);
    sessions.delete(m.id);
    parentPort.postMessage({ op: 'digest', id: m.id, hex: session ? session.hash.digest('hex') : undefined });
  } else if (m.op === 'drop') {
    sessions.delete(m.id);
  }
});
`;

type WorkerMessage =
  | { op: 'done'; id: number; slot: number }
  | { op: 'digest'; id: number; hex: string | undefined };

/** A streaming hash whose work happens on the worker thread. */
export interface OffThreadHash {
  /**
   * Copies `chunk` for hashing. When the worker is behind, the copy completes later: then a
   * promise is returned, and the chunk must stay unchanged until it resolves.
   */
  update(chunk: Uint8Array): Promise<void> | undefined;
  /** The hex digest of everything passed to `update`. Ends the session. */
  digest(): Promise<string>;
  /** Ends the session without a digest (the stream failed or was destroyed). */
  abort(): void;
}

interface Ring {
  id: number;
  bytes: Buffer;
}

export class HashWorker {
  private worker: Worker | undefined;
  private readonly sessions = new Map<number, Session>();
  /** Rings the current worker knows and no session uses. */
  private readonly idleRings: Ring[] = [];
  private nextId = 1;

  /** Starts a hash session ('sha256' or 'sha512'). */
  start(algorithm: string): OffThreadHash {
    const worker = this.thread();
    const ring = this.idleRings.pop() ?? this.newRing(worker);
    const id = this.nextId++;
    const session = new Session(id, worker, ring, algorithm, () => this.release(id, worker, ring));
    this.sessions.set(id, session);
    worker.ref();
    return session;
  }

  /** Stops the thread; open sessions fail. */
  async close(): Promise<void> {
    const worker = this.worker;
    this.forget(worker);
    if (!worker) return;
    this.failAll(new KilnError('INTERNAL', 'the hashing thread was stopped while a hash was in progress'));
    await worker.terminate();
  }

  private newRing(worker: Worker): Ring {
    const ring = { id: this.nextId++, bytes: Buffer.from(new SharedArrayBuffer(SLOTS * SLOT_BYTES)) };
    worker.postMessage({ op: 'ring', ring: ring.id, buffer: ring.bytes.buffer });
    return ring;
  }

  /** A worker that is gone takes its rings with it. */
  private forget(worker: Worker | undefined): void {
    if (worker === undefined || this.worker !== worker) return;
    this.worker = undefined;
    this.idleRings.length = 0;
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true, name: 'kiln-hash' });
    worker.on('message', (message: WorkerMessage) => this.sessions.get(message.id)?.onMessage(message));
    worker.on('error', (err) => {
      this.forget(worker);
      this.failAll(new KilnError('INTERNAL', `the hashing thread failed: ${describeError(err)}`, { cause: err }));
    });
    worker.on('exit', () => {
      if (this.worker !== worker) return;
      this.forget(worker);
      this.failAll(new KilnError('INTERNAL', 'the hashing thread exited while a hash was in progress'));
    });
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private release(id: number, worker: Worker, ring: Ring): void {
    if (!this.sessions.delete(id)) return;
    // The worker handles messages in order: a later session's bytes in this ring are never
    // read before an ended session's last batches.
    if (this.worker === worker) this.idleRings.push(ring);
    if (this.sessions.size === 0) this.worker?.unref();
  }

  private failAll(error: Error): void {
    for (const session of [...this.sessions.values()]) session.fail(error);
  }
}

class Session implements OffThreadHash {
  private readonly free: number[] = [];
  /** The slot being filled, and how far. */
  private slot: number | undefined;
  private filled = 0;
  private waiter: { resolve: () => void; reject: (err: Error) => void } | undefined;
  private result: { resolve: (hex: string) => void; reject: (err: Error) => void } | undefined;
  private failure: Error | undefined;
  private ended = false;

  private readonly bytes: Buffer;

  constructor(
    private readonly id: number,
    private readonly worker: Worker,
    ring: Ring,
    algorithm: string,
    private readonly onEnd: () => void,
  ) {
    this.bytes = ring.bytes;
    for (let slot = SLOTS - 1; slot >= 0; slot--) this.free.push(slot);
    worker.postMessage({ op: 'start', id, algorithm, ring: ring.id });
  }

  update(chunk: Uint8Array): Promise<void> | undefined {
    if (this.failure) return Promise.reject(this.failure);
    if (this.ended) throw new KilnError('INTERNAL', 'hash updated after its end');
    let offset = 0;
    const copy = (): void => {
      while (offset < chunk.length) {
        if (this.slot === undefined) {
          const slot = this.free.pop();
          if (slot === undefined) return;
          this.slot = slot;
          this.filled = 0;
        }
        const take = Math.min(chunk.length - offset, SLOT_BYTES - this.filled);
        // Buffer#fill with a buffer of the range's length is a plain memcpy; TypedArray#set
        // into shared memory copies word by word and costs twice as much.
        const at = this.slot * SLOT_BYTES + this.filled;
        this.bytes.fill(chunk.subarray(offset, offset + take), at, at + take);
        this.filled += take;
        offset += take;
        if (this.filled === SLOT_BYTES) this.send();
      }
    };
    copy();
    if (offset === chunk.length) return undefined;
    // Every slot is queued at the worker: copy the rest as slots come back.
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve: (): void => {
          copy();
          if (offset === chunk.length) resolve();
          else this.waiter = waiter;
        },
        reject,
      };
      this.waiter = waiter;
    });
  }

  digest(): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.ended) throw new KilnError('INTERNAL', 'hash finished twice');
    this.send();
    this.ended = true;
    return new Promise((resolve, reject) => {
      this.result = { resolve, reject };
      this.worker.postMessage({ op: 'digest', id: this.id });
    });
  }

  abort(): void {
    if (this.ended) return;
    this.ended = true;
    this.worker.postMessage({ op: 'drop', id: this.id });
    this.onEnd();
  }

  onMessage(message: WorkerMessage): void {
    if (message.op === 'done') {
      this.free.push(message.slot);
      const waiter = this.waiter;
      this.waiter = undefined;
      waiter?.resolve();
      return;
    }
    this.onEnd();
    if (message.hex === undefined) this.result?.reject(new KilnError('INTERNAL', 'the hashing thread lost a hash session'));
    else this.result?.resolve(message.hex);
  }

  fail(error: Error): void {
    this.failure = error;
    this.waiter?.reject(error);
    this.result?.reject(error);
    this.waiter = undefined;
    this.result = undefined;
    this.onEnd();
  }

  private send(): void {
    if (this.slot === undefined || this.filled === 0) return;
    this.worker.postMessage({ op: 'update', id: this.id, slot: this.slot, length: this.filled });
    this.slot = undefined;
    this.filled = 0;
  }
}
