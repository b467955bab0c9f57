import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { DigestingStream, VerifyingStream, parseDigest, sha256, verifyBytes } from '../../src/oci/digest.js';
import { isKilnError } from '../../src/util/errors.js';

const sink = () => new Writable({ write(_c, _e, cb) { cb(); } });

test('sha256 of known input', () => {
  assert.equal(sha256(''), 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
});

test('parseDigest refuses malformed digests with INVALID_DIGEST', () => {
  assert.deepEqual(parseDigest('sha256:' + 'a'.repeat(64)), { algorithm: 'sha256', hex: 'a'.repeat(64) });
  for (const bad of ['sha256:abc', 'md5:' + 'a'.repeat(32), 'sha256:' + 'A'.repeat(64), 'a'.repeat(64)]) {
    assert.throws(() => parseDigest(bad), (err) => isKilnError(err, 'INVALID_DIGEST'));
  }
});

test('DigestingStream reports digest and size of what passed through', async () => {
  const digesting = new DigestingStream();
  await pipeline(Readable.from([Buffer.from('hello '), Buffer.from('world')]), digesting, sink());
  assert.equal(digesting.digest, sha256('hello world'));
  assert.equal(digesting.size, 11);
});

test('VerifyingStream passes matching content and refuses a wrong digest or size', async () => {
  const data = Buffer.from('layer bytes');
  await pipeline(Readable.from([data]), new VerifyingStream(sha256(data), data.length, 'blob'), sink());
  await assert.rejects(
    pipeline(Readable.from([data]), new VerifyingStream(sha256('other'), data.length, 'blob'), sink()),
    (err) => isKilnError(err, 'DIGEST_MISMATCH'),
  );
  await assert.rejects(
    pipeline(Readable.from([data]), new VerifyingStream(sha256(data), data.length - 1, 'blob'), sink()),
    (err) => isKilnError(err, 'SIZE_MISMATCH'),
  );
  await assert.rejects(
    pipeline(Readable.from([data]), new VerifyingStream(sha256(data), data.length + 1, 'blob'), sink()),
    (err) => isKilnError(err, 'SIZE_MISMATCH'),
  );
});

test('verifyBytes refuses bytes that do not match', () => {
  verifyBytes(Buffer.from('x'), sha256('x'), 'manifest');
  assert.throws(() => verifyBytes(Buffer.from('y'), sha256('x'), 'manifest'), (err) => isKilnError(err, 'DIGEST_MISMATCH'));
});
