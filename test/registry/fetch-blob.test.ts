import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegistryClient, type BlobSink } from '../../src/registry/client.js';
import { createCredentialStore } from '../../src/registry/credentials.js';
import { parseRegistryOptions } from '../../src/registry/endpoints.js';
import { fileSink } from '../../src/oci/file-sink.js';
import { parseReference } from '../../src/registry/reference.js';
import { registryLayer } from '../../src/registry/remote.js';
import { writeBlobFile } from '../../src/oci/blob-file.js';
import { DigestVerifier, sha256 } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import { isKilnError } from '../../src/util/errors.js';
import { json, startFakeServer, startRedirectingRegistry } from './fake-server.js';

// RegistryClient.fetchBlob: a blob handed to a sink in lent memory, verified as it comes.

function tempDir(t: TestContext, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function clientFor(t: TestContext, host: string, hashThread?: boolean) {
  const dir = tempDir(t, 'kiln-cfg-');
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths: { [host]: { auth: Buffer.from('alice:pw').toString('base64') } } }));
  const client = new RegistryClient({
    registry: parseRegistryOptions({ insecureRegistry: [host] }, {}),
    credentials: createCredentialStore({ env: { DOCKER_CONFIG: dir } }),
    retry: { retries: 1, baseDelayMs: 1, maxDelayMs: 5 },
    ...(hashThread !== undefined ? { hashThread } : {}),
  });
  t.after(() => client.close());
  return client;
}

/** A sink that keeps a copy of what it was lent. */
function copyingSink(): { sink: BlobSink; bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  return { sink: { write: (chunk) => { chunks.push(Buffer.from(chunk)); } }, bytes: () => Buffer.concat(chunks) };
}

/** Serves `blobs` by path: /v2/<repo>/blobs/<anything> answers blobs[repo]. */
async function blobServer(blobs: Record<string, Buffer>) {
  return startFakeServer((req, res) => {
    const repo = req.path.split('/')[2]!;
    const blob = blobs[repo];
    if (!blob) return json(res, 404, { errors: [{ code: 'BLOB_UNKNOWN' }] });
    res.writeHead(200, { 'content-length': String(blob.length) });
    res.end(blob);
  });
}

for (const [label, size, hashThread] of [
  ['a large blob', 6 * 1024 * 1024 + 11, undefined],
  ['a large blob hashed on the calling thread', 6 * 1024 * 1024 + 11, false],
  ['a small blob', 300_000, undefined],
] as const) {
  test(`${label} reaches the sink whole when right, and is refused when tampered`, async (t) => {
    const blob = randomBytes(size);
    const tampered = Buffer.from(blob);
    tampered[size - 5]! ^= 1;
    const server = await blobServer({ app: blob, tampered });
    t.after(() => server.close());
    const client = clientFor(t, server.host, hashThread);
    const good = copyingSink();
    await client.fetchBlob(parseReference(`${server.host}/app`), { digest: sha256(blob), size }, good.sink);
    assert.ok(good.bytes().equals(blob));
    const bad = copyingSink();
    await assert.rejects(
      client.fetchBlob(parseReference(`${server.host}/tampered`), { digest: sha256(blob), size }, bad.sink),
      (err) => isKilnError(err, 'DIGEST_MISMATCH') && err.message.includes(`blob ${sha256(blob)} from ${server.host}/tampered`),
    );
  });
}

test('a blob larger than its descriptor says is refused before the sink gets the excess', async (t) => {
  const blob = randomBytes(8 * 1024 * 1024);
  const server = await blobServer({ app: blob });
  t.after(() => server.close());
  const client = clientFor(t, server.host);
  const declared = 3 * 1024 * 1024;
  let received = 0;
  await assert.rejects(
    client.fetchBlob(parseReference(`${server.host}/app`), { digest: sha256(blob), size: declared }, { write: (chunk) => { received += chunk.length; } }),
    (err) => isKilnError(err, 'SIZE_MISMATCH'),
  );
  assert.ok(received <= declared, `the sink got ${received} bytes`);
});

test('a blob shorter than its descriptor says is refused at its end', async (t) => {
  const blob = randomBytes(2 * 1024 * 1024);
  const server = await blobServer({ app: blob });
  t.after(() => server.close());
  const client = clientFor(t, server.host);
  await assert.rejects(
    client.fetchBlob(parseReference(`${server.host}/app`), { digest: sha256(blob), size: blob.length + 1 }, copyingSink().sink),
    (err) => isKilnError(err, 'SIZE_MISMATCH'),
  );
});

test('a blob behind a challenge and a redirect: credentials stay home, bytes arrive whole', async (t) => {
  const blob = randomBytes(5 * 1024 * 1024);
  const { registry: server, storage } = await startRedirectingRegistry(t, blob);
  const client = clientFor(t, server.host);
  const copy = copyingSink();
  await client.fetchBlob(parseReference(`${server.host}/app`), { digest: sha256(blob), size: blob.length }, copy.sink);
  assert.ok(copy.bytes().equals(blob));
  assert.deepEqual(storage.lines(), ['GET /signed/blob?sig=abc']);
  assert.equal(storage.requests[0]!.authorization, undefined);
});

