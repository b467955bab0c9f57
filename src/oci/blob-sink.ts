import type { Readable } from 'node:stream';
import type { DigestVerifier } from './digest.js';

/**
 * Takes the bytes of a blob, chunk by chunk: `write(chunk, position)` for each, in order of
 * position, with up to `concurrency` calls in flight (default 1: strictly one after the
 * other). A chunk may be lent rather than given: its memory can be reused once its call's
 * promise settles (at once when nothing is returned), so copy what must outlive that.
 */
export interface BlobSink {
  write(chunk: Buffer, position: number): void | Promise<void>;
  concurrency?: number;
}

export interface BlobTransferOptions {
  /** Aborting stops the transfer; it then rejects once no write is in flight any more. */
  signal?: AbortSignal | undefined;
}

/**
 * Feeds a stream to `sink`, one write at a time, checking the bytes with `verifier` when one
 * is given. Resolves once the last write is done (and the digest matched); the stream is
 * destroyed when the sink fails or the signal aborts.
 */
export async function pourStream(stream: Readable, sink: BlobSink, verifier: DigestVerifier | undefined, options: BlobTransferOptions = {}): Promise<void> {
  const { signal } = options;
  const onAbort = (): void => {
    stream.destroy(signal!.reason instanceof Error ? signal!.reason : new Error('the transfer was aborted'));
  };
  if (signal?.aborted) onAbort();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    let position = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      verifier?.update(chunk);
      await sink.write(chunk, position);
      position += chunk.length;
    }
    verifier?.finish();
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
