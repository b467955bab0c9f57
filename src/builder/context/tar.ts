// Unpacks a context archive (plain or gzip-compressed tar) into a directory, streaming.
import { createReadStream, existsSync } from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import { decompress, detectCompression } from '../../oci/compression.js';
import { extractLayer } from '../../snapshot/extract.js';
import { IgnoreList } from '../../snapshot/ignore.js';
import { KilnError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';

export async function unpackContext(input: Readable, dir: string, shown: string, logger: Logger): Promise<void> {
  await extractLayer(await uncompressed(input), { rootDir: dir, ignore: IgnoreList.of([]), whiteouts: false, name: `the context ${shown}`, logger });
}

export function openTarFile(path: string, shown: string): Readable {
  if (!existsSync(path)) throw new KilnError('USAGE', `--context ${shown}: ${path} does not exist.`);
  return createReadStream(path, { highWaterMark: 1 << 20 });
}

/** Plain or gzip-compressed tar, told apart by the first bytes rather than the file name. */
async function uncompressed(input: Readable): Promise<Readable> {
  const head = await firstBytes(input);
  const output = new PassThrough({ highWaterMark: 1 << 20 });
  const compression = detectCompression(head);
  const stage = compression === 'none' ? output : decompress(compression);
  if (stage !== output) stage.pipe(output);
  stage.on('error', (err) => output.destroy(err));
  input.on('error', (err) => output.destroy(err));
  stage.write(head);
  input.pipe(stage);
  return output;
}

function firstBytes(input: Readable): Promise<Buffer> {
  return new Promise((resolveHead, reject) => {
    const onReadable = () => {
      const chunk = input.read() as Buffer | null;
      if (chunk === null) return;
      input.off('readable', onReadable);
      input.off('error', reject);
      input.off('end', onEnd);
      resolveHead(chunk);
    };
    const onEnd = () => resolveHead(Buffer.alloc(0));
    input.on('readable', onReadable);
    input.once('error', reject);
    input.once('end', onEnd);
  });
}
