import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { bulkGet, lendBody } from '../../src/registry/bulk-get.js';
import { startBlobServer, startChunkedServer, startRawServer } from './fake-server.js';

// A lent body (bulk-get.ts, body-outlet.ts) reads into a ring of reused slots and hands each
// chunk to a sink that must be done with it before its memory is read into again.

function get(url: string) {
  return bulkGet({ url, headers: {}, tls: {}, timeoutMs: 5_000 });
}

/** A sink that copies what it is lent into place and records how it was called. */
function recordingSink(size: number, options: { concurrency?: number; delayMs?: number } = {}) {
  const bytes = Buffer.alloc(size);
  const memory = new Set<ArrayBufferLike>();
  const positions: number[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let received = 0;
  return {
    bytes,
    memory,
    positions,
    received: () => received,
    maxInFlight: () => maxInFlight,
    sink: {
      concurrency: options.concurrency ?? 1,
      async write(chunk: Buffer, position: number) {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        memory.add(chunk.buffer);
        positions.push(position);
        if (options.delayMs) await sleep(options.delayMs);
        // Copied only now: a slot reused too early would show here as wrong bytes.
        chunk.copy(bytes, position);
        received += chunk.length;
        inFlight--;
      },
    },
  };
}

const inspectNothing = () => undefined;

test('a large body is lent whole, in order, through a few slots read into again and again', async (t) => {
  const blob = randomBytes(40 * 1024 * 1024 + 3);
  const server = await startBlobServer(t, blob);
  const response = await get(`${server.url}/blob`);
  const recorder = recordingSink(blob.length, { delayMs: 1 });
  let inspected = 0;
  await lendBody(response.body, { inspect: (chunk) => { inspected += chunk.length; }, sink: recorder.sink });
  assert.ok(recorder.bytes.equals(blob));
  assert.equal(recorder.received(), blob.length);
  assert.equal(inspected, blob.length);
  assert.deepEqual(recorder.positions, [...recorder.positions].sort((a, b) => a - b));
  assert.equal(recorder.maxInFlight(), 1);
  // 40 MiB in chunks of at most a slot (1 MiB), through a ring of 8 slots; besides those,
  // only what arrived before the body was lent (a slab or two) is memory of its own.
  assert.ok(recorder.positions.length >= 30);
  assert.ok(recorder.memory.size <= 11, `${recorder.memory.size} different buffers`);
});

test('a sink that takes several chunks at once gets each byte once, and never more calls than it allows', async (t) => {
  const blob = randomBytes(30 * 1024 * 1024);
  const server = await startBlobServer(t, blob);
  const response = await get(`${server.url}/blob`);
  const recorder = recordingSink(blob.length, { concurrency: 3, delayMs: 5 });
  await lendBody(response.body, { inspect: inspectNothing, sink: recorder.sink });
  assert.ok(recorder.bytes.equals(blob));
  assert.equal(recorder.received(), blob.length);
  assert.ok(recorder.maxInFlight() <= 3);
  assert.ok(recorder.maxInFlight() > 1, 'the sink was never given a second chunk while it worked on one');
});

test('inspect sees the bytes in order, each before the sink gets it', async (t) => {
  const blob = randomBytes(9 * 1024 * 1024);
  const server = await startBlobServer(t, blob);
  const response = await get(`${server.url}/blob`);
  const seen: Buffer[] = [];
  let inspected = 0;
  let sunk = 0;
  await lendBody(response.body, {
    inspect: (chunk) => {
      seen.push(Buffer.from(chunk));
      inspected += chunk.length;
    },
    sink: {
      write: (chunk, position) => {
        assert.equal(position, sunk);
        sunk += chunk.length;
        assert.ok(sunk <= inspected, 'the sink got bytes not inspected yet');
      },
    },
  });
  assert.ok(Buffer.concat(seen).equals(blob));
  assert.equal(sunk, blob.length);
});

test('a chunked body is lent without its framing', async (t) => {
  const parts = [randomBytes(100), randomBytes(3 * 1024 * 1024), randomBytes(70_000), randomBytes(5)];
  const blob = Buffer.concat(parts);
  const server = await startChunkedServer(t, parts);
  const response = await get(`${server.url}/blob`);
  const recorder = recordingSink(blob.length);
  await lendBody(response.body, { inspect: inspectNothing, sink: recorder.sink });
  assert.ok(recorder.bytes.equals(blob));
  assert.equal(recorder.received(), blob.length);
});

test('bytes that arrived before the body was lent are lent first', async (t) => {
  const blob = randomBytes(300_000);
  const server = await startBlobServer(t, blob);
  const response = await get(`${server.url}/blob`);
  await sleep(100);
  const recorder = recordingSink(blob.length);
  await lendBody(response.body, { inspect: inspectNothing, sink: recorder.sink });
  assert.ok(recorder.bytes.equals(blob));
});

test('a slow registry: what arrived reaches the sink without waiting for a full slot', async (t) => {
  let sendFirst: (() => void) | undefined;
  let sendRest: (() => void) | undefined;
  const server = await startRawServer((socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n');
    sendFirst = () => socket.write('a'.repeat(1000));
    sendRest = () => socket.end('b'.repeat(1000));
  });
  t.after(() => server.close());
  const response = await get(`${server.url}/blob`);
  const chunks: string[] = [];
  const lent = lendBody(response.body, {
    inspect: inspectNothing,
    sink: {
      write(chunk) {
        chunks.push(chunk.toString());
        // The registry sends the rest only once the first part has reached the sink.
        sendRest?.();
        sendRest = undefined;
      },
    },
  })!;
  sendFirst!();
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error('the first bytes never reached the sink')), 4_000);
  });
  try {
    await Promise.race([lent, stuck]);
  } finally {
    clearTimeout(timer);
  }
  assert.equal(chunks.join(''), 'a'.repeat(1000) + 'b'.repeat(1000));
  assert.equal(chunks[0], 'a'.repeat(1000));
});

