import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SlabRing } from '../../src/registry/slab-ring.js';

test('slots are used in turn and the same memory comes back each round', () => {
  const ring = new SlabRing(3, 1024);
  const first = [0, 1, 2].map((i) => ring.slot(i));
  assert.equal(ring.current, 0);
  assert.ok(ring.advance());
  assert.equal(ring.current, 1);
  assert.ok(ring.advance());
  assert.ok(ring.advance());
  assert.equal(ring.current, 0);
  assert.equal(ring.slot(0), first[0]);
  assert.equal(ring.slot(2), first[2]);
  assert.equal(ring.slot(1).length, 1024);
});

test('a slot still lent stops the ring until its last lend is released', () => {
  const ring = new SlabRing(2, 16);
  ring.hold(1);
  ring.hold(1);
  assert.equal(ring.advance(), false, 'slot 1 is lent twice');
  assert.equal(ring.current, 1);
  assert.equal(ring.currentFree, false);
  assert.equal(ring.release(1), false, 'one lend of slot 1 is still out');
  assert.equal(ring.release(1), true, 'slot 1 is free and is the one reads wait for');
  assert.equal(ring.currentFree, true);
  ring.hold(1);
  assert.equal(ring.advance(), true, 'slot 0 was never lent');
  assert.equal(ring.release(1), false, 'slot 1 is not the current one');
});

test('releasing more often than holding is a bug, not a silent miscount', () => {
  const ring = new SlabRing(2, 16);
  ring.hold(0);
  ring.release(0);
  assert.throws(() => ring.release(0), RangeError);
  assert.throws(() => new SlabRing(1, 16), RangeError);
});

test('a shared ring reads into shared memory, one slot at a time', () => {
  const ring = new SlabRing(2, 64, true);
  assert.ok(ring.slot(0).buffer instanceof SharedArrayBuffer);
  assert.equal(ring.slot(0).length, 64);
  assert.notEqual(ring.slot(1).buffer, ring.slot(0).buffer);
  assert.ok(!(new SlabRing(2, 64).slot(0).buffer instanceof SharedArrayBuffer));
});
