import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RegistryClient } from '../../src/registry/client.js';
import { createCredentialStore } from '../../src/registry/credentials.js';
import { parseRegistryOptions } from '../../src/registry/endpoints.js';
import { parseReference } from '../../src/registry/reference.js';
import { sha256 } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import { isKilnError } from '../../src/util/errors.js';
import { json, startFakeServer } from './fake-server.js';

const PASSWORD = 's3cret-pass';
const configDirs: string[] = [];
after(() => { for (const dir of configDirs) rmSync(dir, { recursive: true, force: true }); });

function clientFor(host: string, options: { auth?: boolean; retries?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-cfg-'));
  configDirs.push(dir);
  const auths = options.auth === false ? {} : { [host]: { auth: Buffer.from(`alice:${PASSWORD}`).toString('base64') } };
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths }));
  return new RegistryClient({
    registry: parseRegistryOptions({ insecureRegistry: [host] }, {}),
    credentials: createCredentialStore({ env: { DOCKER_CONFIG: dir } }),
    retry: { retries: options.retries ?? 3, baseDelayMs: 1, maxDelayMs: 5 },
  });
}

const sink = () => new Writable({ write(_c, _e, cb) { cb(); } });

test('bearer challenge: token fetched once with basic credentials, then reused', async (t) => {
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: { mediaType: MediaType.ociConfig, digest: sha256('{}'), size: 2 }, layers: [] }));
  const server = await startFakeServer((req, res) => {
    if (req.path.startsWith('/token')) return json(res, 200, { token: 'tok-1', expires_in: 300 });
    if (req.authorization !== 'Bearer tok-1') {
      return json(res, 401, { errors: [{ code: 'UNAUTHORIZED' }] }, { 'www-authenticate': `Bearer realm="${server.url}/token",service="fake",scope="repository:app:pull"` });
    }
    res.writeHead(200, { 'content-type': MediaType.ociManifest });
    res.end(manifest);
  });
  t.after(() => server.close());
  const client = clientFor(server.host);
  t.after(() => client.close());
  const ref = parseReference(`${server.host}/app:v1`);
  const first = await client.getManifest(ref);
  await client.getManifest(ref);
  assert.equal(first.digest, sha256(manifest));
  assert.equal(first.mediaType, MediaType.ociManifest);
  assert.deepEqual(server.lines(), [
    'GET /v2/app/manifests/v1',
    'GET /token?service=fake&scope=repository%3Aapp%3Apull',
    'GET /v2/app/manifests/v1',
    'GET /v2/app/manifests/v1',
  ]);
  assert.equal(server.requests[1]!.authorization, 'Basic ' + Buffer.from(`alice:${PASSWORD}`).toString('base64'));
});

test('wrong credentials give one sentence that never shows the password', async (t) => {
  const server = await startFakeServer((req, res) => {
    if (req.path.startsWith('/token')) return json(res, 401, { details: 'bad' });
    json(res, 401, {}, { 'www-authenticate': `Bearer realm="${server.url}/token",service="fake"` });
  });
  t.after(() => server.close());
  const client = clientFor(server.host);
  t.after(() => client.close());
  await assert.rejects(client.getManifest(parseReference(`${server.host}/app:v1`)), (err) => {
    assert.ok(isKilnError(err, 'REGISTRY_AUTH'));
    assert.ok(!err.message.includes(PASSWORD));
    assert.match(err.message, /rejected the credentials/);
    return true;
  });
});

test('basic challenge without credentials asks for them in one sentence', async (t) => {
  const server = await startFakeServer((req, res) => {
    if (!req.authorization) return json(res, 401, {}, { 'www-authenticate': 'Basic realm="r"' });
    json(res, 200, {});
  });
  t.after(() => server.close());
  const client = clientFor(server.host, { auth: false });
  t.after(() => client.close());
  await assert.rejects(client.getManifest(parseReference(`${server.host}/app:v1`)), (err) => isKilnError(err, 'REGISTRY_AUTH') && /requires credentials/.test(err.message));
});

