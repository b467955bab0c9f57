import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RegistryClient } from '../../src/registry/client.js';
import { createCredentialStore } from '../../src/registry/credentials.js';
import { parseRegistryOptions } from '../../src/registry/endpoints.js';
import { parseReference } from '../../src/registry/reference.js';
import { sha256 } from '../../src/oci/digest.js';
import { isKilnError } from '../../src/util/errors.js';
import { startFakeServer, startRedirectingRegistry } from './fake-server.js';

// Blobs of 1 MiB and more take the bulk download path (large socket reads, hashing on a
// worker thread); these tests hold it to the same contract as the small-blob path.

function clientFor(host: string, hashThread?: boolean) {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-cfg-'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths: { [host]: { auth: Buffer.from('alice:pw').toString('base64') } } }));
  return new RegistryClient({
    registry: parseRegistryOptions({ insecureRegistry: [host] }, {}),
    credentials: createCredentialStore({ env: { DOCKER_CONFIG: dir } }),
    retry: { retries: 3, baseDelayMs: 1, maxDelayMs: 5 },
    hashThread,
  });
}

const sink = () => new Writable({ write(_c, _e, cb) { cb(); } });

for (const hashThread of [false, true]) {
  test(`a large blob read in slabs (hash thread: ${hashThread}) is verified: whole when right, refused when tampered`, async (t) => {
    const blob = Buffer.alloc(6 * 1024 * 1024, 'k');
    const tampered = Buffer.from(blob);
    tampered[blob.length - 2] = 0x21;
    const server = await startFakeServer((req, res) => {
      res.writeHead(200, { 'content-length': String(blob.length) });
      res.end(req.path.includes('tampered') ? tampered : blob);
    });
    t.after(() => server.close());
    const client = clientFor(server.host, hashThread);
    t.after(() => client.close());
    const chunks: Buffer[] = [];
    await pipeline(await client.getBlob(parseReference(`${server.host}/app`), { digest: sha256(blob), size: blob.length }), new Writable({ write(c, _e, cb) { chunks.push(c); cb(); } }));
    assert.ok(Buffer.concat(chunks).equals(blob));
    const stream = await client.getBlob(parseReference(`${server.host}/tampered`), { digest: sha256(blob), size: blob.length });
    await assert.rejects(pipeline(stream, sink()), (err) => isKilnError(err, 'DIGEST_MISMATCH'));
  });
}

test('a large blob behind a challenge and a redirect: credentials stay home, bytes arrive whole', async (t) => {
  const blob = Buffer.alloc(5 * 1024 * 1024, 'r');
  const { registry: server, storage } = await startRedirectingRegistry(t, blob);
  const client = clientFor(server.host);
  t.after(() => client.close());
  let received = 0;
  await pipeline(await client.getBlob(parseReference(`${server.host}/app`), { digest: sha256(blob), size: blob.length }), new Writable({ write(c, _e, cb) { received += c.length; cb(); } }));
  assert.equal(received, blob.length);
  assert.deepEqual(server.lines(), ['GET /v2/app/blobs/' + sha256(blob), 'GET /v2/app/blobs/' + sha256(blob)]);
  assert.deepEqual(storage.lines(), ['GET /signed/blob?sig=abc']);
  assert.equal(storage.requests[0]!.authorization, undefined);
});

test('a large blob of unknown size is fetched and verified too', async (t) => {
  const blob = Buffer.alloc(3 * 1024 * 1024, 'u');
  const server = await startFakeServer((_req, res) => { res.writeHead(200); res.write(blob.subarray(0, 1000)); res.end(blob.subarray(1000)); });
  t.after(() => server.close());
  const client = clientFor(server.host, true);
  t.after(() => client.close());
  await pipeline(await client.getBlob(parseReference(`${server.host}/app`), { digest: sha256(blob) }), sink());
  await assert.rejects(
    pipeline(await client.getBlob(parseReference(`${server.host}/app`), { digest: sha256('other') }), sink()),
    (err) => isKilnError(err, 'DIGEST_MISMATCH'),
  );
});
