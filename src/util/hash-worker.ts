import { Worker } from 'node:worker_threads';
import { KilnError, describeError } from './errors.js';

/**
 * Hashing on a thread of its own. A blob download has its main thread busy reading the
 * socket and handing bytes to the file; sha256 on top of that on the same thread halves the
 * speed. A session takes its bytes in either of two ways:
 *
 * - `update` copies them into a small ring of slots in shared memory and tells the thread
 *   which slot to hash; the slot is reused once the thread is done. That suits bytes the
 *   caller passes on at once (VerifyingStream). Nothing is allocated or transferred per
 *   batch, so the garbage collector has no extra work. Rings outlive sessions and are handed
 *   to the thread once: it seldom runs its own collector, so memory sent to it per session
 *   would linger.
 * - `updateInPlace` hashes them where they lie: a lent download (RegistryClient.fetchBlob)
 *   reads the socket into slots of shared memory, and the thread hashes each slot while the
 *   file write of the same slot goes on in libuv's pool and the main thread reads the next
 *   one. A message carries a view of the slot, which is read into again only once its hash
 *   (and its write) are done. Bytes that are not in shared memory are copied into the
 *   message, which is rare (the start of a body) and small.
 *
 * One HashWorker serves any number of concurrent sessions. Its thread starts with the first
 * session and never keeps the process alive while no session is open.
 */

const SLOT_BYTES = 1 << 20;
/** Slots per ring: how far the copying thread may run ahead of the hashing one. */
const SLOTS = 4;

// The worker's code, as a string so that it works wherever kiln is installed; it takes its
// modules from process.getBuiltinModule, which works whether it is evaluated as CommonJS or
// as a module (a process started with --input-type=module).
const WORKER_SOURCE = `
const { parentPort } = process.getBuiltinModule('node:worker_threads');
const { createHash } = process.getBuiltinModule('node:crypto');
const rings = new Map();
const sessions = new Map();
parentPort.on('message', (m) => {
  if (m.op === 'ring') {
    rings.set(m.ring, m.buffer);
  } else if (m.op === 'start') {
    sessions.set(m.id, createHash(m.algorithm));
  } else if (m.op === 'update') {
    const hash = sessions.get(m.id);
    if (hash) hash.update(m.bytes ?? new Uint8Array(rings.get(m.ring), m.slot * ${SLOT_BYTES}, m.length));
    parentPort.postMessage({ op: 'done', id: m.id, slot: m.slot });
  } else if (m.op === 'digest') {
    const hash = sessions.get(m.id);
    sessions.delete(m.id);
    parentPort.postMessage({ op: 'digest', id: m.id, hex: hash ? hash.digest('hex') : undefined });
  } else if (m.op === 'drop') {
    sessions.delete(m.id);
  }
});
`;

/** `slot` is set for a ring slot, unset for bytes hashed in place. */
type WorkerMessage =
  | { op: 'done'; id: number; slot: number | undefined }
  | { op: 'digest'; id: number; hex: string | undefined };

/** A streaming hash whose work happens on the hashing thread, over the bytes in the order given. */
export interface OffThreadHash {
  /**
   * Copies `chunk` for hashing. When the thread is behind, the copy completes later: then a
   * promise is returned, and the chunk must stay unchanged until it resolves.
   */
  update(chunk: Uint8Array): Promise<void> | undefined;
  /**
   * Hashes `bytes` where they lie, if they are in shared memory (others are copied). Resolves
   * once the thread is done with them: until then, bytes in shared memory must stay
   * unchanged. Refused while a copy by `update` is still pending.
   */
  updateInPlace(bytes: Uint8Array): Promise<void>;
  /** The hex digest of everything passed in. Ends the session. */
  digest(): Promise<string>;
  /** Ends the session without a digest (the transfer failed or was destroyed); what is pending rejects. */
  abort(): void;
}

interface Ring {
  id: number;
  bytes: Buffer;
}

interface Pending {
  resolve: () => void;
  reject: (err: Error) => void;
}

export class HashWorker {
  private worker: Worker | undefined;
  private readonly sessions = new Map<number, Session>();
  /** Rings the current thread knows and no session uses. */
  private readonly idleRings: Ring[] = [];
  private nextId = 1;

