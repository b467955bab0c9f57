import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { HashWorker } from '../../src/util/hash-worker.js';

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
    assert.equal(await hashInPieces(worker, algorithm, data), createHash(algorithm).update(data).digest('hex'));
  }
  assert.equal(await worker.start('sha256').digest(), createHash('sha256').digest('hex'));
});

test('concurrent sessions do not mix their bytes', async (t) => {
  const worker = new HashWorker();
  t.after(() => worker.close());
  const inputs = [randomBytes(6 * 1024 * 1024), randomBytes(9 * 1024 * 1024), randomBytes(10)];
  const digests = await Promise.all(inputs.map((data) => hashInPieces(worker, 'sha256', data)));
  assert.deepEqual(digests, inputs.map((data) => createHash('sha256').update(data).digest('hex')));
});

test('an aborted session frees its place; close fails a session still open', async () => {
  const worker = new HashWorker();
  const aborted = worker.start('sha256');
  aborted.update(randomBytes(2 * 1024 * 1024));
  aborted.abort();
  // The next session reuses the aborted one's ring while its last batches may still be queued.
  const next = randomBytes(5 * 1024 * 1024);
  assert.equal(await hashInPieces(worker, 'sha256', next), createHash('sha256').update(next).digest('hex'));
  const open = worker.start('sha256');
  const closing = worker.close();
  await assert.rejects(open.digest());
  await closing;
});
