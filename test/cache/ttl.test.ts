import { test } from 'node:test';
import assert from 'node:assert/strict';
import { probeResultOf } from '../../src/cache/lookup.js';
import { decodeEntry, encodeEntry } from '../../src/cache/entry.js';
import { stepKey } from '../../src/cache/key.js';
import { expiredReason, formatTtl } from '../../src/cache/ttl.js';

const HOUR = 3_600_000;
const created = new Date('2026-03-01T10:00:00.000Z');

test('an entry younger than the TTL is fresh, one older is expired with its date and the TTL', () => {
  assert.equal(expiredReason(created, 2 * HOUR, new Date(created.getTime() + 2 * HOUR - 1)), undefined);
  assert.equal(expiredReason(created, 2 * HOUR, new Date(created.getTime() + 2 * HOUR)), undefined);
  assert.equal(
    expiredReason(created, 2 * HOUR, new Date(created.getTime() + 2 * HOUR + 1)),
    'expired: cached 2026-03-01T10:00:00.000Z, --cache-ttl is 2h',
  );
});

test('an entry from a clock ahead of ours is fresh', () => {
  assert.equal(expiredReason(created, HOUR, new Date(created.getTime() - 10 * HOUR)), undefined);
});

test('the TTL is printed in hours, as kaniko users write it', () => {
  assert.equal(formatTtl(336 * HOUR), '336h');
  assert.equal(formatTtl(HOUR / 2), '0.5h');
  assert.equal(formatTtl(90_000), '0.025h');
});

test('a probe answers a miss for an expired entry and a hit for a fresh one', () => {
  const key = stepKey('sha256:' + '0'.repeat(64), [{ name: 'instruction', value: 'RUN true' }], 'id', 'RUN true');
  const entry = decodeEntry(encodeEntry(key, { kind: 'empty' }, created).manifest, undefined, 'test entry');
  const noLayer = () => assert.fail('an empty entry makes no layer');
  const fresh = probeResultOf(entry, key, 24 * HOUR, new Date(created.getTime() + HOUR), noLayer);
  assert.deepEqual(fresh, { kind: 'hit', result: { kind: 'empty' }, created });
  const stale = probeResultOf(entry, key, 24 * HOUR, new Date(created.getTime() + 25 * HOUR), noLayer);
  assert.deepEqual(stale, { kind: 'miss', reason: 'expired: cached 2026-03-01T10:00:00.000Z, --cache-ttl is 24h' });
});
