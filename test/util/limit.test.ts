import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConcurrencyLimit, mapLimited } from '../../src/util/limit.js';

test('never runs more than the limit at once and keeps result order', async () => {
  let active = 0;
  let peak = 0;
  const results = await mapLimited([5, 1, 4, 2, 3, 0], 2, async (n) => {
    active++;
    peak = Math.max(peak, active);
    await new Promise((resolve) => setTimeout(resolve, n));
    active--;
    return n * 10;
  });
  assert.deepEqual(results, [50, 10, 40, 20, 30, 0]);
  assert.equal(peak, 2);
});

test('a failing task releases its slot', async () => {
  const gate = new ConcurrencyLimit(1);
  await assert.rejects(gate.run(async () => { throw new Error('boom'); }), /boom/);
  assert.equal(await gate.run(async () => 'next'), 'next');
});

test('refuses a limit below one', () => {
  assert.throws(() => new ConcurrencyLimit(0), RangeError);
});
