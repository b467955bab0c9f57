import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { VerifyingStream, sha256 } from '../../src/oci/digest.js';
import { HashWorker } from '../../src/util/hash-worker.js';
import { isKilnError } from '../../src/util/errors.js';

const pieces = (data: Buffer, size: number) => Readable.from(Array.from({ length: Math.ceil(data.length / size) }, (_, i) => data.subarray(i * size, (i + 1) * size)));

function collect() {
  const chunks: Buffer[] = [];
  return { sink: new Writable({ write(c, _e, cb) { chunks.push(c); cb(); } }), bytes: () => Buffer.concat(chunks) };
}

test('VerifyingStream with a hash worker passes large content through unchanged and in order', async (t) => {
  const worker = new HashWorker();
  t.after(() => worker.close());
  const data = randomBytes(13 * 1024 * 1024 + 1);
  const { sink, bytes } = collect();
  await pipeline(pieces(data, 700_001), new VerifyingStream(sha256(data), data.length, 'blob', { hashWorker: worker }), sink);
  assert.ok(bytes().equals(data));
  const unknownSize = collect();
  await pipeline(pieces(data, 1 << 20), new VerifyingStream(sha256(data), undefined, 'blob', { hashWorker: worker }), unknownSize.sink);
  assert.ok(unknownSize.bytes().equals(data));
});

test('VerifyingStream with a hash worker refuses a wrong digest or size', async (t) => {
  const worker = new HashWorker();
  t.after(() => worker.close());
  const data = randomBytes(6 * 1024 * 1024);
  const tampered = Buffer.from(data);
  tampered[tampered.length - 1]! ^= 1;
  await assert.rejects(
    pipeline(pieces(tampered, 1 << 20), new VerifyingStream(sha256(data), data.length, 'blob', { hashWorker: worker }), collect().sink),
    (err) => isKilnError(err, 'DIGEST_MISMATCH'),
  );
  await assert.rejects(
    pipeline(pieces(data, 1 << 20), new VerifyingStream(sha256(data), data.length - 1, 'blob', { hashWorker: worker }), collect().sink),
    (err) => isKilnError(err, 'SIZE_MISMATCH'),
  );
  await assert.rejects(
    pipeline(pieces(data, 1 << 20), new VerifyingStream(sha256(data), data.length + 1, 'blob', { hashWorker: worker }), collect().sink),
    (err) => isKilnError(err, 'SIZE_MISMATCH'),
  );
});
