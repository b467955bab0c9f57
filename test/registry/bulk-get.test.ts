import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { bulkGet } from '../../src/registry/bulk-get.js';
import { startFakeServer, startBlobServer, startChunkedServer, startRawServer } from './fake-server.js';

const collect = () => {
  const chunks: Buffer[] = [];
  const sink = new Writable({ write(chunk, _e, cb) { chunks.push(Buffer.from(chunk)); cb(); } });
  return { sink, bytes: () => Buffer.concat(chunks) };
};

function get(url: string, headers: Record<string, string> = {}) {
  return bulkGet({ url, headers, tls: {}, timeoutMs: 5_000 });
}

test('a Content-Length body arrives whole, with status, headers and the request headers sent', async (t) => {
  const blob = randomBytes(5 * 1024 * 1024 + 7);
  const server = await startFakeServer((_req, res) => {
    res.writeHead(200, { 'content-length': String(blob.length), 'docker-content-digest': 'sha256:x' });
    res.end(blob);
  });
  t.after(() => server.close());
  const response = await get(`${server.url}/v2/app/blobs/sha256:x?a=1`, { 'user-agent': 'kiln', authorization: 'Bearer t' });
  assert.equal(response.status, 200);
  assert.equal(response.headers['docker-content-digest'], 'sha256:x');
  const { sink, bytes } = collect();
  await pipeline(response.body, sink);
  assert.ok(bytes().equals(blob));
  assert.equal(server.requests[0]!.path, '/v2/app/blobs/sha256:x?a=1');
  assert.equal(server.requests[0]!.authorization, 'Bearer t');
  assert.equal(server.requests[0]!.headers['user-agent'], 'kiln');
});

test('a chunked body is decoded', async (t) => {
  const parts = [randomBytes(100), randomBytes(70_000), randomBytes(3)];
  const server = await startChunkedServer(t, parts);
  const response = await get(`${server.url}/blob`);
  assert.match(String(response.headers['transfer-encoding']), /chunked/);
  const { sink, bytes } = collect();
  await pipeline(response.body, sink);
  assert.ok(bytes().equals(Buffer.concat(parts)));
});

test('a body without length ends when the connection closes; interim 100 responses are skipped', async (t) => {
  const server = await startRawServer((socket) => {
    socket.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX-Kind: close\r\n\r\nhello ');
    setTimeout(() => socket.end('world'), 20);
  });
  t.after(() => server.close());
  const response = await get(`${server.url}/blob`);
  assert.equal(response.status, 200);
  assert.equal(response.headers['x-kind'], 'close');
  const { sink, bytes } = collect();
  await pipeline(response.body, sink);
  assert.equal(bytes().toString(), 'hello world');
});

test('a connection closed before Content-Length bytes arrived fails the body', async (t) => {
  const server = await startRawServer((socket) => {
    socket.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly some bytes');
  });
  t.after(() => server.close());
  const response = await get(`${server.url}/blob`);
  await assert.rejects(pipeline(response.body, collect().sink), (err: NodeJS.ErrnoException) => err.code === 'UND_ERR_SOCKET');
});

test('bytes past Content-Length are not part of the body', async (t) => {
  const server = await startRawServer((socket) => {
    socket.end('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntoo long');
  });
  t.after(() => server.close());
  const response = await get(`${server.url}/blob`);
  const { sink, bytes } = collect();
  await pipeline(response.body, sink);
  assert.equal(bytes().toString(), 'too');
});

test('an error answer can be read as text or dumped', async (t) => {
  const server = await startFakeServer((req, res) => {
    res.writeHead(req.path === '/text' ? 404 : 401, { 'content-type': 'application/json' });
    res.end('{"errors":[{"code":"BLOB_UNKNOWN"}]}');
  });
  t.after(() => server.close());
  const notFound = await get(`${server.url}/text`);
  assert.equal(notFound.status, 404);
  assert.equal(await notFound.body.text(), '{"errors":[{"code":"BLOB_UNKNOWN"}]}');
  const unauthorized = await get(`${server.url}/dump`);
  assert.equal(unauthorized.status, 401);
  await unauthorized.body.dump();
});

test('a slow reader pauses the socket and still gets every byte', async (t) => {
  const blob = randomBytes(24 * 1024 * 1024);
  const server = await startBlobServer(t, blob);
  const response = await get(`${server.url}/blob`);
  const chunks: Buffer[] = [];
  const slow = new Writable({
    highWaterMark: 1,
    write(chunk, _e, cb) { chunks.push(Buffer.from(chunk)); setTimeout(cb, 2); },
  });
  await pipeline(response.body, slow);
  assert.ok(Buffer.concat(chunks).equals(blob));
});

test('a refused connection rejects with its network code', async () => {
  const server = await startRawServer(() => undefined);
  const url = server.url;
  await server.close();
  await assert.rejects(get(`${url}/blob`), (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED');
});
