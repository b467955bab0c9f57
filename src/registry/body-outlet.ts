import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { BlobSink } from '../oci/blob-sink.js';
import { SlabRing } from './slab-ring.js';

/**
 * Where the bytes of a bulk response body go (see bulk-get.ts), and the memory the socket
 * reads them into: large slabs, each read filling as much of one as the socket has.
 *
 * A body starts as a stream: the body bytes of each read are pushed at once, as a view of
 * the slab, and every slab is fresh memory, because a stream's consumer owns the chunks it
 * gets and may keep them. `lend()` turns it into a lent body instead: reads go into a ring of
 * reused slots (slab-ring.ts), and the body bytes of a slot go on as one chunk once it is
 * full (or after FLUSH_AFTER_MS, so that a slow registry is not made to wait). The bytes of
 * each read are shown to `inspect` as they arrive (to hash them while they are still in the
 * cache), a slot's chunk is handed to the sink once complete, and the slot is read into again
 * once the sink is done with it. Slots can be shared memory, for a sink that has another
 * thread work on them in place. Nothing is allocated per chunk, so the garbage collector has
 * nothing to do however large the blob.
 */

/** A stream's slabs; one with less room than its minimum read is retired, so that reads stay large. */
const STREAM_SLAB_BYTES = 2 << 20;
const STREAM_MIN_READ_BYTES = 256 << 10;
/**
 * A lent body's slots: small enough that a slot's bytes are still in the processor's cache
 * when they are hashed and written (2 or 4 MiB slots make a download slower), and enough of
 * them for a sink to work on several while the socket fills another: on a busy machine each
 * hand-over to a sink's thread waits to be scheduled, and with several in flight those
 * waits overlap instead of adding up.
 */
const RING_SLOT_BYTES = 1 << 20;
const RING_MIN_READ_BYTES = 64 << 10;
const RING_SLOTS = 8;
/** A lent body's bytes wait at most this long for their slot to fill. */
const FLUSH_AFTER_MS = 10;

/** Takes a lent body's chunks; see RegistryClient.fetchBlob. */
export type LentSink = BlobSink;

export interface LendHandlers {
  /** Sees the body's bytes as they arrive, in order; may throw to fail the download. */
  inspect(bytes: Buffer): void;
  sink: LentSink;
  /** Read into shared memory, so that the sink can have another thread work on a slot in place. */
  sharedSlots?: boolean;
}

interface Lending extends LendHandlers {
  ring: SlabRing;
  queue: { chunk: Buffer; slot: number; position: number }[];
  /** Bytes queued so far: the position of the next chunk. */
  queued: number;
  inFlight: number;
  concurrency: number;
  ended: boolean;
  failure: Error | undefined;
  settled: boolean;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class BodyOutlet {
  private slab: Buffer = Buffer.allocUnsafe(STREAM_SLAB_BYTES);
  private used = 0;
  /** The ring slot `slab` is, or -1 for a fresh slab. */
  private slot = -1;
  /** Body bytes received and not yet handed on: [start, end) of one buffer. */
  private pending: ArrayBufferLike | undefined;
  private pendingStart = 0;
  private pendingEnd = 0;
  private pendingSlot = -1;
  private timer: NodeJS.Timeout | undefined;
  private body: Readable | undefined;
  private lending: Lending | undefined;
  /** The body is complete, or failed. */
  private over = false;
  private waitingForSlot = false;
  /** Set while the socket is not being read: the reader is behind, or no slot is free. */
  paused = false;

  /** Set right after the socket is made: it asks for its first read buffer while being made. */
  private socket!: Socket;

  constructor(private readonly timeoutMs: number) {}

  bind(socket: Socket): void {
    this.socket = socket;
  }

  /** The memory the next socket read goes into. */
  readBuffer(): Buffer {
    return this.slab.subarray(this.used);
  }

  /** Accounts for `length` bytes read into `readBuffer()` and returns them. */
  received(length: number): Buffer {
    const data = this.slab.subarray(this.used, this.used + length);
    this.used += length;
    return data;
  }

  /** After a read has been parsed: hands on a stream's bytes, retires a full slab. Returns false to stop reading. */
  afterRead(): boolean {
    if (this.over) return !this.paused;
    // A stream's reader gets bytes as they come; a lent body's sink gets whole slots.
    if (!this.lending) this.flush();
    if (this.slab.length - this.used < (this.slot === -1 ? STREAM_MIN_READ_BYTES : RING_MIN_READ_BYTES)) {
      this.flush();
      this.nextSlab();
    }
    return !this.paused;
  }

  /** The body stream has been handed out; body bytes go there until `lend()`. */
  attach(body: Readable): void {
    this.body = body;
  }

  /** Adds body bytes (a view of a slab, usually the one just read) to those pending. */
  deliver(data: Buffer): void {
    if (data.length === 0 || this.over) return;
    if (this.lending && !this.inspect(data)) return;
    if (this.pending === data.buffer && this.pendingEnd === data.byteOffset) {
      this.pendingEnd += data.length;
      return;
    }
    this.flush();
    this.pending = data.buffer;
    this.pendingStart = data.byteOffset;
    this.pendingEnd = data.byteOffset + data.length;
    this.pendingSlot = data.buffer === this.slab.buffer ? this.slot : -1;
    if (this.lending) this.timer = setTimeout(() => this.onTimer(), FLUSH_AFTER_MS);
  }

  /** The body is complete. */
  end(): void {
    if (this.over) return;
    this.flush();
    this.over = true;
    if (this.lending) {
      this.lending.ended = true;
      this.pump();
    } else {
      this.body!.push(null);
    }
  }

  /** The body failed (or, when lent, its inspector or sink did); the first failure wins. */
  fail(err: Error): void {
    const lending = this.lending;
    if (lending && !lending.failure) {
      lending.failure = err;
      lending.queue.length = 0;
    }
    if (!this.over) {
      this.over = true;
      clearTimeout(this.timer);
      this.pending = undefined;
      if (!lending) this.body?.destroy(err);
    }
    if (lending) this.pump();
  }

  /** The body's reader wants more: read the socket again. */
  resume(): void {
    if (!this.paused || this.over || this.waitingForSlot) return;
    this.paused = false;
    this.socket.setTimeout(this.timeoutMs);
    this.socket.resume();
  }

  /** Turns the body into a lent one; see the top of this file. */
  lend(handlers: LendHandlers): Promise<void> {
    if (this.lending) return Promise.reject(new Error('a body can be lent only once'));
    return new Promise<void>((resolve, reject) => {
      const lending: Lending = {
        ...handlers,
        ring: new SlabRing(RING_SLOTS, RING_SLOT_BYTES, handlers.sharedSlots ?? false),
        queue: [],
        queued: 0,
        inFlight: 0,
        concurrency: Math.max(1, Math.min(RING_SLOTS - 1, Math.floor(handlers.sink.concurrency ?? 1))),
        ended: false,
        failure: undefined,
        settled: false,
        resolve,
        reject,
      };
      const body = this.body!;
      const failed = body.errored;
      this.lending = lending;
      if (failed) {
        lending.failure = failed;
        this.pump();
        return;
      }
      // Bytes that went into the stream before the body was lent come first.
      for (let chunk: Buffer | null; body.readableLength > 0 && (chunk = body.read() as Buffer | null) !== null; ) {
        if (this.inspect(chunk)) this.lendChunk(chunk, -1);
      }
      if (body.readableEnded || (this.over && !body.errored)) lending.ended = true;
      this.paused = false;
      if (!this.over) {
        this.socket.setTimeout(this.timeoutMs);
        this.socket.resume();
      }
      this.pump();
    });
  }

  /** Hands on the body bytes gathered so far; false when the reader is behind. */
  private flush(): boolean {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.pending === undefined) return !this.paused;
    const chunk = Buffer.from(this.pending, this.pendingStart, this.pendingEnd - this.pendingStart);
    this.pending = undefined;
    if (this.lending) this.lendChunk(chunk, this.pendingSlot);
    else if (!this.body!.push(chunk)) this.paused = true;
    return !this.paused;
  }