  /** Starts a hash session ('sha256' or 'sha512'). */
  start(algorithm: string): OffThreadHash {
    const worker = this.thread();
    const id = this.nextId++;
    // A session takes a ring on its first copy: one fed only in place needs none.
    const takeRing = (): Ring => this.idleRings.pop() ?? this.newRing(worker);
    const session = new Session(id, worker, algorithm, takeRing, (ring) => this.release(id, worker, ring));
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

  /** A thread that is gone takes its rings with it. */
  private forget(worker: Worker | undefined): void {
    if (worker === undefined || this.worker !== worker) return;
    this.worker = undefined;
    this.idleRings.length = 0;
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true, name: 'kiln-hash' });
    worker.on('message', (message: WorkerMessage) => this.sessions.get(message.id)?.onMessage(message));
    const gone = (error: Error): void => {
      if (this.worker !== worker) return;
      this.forget(worker);
      this.failAll(error);
    };
    worker.on('error', (err) => gone(new KilnError('INTERNAL', `the hashing thread failed: ${describeError(err)}`, { cause: err })));
    worker.on('exit', () => gone(new KilnError('INTERNAL', 'the hashing thread exited while a hash was in progress')));
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private release(id: number, worker: Worker, ring: Ring | undefined): void {
    if (!this.sessions.delete(id)) return;
    // A dropped session's batches still queued at the thread may read the next session's
    // bytes from this ring, but only into a hash no one asks for; the thread handles messages
    // in order, so the next session's own batches are read after those.
    if (ring && this.worker === worker) this.idleRings.push(ring);
    if (this.sessions.size === 0) this.worker?.unref();
  }

  private failAll(error: Error): void {
    for (const session of [...this.sessions.values()]) session.fail(error);
  }
}

class Session implements OffThreadHash {
  private ring: Ring | undefined;
  /** Slots of the ring not queued at the thread. */
  private readonly free: number[] = [];
  /** The slot being filled, and how far. */
  private slot: number | undefined;
  private filled = 0;
  /** A copy waiting for a slot to come back. */
  private waiter: Pending | undefined;
  /** In-place updates the thread has not finished, oldest first: it answers them in order. */
  private readonly pending: Pending[] = [];
  private result: { resolve: (hex: string) => void; reject: (err: Error) => void } | undefined;
  private failure: Error | undefined;
  private ended = false;

  constructor(
    private readonly id: number,
    private readonly worker: Worker,
    algorithm: string,
    private readonly takeRing: () => Ring,
    private readonly onEnd: (ring: Ring | undefined) => void,
  ) {
    worker.postMessage({ op: 'start', id, algorithm });
  }

  update(chunk: Uint8Array): Promise<void> | undefined {
    const refused = this.refusal('hash updated after its end');
    if (refused) return refused;
    if (!this.ring) {
      this.ring = this.takeRing();
      for (let slot = SLOTS - 1; slot >= 0; slot--) this.free.push(slot);
    }
    const bytes = this.ring.bytes;
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
        bytes.fill(chunk.subarray(offset, offset + take), at, at + take);
        this.filled += take;
        offset += take;
        if (this.filled === SLOT_BYTES) this.send();
      }
    };
    copy();
    if (offset === chunk.length) return undefined;
    // Every slot is queued at the thread: copy the rest as slots come back.
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

  updateInPlace(bytes: Uint8Array): Promise<void> {
    const refused = this.refusal('hash updated after its end');
    if (refused) return refused;
    if (this.waiter) return Promise.reject(new KilnError('INTERNAL', 'hash updated in place while a copy was pending'));
    // Bytes copied before these go first.
    this.send();
    // A view of shared memory travels as a view; anything else is copied, and only the view's
    // own bytes (a clone would copy the whole buffer behind it).
    const shared = bytes.buffer instanceof SharedArrayBuffer;
    this.worker.postMessage({ op: 'update', id: this.id, bytes: shared ? bytes : new Uint8Array(bytes) });
    return new Promise<void>((resolve, reject) => this.pending.push({ resolve, reject }));
  }

  digest(): Promise<string> {
    const refused = this.refusal('hash digested twice');
    if (refused) return refused;
    this.send();
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
    if (message.op === 'digest') {
      const result = this.result;
      this.result = undefined;
      this.onEnd(this.ring);
      if (message.hex === undefined) result?.reject(new KilnError('INTERNAL', 'the hashing thread lost a hash session'));
      else result?.resolve(message.hex);
    } else if (message.slot === undefined) {
      this.pending.shift()?.resolve();
    } else {
      this.free.push(message.slot);
      const waiter = this.waiter;
      this.waiter = undefined;
      waiter?.resolve();
    }
  }

  fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    const waiters = [...this.pending.splice(0), ...(this.waiter ? [this.waiter] : []), ...(this.result ? [this.result] : [])];
    this.waiter = undefined;
    this.result = undefined;
    for (const waiter of waiters) waiter.reject(error);
    this.onEnd(this.ring);
  }

  /** Why no more may be passed in, as a rejected promise. */
  private refusal(ended: string): Promise<never> | undefined {
    if (this.failure) return Promise.reject(this.failure);
    if (this.ended) return Promise.reject(new KilnError('INTERNAL', ended));
    return undefined;
  }

  /** Queues the slot being filled at the thread. */
  private send(): void {
    if (this.slot === undefined || this.filled === 0) return;
    this.worker.postMessage({ op: 'update', id: this.id, ring: this.ring!.id, slot: this.slot, length: this.filled });
    this.slot = undefined;
    this.filled = 0;
  }
}
