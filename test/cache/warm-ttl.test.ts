import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readEntry, staleReason, WARMED_AT_ANNOTATION } from '../../src/cache/base-entry.js';
import { parseDurationFlag } from '../../src/util/duration.js';
import { isKilnError } from '../../src/util/errors.js';

const HOUR = 3_600_000;

test('--cache-ttl takes Go durations and gives milliseconds', () => {
  assert.equal(parseDurationFlag('cache-ttl', '336h'), 336 * HOUR);
  assert.equal(parseDurationFlag('cache-ttl', '30m'), 30 * 60_000);
  assert.equal(parseDurationFlag('cache-ttl', '1h30m'), 90 * 60_000);
  assert.equal(parseDurationFlag('cache-ttl', '1.5h'), 90 * 60_000);
  assert.equal(parseDurationFlag('cache-ttl', '90s'), 90_000);
  assert.equal(parseDurationFlag('cache-ttl', '250ms'), 250);
  assert.equal(parseDurationFlag('cache-ttl', '0'), 0);
  assert.equal(parseDurationFlag('cache-ttl', '0s'), 0);
});

test('a malformed or negative --cache-ttl is one USAGE sentence naming the flag', () => {
  for (const bad of ['', '336', 'two weeks', '5d', 'h', '1h30', '-1h']) {
    assert.throws(
      () => parseDurationFlag('cache-ttl', bad),
      (err: unknown) => isKilnError(err, 'USAGE') && err.message.startsWith(`--cache-ttl=${bad} is `) && !err.message.includes('\n') && err.message.endsWith('.'),
      `"${bad}" must be refused`,
    );
  }
});

function entryWarmedAt(time: string | undefined) {
  return readEntry({
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: 'sha256:' + 'a'.repeat(64),
    size: 10,
    ...(time === undefined ? {} : { annotations: { [WARMED_AT_ANNOTATION]: time } }),
  });
}

test('a warmed tag is fresh up to the TTL and stale one millisecond after', () => {
  const warmed = Date.parse('2026-03-01T10:00:00.000Z');
  const entry = entryWarmedAt('2026-03-01T10:00:00.000Z');
  assert.equal(staleReason(entry, 2 * HOUR, warmed), undefined);
  assert.equal(staleReason(entry, 2 * HOUR, warmed + 2 * HOUR), undefined);
  assert.match(staleReason(entry, 2 * HOUR, warmed + 2 * HOUR + 1) ?? '', /^expired: cached 2026-03-01T10:00:00.000Z, --cache-ttl is 2h$/);
  assert.ok(staleReason(entry, 0, warmed + 1), 'a TTL of 0 trusts nothing once time has passed');
});

test('an entry with no or an unreadable warm time is never fresh', () => {
  assert.ok(staleReason(entryWarmedAt(undefined), 1000 * HOUR, Date.now()));
  assert.ok(staleReason(entryWarmedAt('yesterday'), 1000 * HOUR, Date.now()));
});
