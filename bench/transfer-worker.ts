// The kiln side of bench/transfer.ts, in a process of its own so that its peak RSS is
// kiln's alone. Prints one JSON line: {"seconds":…,"bytes":…,"maxRssKiB":…}.
//   transfer-worker.js pull HOST REPO DIGEST SIZE OUT_FILE [on|off|auto]
//   transfer-worker.js push HOST REPO DIGEST SIZE IN_FILE
// The last argument of pull sets RegistryClient's hashThread option (auto: its default).
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { RegistryClient } from '../src/registry/client.js';
import { createCredentialStore } from '../src/registry/credentials.js';
import { parseRegistryOptions } from '../src/registry/endpoints.js';
import { parseReference } from '../src/registry/reference.js';

const WRITE_CHUNK = 1 << 20;
const READ_CHUNK = 1 << 20;

async function main(): Promise<void> {
  const [mode, host, repo, digest, sizeText, file, hashThread = 'auto'] = process.argv.slice(2);
  if ((mode !== 'pull' && mode !== 'push') || !host || !repo || !digest || !sizeText || !file) {
    throw new Error('usage: transfer-worker.js pull|push HOST REPO DIGEST SIZE FILE');
  }
  const size = Number(sizeText);
  const client = new RegistryClient({
    registry: parseRegistryOptions({ insecureRegistry: [host] }, {}),
    credentials: createCredentialStore({ env: {} }),
    ...(hashThread === 'auto' ? {} : { hashThread: hashThread === 'on' }),
  });
  const ref = parseReference(`${host}/${repo}`);
  const started = performance.now();
  if (mode === 'pull') {
    const blob = await client.getBlob(ref, { digest, size });
    await pipeline(blob, createWriteStream(file, { highWaterMark: WRITE_CHUNK }));
  } else {
    const result = await client.uploadBlob(ref, {
      digest,
      size,
      open: async () => createReadStream(file, { highWaterMark: READ_CHUNK }),
    });
    if (result.kind !== 'uploaded') throw new Error(`expected an upload, got ${result.kind}`);
  }
  const seconds = (performance.now() - started) / 1000;
  await client.close();
  process.stdout.write(JSON.stringify({ seconds, bytes: size, maxRssKiB: process.resourceUsage().maxRSS }) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
