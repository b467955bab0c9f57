import { randomBytes } from 'node:crypto';
import { close, closeSync, openSync, read, unlinkSync, write } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { BlobSink } from '../oci/blob-sink.js';
import type { Layer } from '../oci/layer.js';
import { writeLayerTo } from '../oci/layer-blob.js';
import { describeError } from '../util/errors.js';

const READ_CHUNK = 1 << 20;
/** Writes to the spool file at once: each waits for a thread of libuv's pool, and they overlap. */
const CONCURRENT_WRITES = 4;

/**
 * A layer's blob, downloading into a temporary file that the layer is extracted from as the
 * bytes arrive. The next layer's starts while the current one is extracted, so a pull
 * overlaps network and disk instead of alternating them; only one layer is ever fetched
 * ahead, and it goes to disk, never into memory. The file is unlinked as soon
 * as it is created: nothing is left behind if kiln dies, and nothing shows up in the root
 * when the spool directory lies inside it (kaniko's `/` with /tmp). The blob goes in through
 * the layer's fastest way to a file (`writeLayerTo`), verified as it comes.
 *
 * `open()` streams the blob from the start while the download may still be running, reading
 * only what has been written; a download error (a digest mismatch included) reaches that
 * reader before its end, so the extraction fails instead of finishing on unverified bytes.
 */
export class LayerSpool {
  private written = 0;
  private downloading = true;
  private failure: Error | undefined;
  private readonly stop = new AbortController();
  private readers = 0;
  private reads = 0;
  private abandoned = false;
  private closed = false;
  private wake: (() => void) | undefined;

  private constructor(
    private readonly fd: number,
    private readonly layer: Layer,
  ) {}

  /** Starts fetching `layer` into an unlinked file in `dir`; undefined when no file can be made there. */
  static start(layer: Layer, dir: string): LayerSpool | undefined {
    const path = join(dir, `.kiln-layer-${randomBytes(6).toString('hex')}`);
    let fd: number;
    try {
      fd = openSync(path, 'wx+', 0o600);
    } catch {
      return undefined;
    }
    try {
      unlinkSync(path);
    } catch {
      closeSync(fd);
      return undefined;
    }
    const spool = new LayerSpool(fd, layer);
    void spool.download();
    return spool;
  }

  /** The blob as stored (compressed), from its first byte. Call once. */
  open(): Readable {
    this.readers++;
    let position = 0;
    const reader = new Readable({
      highWaterMark: READ_CHUNK,
      read: () => {
        const pump = (): void => {
          if (this.failure !== undefined) {
            reader.destroy(this.failure);
            return;
          }
          const available = this.written - position;
          if (available === 0) {
            if (this.downloading) this.wake = pump;
            else reader.push(null);
            return;
          }
          const buffer = Buffer.allocUnsafe(Math.min(available, READ_CHUNK));
          this.reads++;
          read(this.fd, buffer, 0, buffer.length, position, (err, bytes) => {
            this.reads--;
            if (err) reader.destroy(err);
            else if (!reader.destroyed) {
              position += bytes;
              reader.push(bytes === buffer.length ? buffer : buffer.subarray(0, bytes));
            }
            this.closeIfIdle();
          });
        };
        pump();
      },
      destroy: (err, callback) => {
        this.readers--;
        this.abandon();
        callback(err);
      },
    });
    return reader;
  }

  /** Stops the download (the extraction failed, or the reader is done) and releases the file. */
  abandon(): void {
    this.abandoned = true;
    this.wake = undefined;
    this.stop.abort();
    this.closeIfIdle();
  }

  private async download(): Promise<void> {
    try {
      await writeLayerTo(this.layer, this.sink(), { signal: this.stop.signal });
    } catch (err) {
      if (!this.abandoned) this.failure = err instanceof Error ? err : new Error(describeError(err));
    } finally {
      this.downloading = false;
      this.notify();
      this.closeIfIdle();
    }
  }

  /** Writes chunks where they belong; readers see bytes once everything before them is written. */
  private sink(): BlobSink {
    // Writes that finished ahead of an earlier one still in flight: start -> end.
    const finished = new Map<number, number>();
    return {
      concurrency: CONCURRENT_WRITES,
      write: async (chunk, position) => {
        for (let at = 0; at < chunk.length; ) at += await writeAt(this.fd, chunk, at, position + at);
        finished.set(position, position + chunk.length);
        for (let end = finished.get(this.written); end !== undefined; end = finished.get(this.written)) {
          finished.delete(this.written);
          this.written = end;
        }
        this.notify();
      },
    };
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  // The file goes once nobody can still read it: abandoned, download over, no read in flight.
  private closeIfIdle(): void {
    if (this.closed || !this.abandoned || this.downloading || this.readers > 0 || this.reads > 0) return;
    this.closed = true;
    close(this.fd, () => {});
  }
}

/** Writes `buffer` from `offset` at file position `position`; resolves to the bytes written. */
function writeAt(fd: number, buffer: Buffer, offset: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    write(fd, buffer, offset, buffer.length - offset, position, (err, bytes) => (err ? reject(err) : resolve(bytes)));
  });
}
