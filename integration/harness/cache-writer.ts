// A separate kiln process that writes entries into a layout cache, so tests can have several
// processes share one `--cache-repo oci:DIR` the way parallel CI jobs on one node do.
// Usage: cache-writer DIR WRITER_ID COUNT. Exits 1 when any write logged a warning.
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { LayoutLayerCache } from '../../src/cache/layout-cache.js';
import { stepKey } from '../../src/cache/key.js';
import { createLogger } from '../../src/util/log.js';
import { memoryLayer } from '../../test/oci/fixtures.js';
import { run } from './process.js';

/** The key a writer uses for its n-th entry; readers compute the same one. */
export function writerKey(writer: number, n: number) {
  return stepKey('sha256:' + '0'.repeat(64), [{ name: 'instruction', value: `RUN writer ${writer} step ${n}` }], `writer ${writer} step ${n}`, `writer ${writer} step ${n}`);
}

/** Runs the writer in a process of its own; resolves with its output, rejects when it fails. */
export async function runCacheWriter(dir: string, writer: number, count: number): Promise<string> {
  const self = fileURLToPath(import.meta.url);
  const loader = self.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const { stdout, stderr } = await run(process.execPath, [...loader, self, dir, String(writer), String(count)]);
  return stdout + stderr;
}

async function main(dir: string, writer: number, count: number): Promise<void> {
  let warnings = 0;
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) {
        if (!line.trim()) continue;
        if ((JSON.parse(line) as { level?: number }).level === 40) warnings++;
        process.stderr.write(line + '\n');
      }
      callback();
    },
  });
  const logger = createLogger({ level: 'warn', format: 'json', destination });
  const cache = new LayoutLayerCache({ dir, ttlMs: 86_400_000, push: true, logger });
  for (let n = 0; n < count; n++) {
    const { layer } = await memoryLayer({ [`writer-${writer}/file-${n}`]: `written by ${writer}, entry ${n}\n` });
    cache.put(writerKey(writer, n), n % 3 === 2 ? { kind: 'empty' } : { kind: 'layer', layer });
  }
  await cache.settle();
  if (warnings > 0) process.exit(1);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [dir, writer, count] = process.argv.slice(2);
  await main(dir!, Number(writer), Number(count));
}
