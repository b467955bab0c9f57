import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { SlotHasher } from '../../src/registry/slot-hasher.js';
import { isKilnError } from '../../src/util/errors.js';

const hex = (algorithm: string, data: Buffer): string => createHash(algorithm).update(data).digest('hex');

test('bytes in shared memory are hashed in place, other bytes by copy, in the order given', async (t) => {
  const hasher = new SlotHasher();
  t.after(() => hasher.close());
  const data = randomBytes(3 << 20);
  const slot = Buffer.from(new SharedArrayBuffer(1 << 20));
  const session = hasher.start('sha256');
  // The first piece is ordinary memory, a view into a larger buffer: only its bytes count.
  await session.update(data.subarray(0, 1000));
  for (let at = 1000; at < data.length; at += slot.length) {
    const piece = data.subarray(at, at + slot.length);
    piece.copy(slot);
    await session.update(slot.subarray(0, piece.length));
    // The slot is free again once the update resolved: scribbling on it changes nothing.
    slot.fill(0xaa);
  }
  assert.equal(await session.digest(), hex('sha256', data));
});

test('sessions of one hasher run side by side, each with its own algorithm', async (t) => {
  const hasher = new SlotHasher();
  t.after(() => hasher.close());
  const a = randomBytes(100_000);
  const b = randomBytes(70_000);
  const first = hasher.start('sha256');
  const second = hasher.start('sha512');
  await Promise.all([first.update(a.subarray(0, 50_000)), second.update(b.subarray(0, 10)), first.update(a.subarray(50_000)), second.update(b.subarray(10))]);
  assert.deepEqual(await Promise.all([first.digest(), second.digest()]), [hex('sha256', a), hex('sha512', b)]);
});

test('an aborted session refuses more bytes, and closing the hasher fails open sessions', async () => {
  const hasher = new SlotHasher();
  const aborted = hasher.start('sha256');
  await aborted.update(Buffer.from('x'));
  aborted.abort();
  await assert.rejects(aborted.update(Buffer.from('y')), (err) => isKilnError(err, 'INTERNAL'));
  await assert.rejects(aborted.digest(), (err) => isKilnError(err, 'INTERNAL'));

  const open = hasher.start('sha256');
  const digest = open.digest();
  const closing = hasher.close();
  await assert.rejects(digest, (err) => isKilnError(err, 'INTERNAL'));
  await closing;
  // A new session starts a new thread.
  const again = hasher.start('sha256');
  await again.update(Buffer.from('abc'));
  assert.equal(await again.digest(), hex('sha256', Buffer.from('abc')));
  await hasher.close();
});