  private onTimer(): void {
    this.timer = undefined;
    if (!this.flush() && !this.over) this.socket.pause();
  }

  private nextSlab(): void {
    this.used = 0;
    const ring = this.lending?.ring;
    if (!ring) {
      this.slab = Buffer.allocUnsafe(STREAM_SLAB_BYTES);
      this.slot = -1;
      return;
    }
    const free = this.slot === -1 ? ring.currentFree : ring.advance();
    this.slot = ring.current;
    this.slab = ring.slot(this.slot);
    if (!free) {
      // Reads resume once the sink gives this slot back.
      this.waitingForSlot = true;
      this.paused = true;
    }
  }

  /** Shows bytes to the inspector; false when it failed the download. */
  private inspect(data: Buffer): boolean {
    const lending = this.lending!;
    if (lending.failure) return false;
    try {
      lending.inspect(data);
      return true;
    } catch (err) {
      this.abort(err);
      return false;
    }
  }

  /** Queues inspected bytes for the sink. */
  private lendChunk(chunk: Buffer, slot: number): void {
    const lending = this.lending!;
    if (lending.failure) return;
    if (slot >= 0) lending.ring.hold(slot);
    lending.queue.push({ chunk, slot, position: lending.queued });
    lending.queued += chunk.length;
    this.pump();
  }

  /** Feeds the sink, up to its concurrency, and settles the lend once all is done. */
  private pump(): void {
    const lending = this.lending!;
    while (!lending.settled && !lending.failure && lending.inFlight < lending.concurrency) {
      const next = lending.queue.shift();
      if (!next) break;
      lending.inFlight++;
      let result: void | Promise<void>;
      try {
        result = lending.sink.write(next.chunk, next.position);
      } catch (err) {
        this.returned(next.slot, err);
        continue;
      }
      if (result && typeof result.then === 'function') result.then(() => this.returned(next.slot, undefined), (err: unknown) => this.returned(next.slot, err ?? new Error('the sink failed')));
      else this.returned(next.slot, undefined);
    }
    // A failure is reported once no write is in flight: nothing of the sink's outlives it.
    if (lending.settled || lending.inFlight > 0) return;
    if (lending.failure) {
      lending.settled = true;
      lending.reject(lending.failure);
    } else if (lending.ended && lending.queue.length === 0) {
      lending.settled = true;
      lending.resolve();
    }
  }

  private returned(slot: number, err: unknown): void {
    const lending = this.lending!;
    lending.inFlight--;
    if (err !== undefined) {
      this.abort(err);
      return;
    }
    if (slot >= 0 && lending.ring.release(slot) && this.waitingForSlot) {
      this.waitingForSlot = false;
      this.resume();
    }
    this.pump();
  }

  /** The inspector or the sink failed: stop the download. */
  private abort(err: unknown): void {
    this.fail(err instanceof Error ? err : new Error(String(err)));
    this.socket.destroy();
  }
}
