import type { FileHandle } from 'node:fs/promises';
import type { BlobSink } from './blob-sink.js';

/** Writes to a file at once: each waits for a thread of libuv's pool, and they overlap. */
const CONCURRENT_WRITES = 4;

/**
 * A sink that writes a blob into an open file, the blob's first byte at `offset`: each chunk
 * is written straight from the memory it came in, and handed back once written. Chunks go
 * to their own positions, so several writes may be in flight at once.
 */
export function fileSink(file: FileHandle, offset = 0): BlobSink {
  return {
    concurrency: CONCURRENT_WRITES,
    async write(chunk, position) {
      for (let done = 0; done < chunk.length; ) {
        const { bytesWritten } = await file.write(chunk, done, chunk.length - done, offset + position + done);
        done += bytesWritten;
      }
    },
  };
}
