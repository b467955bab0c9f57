// The kiln side of bench/transfer.ts, in a process of its own so that its peak RSS is
// kiln's alone. Prints one JSON line: {"seconds":…,"bytes":…,"maxRssKiB":…}.
//   transfer-worker.js pull HOST REPO DIGEST SIZE OUT_FILE [on|off|auto] [layer|stream]
//   transfer-worker.js push HOST REPO DIGEST SIZE IN_FILE
// pull writes the verified blob to OUT_FILE (which must not exist), either
//   layer: the way kiln's pulls store a blob: the registry's Layer (registryLayer, as
//     fetchRemoteImage makes it) written by writeBlobFile, the code the warmer's cache
//     directory and OCI layout outputs run; its writeTo is RegistryClient.fetchBlob into a
//     file sink, as in extraction's layer spool; or
//   stream: RegistryClient.getBlob's stream piped into a file (what a reader of
//     Layer.compressed() gets).
// on|off|auto sets RegistryClient's hashThread option (auto: its defaults).
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { writeBlobFile } from '../src/oci/blob-file.js';
import { MediaType } from '../src/oci/mediatypes.js';
import { RegistryClient } from '../src/registry/client.js';
import { createCredentialStore } from '../src/registry/credentials.js';
import { parseRegistryOptions } from '../src/registry/endpoints.js';
import { parseReference } from '../src/registry/reference.js';
import { registryLayer } from '../src/registry/remote.js';

const WRITE_CHUNK = 1 << 20;
const READ_CHUNK = 1 << 20;

async function main(): Promise<void> {
  const [mode, host, repo, digest, sizeText, file, hashThread = 'auto', via = 'layer'] = process.argv.slice(2);
  if ((mode !== 'pull' && mode !== 'push') || !host || !repo || !digest || !sizeText || !file || (via !== 'layer' && via !== 'stream')) {
    throw new Error('usage: transfer-worker.js pull|push HOST REPO DIGEST SIZE FILE [on|off|auto] [layer|stream]');
  }
  const size = Number(sizeText);
  const client = new RegistryClient({
    registry: parseRegistryOptions({ insecureRegistry: [host] }, {}),
    credentials: createCredentialStore({ env: {} }),
    ...(hashThread === 'auto' ? {} : { hashThread: hashThread === 'on' }),
  });
  const ref = parseReference(`${host}/${repo}`);
  // A pull asks for the manifest before any blob, and that first request is where kiln finds
  // out how to talk to the registry (an insecure one is tried over https first, as kaniko
  // does). The blob's time starts after such a first request, as in a real pull.
  await client.headBlob(ref, digest, mode);
  const started = performance.now();
  if (mode === 'pull' && via === 'layer') {
    const layer = registryLayer(client, ref, { mediaType: MediaType.ociLayerGzip, digest, size }, digest);
    await writeBlobFile(file, digest, size, layer);
  } else if (mode === 'pull') {
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
