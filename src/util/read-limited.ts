import { KilnError, type ErrorCode } from './errors.js';

/**
 * Collects a small stream (a manifest, a config) into memory, refusing it once it grows past
 * `limit` bytes: a broken or hostile server must not make kiln buffer without bound.
 */
export async function readLimited(stream: AsyncIterable<unknown> & { destroy?: () => void }, limit: number, code: ErrorCode, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const buffer = chunk as Buffer;
    total += buffer.length;
    if (total > limit) {
      stream.destroy?.();
      throw new KilnError(code, `${what} is larger than the ${limit} bytes kiln accepts for it; refusing it.`);
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}
