import { Worker } from 'node:worker_threads';
import { KilnError, describeError } from '../util/errors.js';

/**
 * Hashing on a thread of its own, in place: a lent download (fetchBlob) reads the socket
 * into slots of shared memory, and this thread hashes each slot where it lies while the
 * file write of the same slot goes on in libuv's pool and the main thread reads the next
 * one. Nothing is copied: a message carries a view of the slot, and the slot is read into
 * again only once its hash (and its write) are done. Bytes that are not in shared memory
 * are copied into the message, which is rare (the start of a body) and small.
 *
 * One SlotHasher serves any number of sessions at once. Its thread starts with the first
 * session and never keeps the process alive while no session is open.
 */

// The worker's code, as a string so that it works wherever kiln is installed; it takes its
// modules from process.getBuiltinModule, which works whether it is evaluated as CommonJS or
// as a module (a process started with --input-type=module).
const WORKER_SOURCE = `
const { parentPort } = process.getBuiltinModule('node:worker_threads');
const { createHash } = process.getBuiltinModule('node:crypto');
const sessions = new Map();
parentPort.on('message', (m) => {
  if (m.op === 'start') {
    sessions.set(m.id, createHash(m.algorithm));
  } else if (m.op === 'update') {
    const hash = sessions.get(m.id);
    if (hash) hash.update(m.bytes);
    parentPort.postMessage({ op: 'done', id: m.id });
  } else if (m.op === 'digest') {
    const hash = sessions.get(m.id);
    sessions.delete(m.id);
    parentPort.postMessage({ op: 'digest', id: m.id, hex: hash ? hash.digest('hex') : undefined });
  } else if (m.op === 'drop') {
    sessions.delete(m.id);
  }
});
`;

type WorkerMessage = { op: 'done'; id: number } | { op: 'digest'; id: number; hex: string | undefined };

/** A streaming hash computed on the hashing thread. */
export interface SlotHash {
  /**
   * Hashes `bytes` after everything passed before. Resolves once the thread is done with
   * them: until then, bytes in shared memory must stay unchanged.
   */
  update(bytes: Uint8Array): Promise<void>;
  /** The hex digest of everything passed to `update`. Ends the session. */
  digest(): Promise<string>;
  /** Ends the session without a digest. */
  abort(): void;
}

interface Pending {
  resolve: () => void;
  reject: (err: Error) => void;
}

export class SlotHasher {
  private worker: Worker | undefined;
  private readonly sessions = new Map<number, Session>();
  private nextId = 1;

  start(algorithm: string): SlotHash {
    const worker = this.thread();
    const id = this.nextId++;
    const session = new Session(id, worker, algorithm, () => this.release(id));
    this.sessions.set(id, session);
    worker.ref();
    return session;
  }

  /** Stops the thread; open sessions fail. */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (!worker) return;
    this.failAll(new KilnError('INTERNAL', 'the hashing thread was stopped while a hash was in progress'));
    await worker.terminate();
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true, name: 'kiln-slot-hash' });
    worker.on('message', (message: WorkerMessage) => this.sessions.get(message.id)?.onMessage(message));
    const gone = (error: Error): void => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.failAll(error);
    };
    worker.on('error', (err) => gone(new KilnError('INTERNAL', `the hashing thread failed: ${describeError(err)}`, { cause: err })));
    worker.on('exit', () => gone(new KilnError('INTERNAL', 'the hashing thread exited while a hash was in progress')));
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private release(id: number): void {
    if (!this.sessions.delete(id)) return;
    if (this.sessions.size === 0) this.worker?.unref();
  }

  private failAll(error: Error): void {
    for (const session of [...this.sessions.values()]) session.fail(error);
  }
}

class Session implements SlotHash {
  /** Updates the thread has not finished, oldest first: it answers them in order. */
  private readonly pending: Pending[] = [];
  private result: { resolve: (hex: string) => void; reject: (err: Error) => void } | undefined;
  private failure: Error | undefined;
  private ended = false;

  constructor(
    private readonly id: number,
    private readonly worker: Worker,
    algorithm: string,
    private readonly onEnd: () => void,
  ) {
    worker.postMessage({ op: 'start', id, algorithm });
  }

  update(bytes: Uint8Array): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.ended) return Promise.reject(new KilnError('INTERNAL', 'hash updated after its end'));
    // A view of shared memory travels as a view; anything else is copied, and only the view's
    // own bytes (a clone would copy the whole buffer behind it).
    const shared = bytes.buffer instanceof SharedArrayBuffer;
    this.worker.postMessage({ op: 'update', id: this.id, bytes: shared ? bytes : new Uint8Array(bytes) });
    return new Promise<void>((resolve, reject) => this.pending.push({ resolve, reject }));
  }

  digest(): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.ended) return Promise.reject(new KilnError('INTERNAL', 'hash digested twice'));
    this.ended = true;
    this.worker.postMessage({ op: 'digest', id: this.id });
    return new Promise<string>((resolve, reject) => {
      this.result = { resolve, reject };
    });
  }

  abort(): void {
    // Nothing to do once failed or once the digest came back.
    if (this.failure || (this.ended && this.result === undefined)) return;
    if (!this.ended) this.worker.postMessage({ op: 'drop', id: this.id });
    this.ended = true;
    this.fail(new KilnError('INTERNAL', 'the hash was aborted'));
  }

  onMessage(message: WorkerMessage): void {
    if (message.op === 'done') {
      this.pending.shift()?.resolve();
      return;
    }
    const result = this.result;
    this.result = undefined;
    this.onEnd();
    if (message.hex === undefined) result?.reject(new KilnError('INTERNAL', 'the hashing thread lost a session'));
    else result?.resolve(message.hex);
  }

  fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    for (const waiter of this.pending.splice(0)) waiter.reject(error);
    const result = this.result;
    this.result = undefined;
    result?.reject(error);
    this.onEnd();
  }
}