test('a failing sink fails the lend with its error and closes the connection', async (t) => {
  let closed!: () => void;
  const connectionClosed = new Promise<void>((resolve) => { closed = resolve; });
  const server = await startRawServer((socket) => {
    socket.on('close', () => closed());
    socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${64 << 20}\r\n\r\n`);
    const block = Buffer.alloc(1 << 20);
    const pump = () => { while (!socket.destroyed && socket.write(block)); };
    socket.on('drain', pump);
    pump();
  });
  t.after(() => server.close());
  const response = await get(`${server.url}/blob`);
  let calls = 0;
  const failure = new Error('disk full');
  await assert.rejects(lendBody(response.body, { inspect: inspectNothing, sink: { write: async () => { if (++calls === 2) throw failure; } } })!, (err) => err === failure);
  await connectionClosed;
});

test('an inspector that throws fails the lend with its error', async (t) => {
  const blob = randomBytes(5 * 1024 * 1024);
  const server = await startBlobServer(t, blob);
  const response = await get(`${server.url}/blob`);
  const refused = new Error('too large');
  await assert.rejects(lendBody(response.body, { inspect: () => { throw refused; }, sink: { write: () => undefined } })!, (err) => err === refused);
});

test('a connection closed before the whole body came fails the lend', async (t) => {
  const server = await startRawServer((socket) => {
    socket.end(`HTTP/1.1 200 OK\r\nContent-Length: 5000000\r\n\r\n${'x'.repeat(100_000)}`);
  });
  t.after(() => server.close());
  const response = await get(`${server.url}/blob`);
  await assert.rejects(lendBody(response.body, { inspect: inspectNothing, sink: { write: () => undefined } })!, (err: NodeJS.ErrnoException) => err.code === 'UND_ERR_SOCKET');
});

test('only bodies from bulkGet can be lent', () => {
  assert.equal(lendBody(Readable.from([Buffer.from('x')]), { inspect: inspectNothing, sink: { write: () => undefined } }), undefined);
});