test('503 twice, then success: the request is retried', async (t) => {
  let failures = 0;
  const blob = Buffer.from('blob content');
  const server = await startFakeServer((_req, res) => {
    if (failures++ < 2) return json(res, 503, { errors: [{ code: 'UNAVAILABLE' }] });
    res.writeHead(200, { 'content-length': String(blob.length) });
    res.end(blob);
  });
  t.after(() => server.close());
  const client = clientFor(server.host);
  t.after(() => client.close());
  const stream = await client.getBlob(parseReference(`${server.host}/app`), { digest: sha256(blob), size: blob.length });
  await pipeline(stream, sink());
  assert.equal(server.requests.length, 3);
});

test('a 429 with Retry-After is retried; retries are bounded', async (t) => {
  const server = await startFakeServer((_req, res) => json(res, 429, {}, { 'retry-after': '0' }));
  t.after(() => server.close());
  const client = clientFor(server.host, { retries: 2 });
  t.after(() => client.close());
  await assert.rejects(client.headManifest(parseReference(`${server.host}/app:v1`)), (err) => isKilnError(err, 'REGISTRY_PROTOCOL') && /HTTP 429/.test(err.message));
  assert.equal(server.requests.length, 3);
});

test('a blob whose bytes do not match its digest is refused', async (t) => {
  const server = await startFakeServer((_req, res) => { res.writeHead(200); res.end('tampered'); });
  t.after(() => server.close());
  const client = clientFor(server.host);
  t.after(() => client.close());
  const stream = await client.getBlob(parseReference(`${server.host}/app`), { digest: sha256('original'), size: 8 });
  await assert.rejects(pipeline(stream, sink()), (err) => isKilnError(err, 'DIGEST_MISMATCH'));
});

test('an unreachable registry gives one sentence naming it', async (t) => {
  const server = await startFakeServer(() => undefined);
  const host = server.host;
  await server.close();
  const client = clientFor(host, { retries: 1 });
  t.after(() => client.close());
  await assert.rejects(client.getManifest(parseReference(`${host}/app:v1`)), (err) => {
    assert.ok(isKilnError(err, 'REGISTRY_UNREACHABLE'));
    assert.match(err.message, new RegExp(`cannot reach ${host.replace('.', '\\.')}`));
    assert.ok(!err.message.includes('\n'));
    return true;
  });
});

test('a redirect to another origin does not carry the credentials', async (t) => {
  const storage = await startFakeServer((_req, res) => { res.writeHead(200); res.end('data'); });
  t.after(() => storage.close());
  const server = await startFakeServer((req, res) => {
    if (!req.authorization) return json(res, 401, {}, { 'www-authenticate': 'Basic realm="r"' });
    res.writeHead(307, { location: `${storage.url}/signed/blob?sig=abc` });
    res.end();
  });
  t.after(() => server.close());
  const client = clientFor(server.host);
  t.after(() => client.close());
  await pipeline(await client.getBlob(parseReference(`${server.host}/app`), { digest: sha256('data'), size: 4 }), sink());
  assert.deepEqual(storage.lines(), ['GET /signed/blob?sig=abc']);
  assert.equal(storage.requests[0]!.authorization, undefined);
});

test('monolithic upload: HEAD, POST, PUT with the digest; body arrives whole', async (t) => {
  const blob = Buffer.from('x'.repeat(1000));
  const digest = sha256(blob);
  const server = await startFakeServer((req, res) => {
    if (req.method === 'HEAD') { res.writeHead(404); return res.end(); }
    if (req.method === 'POST') { res.writeHead(202, { location: '/v2/app/blobs/uploads/u1?_state=abc' }); return res.end(); }
    res.writeHead(201, { 'docker-content-digest': digest });
    res.end();
  });
  t.after(() => server.close());
  const client = clientFor(server.host);
  t.after(() => client.close());
  const result = await client.uploadBlob(parseReference(`${server.host}/app`), { digest, size: blob.length, open: async () => Readable.from([blob]) });
  assert.deepEqual(result, { kind: 'uploaded', bytes: 1000 });
  assert.deepEqual(server.lines(), [
    `HEAD /v2/app/blobs/${digest}`,
    'POST /v2/app/blobs/uploads/',
    `PUT /v2/app/blobs/uploads/u1?_state=abc&digest=${encodeURIComponent(digest)}`,
  ]);
  assert.deepEqual(server.requests[2]!.body, blob);
});

