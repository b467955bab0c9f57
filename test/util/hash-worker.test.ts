import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { HashWorker } from '../../src/util/hash-worker.js';
import { isKilnError } from '../../src/util/errors.js';

const hex = (algorithm: string, data: Buffer): string => createHash(algorithm).update(data).digest('hex');

/** Feeds `data` in uneven pieces, waiting whenever the worker asks to. */
async function hashInPieces(worker: HashWorker, algorithm: string, data: Buffer): Promise<string> {
  const session = worker.start(algorithm);
  const sizes = [1, 1000, 65_536, 3 * 1024 * 1024 + 5, 17];
  for (let offset = 0, i = 0; offset < data.length; i++) {
    const piece = data.subarray(offset, offset + sizes[i % sizes.length]!);
    offset += piece.length;
    const pending = session.update(piece);
    if (pending) await pending;
  }
  return session.digest();
}

test('digests match node:crypto for sha256 and sha512, across slot boundaries and back-pressure', async (t) => {
  const worker = new HashWorker();
  t.after(() => worker.close());
  const data = randomBytes(11 * 1024 * 1024 + 3);
  for (const algorithm of ['sha256', 'sha512']) {
    assert.equal(await hashInPieces(worker, algorithm, data), hex(algorithm, data));
  }
  assert.equal(await worker.start('sha256').digest(), createHash('sha256').digest('hex'));
});

test('concurrent sessions do not mix their bytes', async (t) => {
  const worker = new HashWorker();
  t.after(() => worker.close());
  const inputs = [randomBytes(6 * 1024 * 1024), randomBytes(9 * 1024 * 1024), randomBytes(10)];
  const digests = await Promise.all(inputs.map((data) => hashInPieces(worker, 'sha256', data)));
  assert.deepEqual(digests, inputs.map((data) => hex('sha256', data)));
});

test('an aborted session frees its place; close fails a session still open', async () => {
  const worker = new HashWorker();
  const aborted = worker.start('sha256');
  aborted.update(randomBytes(2 * 1024 * 1024));
  aborted.abort();
  // The next session reuses the aborted one's ring while its last batches may still be queued.
  const next = randomBytes(5 * 1024 * 1024);
  assert.equal(await hashInPieces(worker, 'sha256', next), hex('sha256', next));
  const open = worker.start('sha256');
  const closing = worker.close();
  await assert.rejects(open.digest());
  await closing;
});

test('bytes in shared memory are hashed in place, other bytes by copy, in the order given', async (t) => {
  const worker = new HashWorker();
  t.after(() => worker.close());
  const data = randomBytes(3 << 20);
  const slot = Buffer.from(new SharedArrayBuffer(1 << 20));
  const session = worker.start('sha256');
  // The first piece is ordinary memory, a view into a larger buffer: only its bytes count.
  await session.updateInPlace(data.subarray(0, 1000));
  for (let at = 1000; at < data.length; at += slot.length) {
    const piece = data.subarray(at, at + slot.length);
    piece.copy(slot);
    await session.updateInPlace(slot.subarray(0, piece.length));
    // The slot is free again once the update resolved: scribbling on it changes nothing.
    slot.fill(0xaa);
  }
  assert.equal(await session.digest(), hex('sha256', data));
});

test('copied and in-place bytes of one session keep their order', async (t) => {
  const worker = new HashWorker();
  t.after(() => worker.close());
  const data = randomBytes(3 << 20);
  const session = worker.start('sha512');
  // A partly filled ring slot goes to the thread before the bytes hashed in place.
  await session.update(data.subarray(0, 100_000));
  await session.updateInPlace(data.subarray(100_000, 2 << 20));
  await session.update(data.subarray(2 << 20));
  assert.equal(await session.digest(), hex('sha512', data));
});

test('in-place sessions of one worker run side by side, each with its own algorithm', async (t) => {
  const worker = new HashWorker();
  t.after(() => worker.close());
  const a = randomBytes(100_000);
  const b = randomBytes(70_000);
  const first = worker.start('sha256');
  const second = worker.start('sha512');
  await Promise.all([first.updateInPlace(a.subarray(0, 50_000)), second.updateInPlace(b.subarray(0, 10)), first.updateInPlace(a.subarray(50_000)), second.updateInPlace(b.subarray(10))]);
  assert.deepEqual(await Promise.all([first.digest(), second.digest()]), [hex('sha256', a), hex('sha512', b)]);
});

test('an aborted session refuses more bytes, and closing the worker fails open sessions', async () => {
  const worker = new HashWorker();
  const aborted = worker.start('sha256');
  await aborted.updateInPlace(Buffer.from('x'));
  aborted.abort();
  await assert.rejects(aborted.updateInPlace(Buffer.from('y')), (err) => isKilnError(err, 'INTERNAL'));
  await assert.rejects(aborted.update(Buffer.from('y'))!, (err) => isKilnError(err, 'INTERNAL'));
  await assert.rejects(aborted.digest(), (err) => isKilnError(err, 'INTERNAL'));

  const open = worker.start('sha256');
  const digest = open.digest();
  const closing = worker.close();
  await assert.rejects(digest, (err) => isKilnError(err, 'INTERNAL'));
  await closing;
  // A new session starts a new thread.
  const again = worker.start('sha256');
  await again.updateInPlace(Buffer.from('abc'));
  assert.equal(await again.digest(), hex('sha256', Buffer.from('abc')));
  await worker.close();
});