test('an unknown blob fails with the registry\'s answer, and an invalid digest before any request', async (t) => {
  const server = await blobServer({});
  t.after(() => server.close());
  const client = clientFor(t, server.host);
  await assert.rejects(client.fetchBlob(parseReference(`${server.host}/app`), { digest: sha256('x'), size: 1 << 20 }, copyingSink().sink), (err) => isKilnError(err));
  const requests = server.requests.length;
  await assert.rejects(client.fetchBlob(parseReference(`${server.host}/app`), { digest: 'sha256:nope' }, copyingSink().sink), (err) => isKilnError(err, 'INVALID_DIGEST'));
  assert.equal(server.requests.length, requests);
});

test('fileSink writes the blob into a file from the given offset, several writes at once', async (t) => {
  const blob = randomBytes(13 * 1024 * 1024 + 7);
  const server = await blobServer({ app: blob });
  t.after(() => server.close());
  const client = clientFor(t, server.host);
  const path = join(tempDir(t, 'kiln-sink-'), 'blob');
  writeFileSync(path, 'head:');
  const file = await open(path, 'r+');
  try {
    await client.fetchBlob(parseReference(`${server.host}/app`), { digest: sha256(blob) }, fileSink(file, 5));
  } finally {
    await file.close();
  }
  const written = readFileSync(path);
  assert.equal(written.subarray(0, 5).toString(), 'head:');
  assert.ok(written.subarray(5).equals(blob));
});

test('DigestVerifier checks content fed in pieces, like VerifyingStream', () => {
  const data = randomBytes(100_000);
  const right = new DigestVerifier(sha256(data), data.length, 'the thing');
  for (let at = 0; at < data.length; at += 7_000) right.update(data.subarray(at, at + 7_000));
  assert.equal(right.size, data.length);
  right.finish();

  const wrong = new DigestVerifier(sha256('other'), undefined, 'the thing');
  wrong.update(data);
  assert.throws(() => wrong.finish(), (err) => isKilnError(err, 'DIGEST_MISMATCH') && err.message.startsWith('the thing does not match'));

  const short = new DigestVerifier(sha256(data), data.length + 1, 'the thing');
  short.update(data);
  assert.throws(() => short.finish(), (err) => isKilnError(err, 'SIZE_MISMATCH'));

  const long = new DigestVerifier(sha256(data), 10, 'the thing');
  assert.throws(() => long.update(data), (err) => isKilnError(err, 'SIZE_MISMATCH'));
  assert.throws(() => new DigestVerifier('md5:abc', 1, 'the thing'), (err) => isKilnError(err, 'INVALID_DIGEST'));
});

test('a registry layer writes itself into a file with fetchBlob; a tampered one is refused and the file removed', async (t) => {
  const blob = randomBytes(3 * 1024 * 1024 + 5);
  const tampered = Buffer.from(blob);
  tampered[1234]! ^= 0x10;
  const server = await blobServer({ app: blob, tampered });
  t.after(() => server.close());
  const client = clientFor(t, server.host);
  const dir = tempDir(t, 'kiln-layer-');
  const descriptor = { mediaType: MediaType.ociLayerGzip, digest: sha256(blob), size: blob.length };
  const layer = registryLayer(client, parseReference(`${server.host}/app`), descriptor, sha256('tar'));
  assert.equal(typeof layer.writeTo, 'function');
  await writeBlobFile(join(dir, 'good'), layer.digest, layer.size, layer);
  assert.ok(readFileSync(join(dir, 'good')).equals(blob));

  const liar = registryLayer(client, parseReference(`${server.host}/tampered`), descriptor, sha256('tar'));
  await assert.rejects(writeBlobFile(join(dir, 'bad'), liar.digest, liar.size, liar), (err) => isKilnError(err, 'DIGEST_MISMATCH'));
  assert.deepEqual(readdirSync(dir), ['good']);
});

test('aborting fetchBlob closes the download and rejects with the reason once no write is in flight', async (t) => {
  const blob = randomBytes(16 * 1024 * 1024);
  const server = await startFakeServer((_req, res) => {
    res.writeHead(200, { 'content-length': String(blob.length) });
    // A slow registry: a quarter of the blob, then nothing more for a long while.
    res.write(blob.subarray(0, blob.length / 4));
    setTimeout(() => res.end(blob.subarray(blob.length / 4)), 10_000).unref();
  });
  t.after(() => server.close());
  const client = clientFor(t, server.host);
  const stop = new AbortController();
  let inFlight = 0;
  let received = 0;
  const started = performance.now();
  const fetching = client.fetchBlob(parseReference(`${server.host}/app`), { digest: sha256(blob), size: blob.length }, {
    concurrency: 2,
    write: async (chunk) => {
      inFlight++;
      received += chunk.length;
      if (received >= 1 << 20) stop.abort(new Error('no longer wanted'));
      await new Promise((resolve) => setTimeout(resolve, 20));
      inFlight--;
    },
  }, { signal: stop.signal });
  await assert.rejects(fetching, /no longer wanted/);
  assert.equal(inFlight, 0);
  assert.ok(performance.now() - started < 5_000, 'the download did not wait for the rest of the blob');
  await assert.rejects(client.fetchBlob(parseReference(`${server.host}/app`), { digest: sha256(blob) }, copyingSink().sink, { signal: stop.signal }), /no longer wanted/);
});