test('a blob already present is not uploaded again', async (t) => {
  const server = await startFakeServer((_req, res) => { res.writeHead(200, { 'content-length': '5' }); res.end(); });
  t.after(() => server.close());
  const client = clientFor(server.host);
  t.after(() => client.close());
  const result = await client.uploadBlob(parseReference(`${server.host}/app`), { digest: sha256('hello'), size: 5, open: async () => { throw new Error('must not open'); } });
  assert.deepEqual(result, { kind: 'exists' });
  assert.equal(server.requests.length, 1);
});

test('cross-repository mount: one POST with mount and from, nothing uploaded', async (t) => {
  const digest = sha256('shared');
  const server = await startFakeServer((req, res) => {
    if (req.method === 'HEAD') { res.writeHead(404); return res.end(); }
    res.writeHead(201, { location: `/v2/app/blobs/${digest}` });
    res.end();
  });
  t.after(() => server.close());
  const client = clientFor(server.host);
  t.after(() => client.close());
  const result = await client.uploadBlob(parseReference(`${server.host}/app`), { digest, size: 6, open: async () => { throw new Error('must not open'); } }, { mountFrom: 'base/img' });
  assert.deepEqual(result, { kind: 'mounted', from: 'base/img' });
  assert.deepEqual(server.lines(), [`HEAD /v2/app/blobs/${digest}`, `POST /v2/app/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=base%2Fimg`]);
});

test('chunked upload sends consecutive ranges then the closing PUT', async (t) => {
  const blob = Buffer.from('abcdefghij');
  const digest = sha256(blob);
  const server = await startFakeServer((req, res) => {
    if (req.method === 'HEAD') { res.writeHead(404); return res.end(); }
    if (req.method === 'POST' || req.method === 'PATCH') { res.writeHead(202, { location: `/v2/app/blobs/uploads/u1?n=${server.requests.length}` }); return res.end(); }
    res.writeHead(201);
    res.end();
  });
  t.after(() => server.close());
  const client = clientFor(server.host);
  t.after(() => client.close());
  await client.uploadBlob(parseReference(`${server.host}/app`), { digest, size: blob.length, open: async () => Readable.from([blob.subarray(0, 3), blob.subarray(3)]) }, { chunkSize: 4 });
  const patches = server.requests.filter((r) => r.method === 'PATCH');
  assert.deepEqual(patches.map((r) => r.headers['content-range']), ['0-3', '4-7', '8-9']);
  assert.equal(Buffer.concat(patches.map((r) => r.body)).toString(), 'abcdefghij');
  assert.equal(server.lines().at(-1), `PUT /v2/app/blobs/uploads/u1?n=5&digest=${encodeURIComponent(digest)}`);
});

test('manifest PUT returns the digest and refuses a registry that stored something else', async (t) => {
  const raw = Buffer.from('{"schemaVersion":2}');
  let answer = sha256(raw);
  const server = await startFakeServer((_req, res) => { res.writeHead(201, { 'docker-content-digest': answer }); res.end(); });
  t.after(() => server.close());
  const client = clientFor(server.host);
  t.after(() => client.close());
  const ref = parseReference(`${server.host}/app:v2`);
  assert.equal(await client.putManifest(ref, raw, MediaType.ociManifest), sha256(raw));
  assert.equal(server.requests[0]!.headers['content-type'], MediaType.ociManifest);
  assert.equal(server.lines()[0], 'PUT /v2/app/manifests/v2');
  answer = sha256('other');
  await assert.rejects(client.putManifest(ref, raw, MediaType.ociManifest), (err) => isKilnError(err, 'REGISTRY_PROTOCOL'));
});

