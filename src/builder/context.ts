import { createReadStream, existsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { decompress, detectCompression } from '../oci/compression.js';
import { extractLayer } from '../snapshot/extract.js';
import { IgnoreList } from '../snapshot/ignore.js';
import { KilnError } from '../util/errors.js';
import type { Logger } from '../util/log.js';

/** A build context as a directory on this machine, and how to remove it when kiln made it. */
export interface PreparedContext {
  dir: string;
  dispose(): Promise<void>;
}

/**
 * kaniko's --context forms: a path or `dir://PATH` is used where it is; `tar://PATH` (a
 * .tar or .tar.gz file) and `tar://stdin` are unpacked into a temporary directory first.
 */
export async function prepareContext(context: string, subPath: string | undefined, workDir: string, stdin: Readable, logger: Logger): Promise<PreparedContext> {
  if (context.startsWith('tar://')) {
    const source = context.slice('tar://'.length);
    const dir = await mkdtemp(join(workDir, 'kiln-context-'));
    const dispose = () => rm(dir, { recursive: true, force: true });
    try {
      const input = source === 'stdin' ? stdin : openTarFile(source, context);
      await extractLayer(await uncompressed(input), { rootDir: dir, ignore: IgnoreList.of([]), whiteouts: false, name: `the context ${context}`, logger });
      return { dir: checkedDir(join(dir, subPath ?? ''), context), dispose };
    } catch (err) {
      await dispose();
      throw err;
    }
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(context) && !context.startsWith('dir://')) {
    throw new KilnError('USAGE', `--context ${context}: kiln supports a directory (PATH or dir://PATH) and tar://PATH or tar://stdin contexts so far.`);
  }
  return { dir: checkedDir(resolve(context.replace(/^dir:\/\//, ''), subPath ?? ''), context), dispose: async () => undefined };
}

function openTarFile(path: string, context: string): Readable {
  if (!existsSync(path)) throw new KilnError('USAGE', `--context ${context}: ${path} does not exist.`);
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

function checkedDir(dir: string, context: string): string {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new KilnError('USAGE', `--context ${context}: ${dir} is not a directory.`);
  }
  return dir;
}
