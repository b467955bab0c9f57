// A file of random bytes for transfer benchmarks, written chunk by chunk so that a 1 GiB
// file never sits in memory; its sha256 is computed on the way.
import { createHash, randomFill } from 'node:crypto';
import { open } from 'node:fs/promises';
import { promisify } from 'node:util';

const CHUNK = 1 << 20;
const fill = promisify(randomFill);

export async function writeRandomFile(path: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const handle = await open(path, 'w');
  try {
    const buffer = Buffer.allocUnsafe(CHUNK);
    for (let written = 0; written < size; ) {
      const view = buffer.subarray(0, Math.min(CHUNK, size - written));
      await fill(view);
      hash.update(view);
      await handle.write(view);
      written += view.length;
    }
  } finally {
    await handle.close();
  }
  return 'sha256:' + hash.digest('hex');
}
