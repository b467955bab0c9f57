import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { writeBlobFile } from '../../src/oci/blob-file.js';
import { fileLayer, relabelLayer, streamLayer } from '../../src/oci/blob-layer.js';
import type { BlobSink } from '../../src/oci/blob-sink.js';
import { DigestVerifier, sha256 } from '../../src/oci/digest.js';
import type { Layer } from '../../src/oci/layer.js';
import { writeLayerTo } from '../../src/oci/layer-blob.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import { isKilnError } from '../../src/util/errors.js';
import { withTempDir } from '../temp-dir.js';

// Layer.writeTo, writeLayerTo's fallback to the stream, and writeBlobFile on top of both.

const withDir = <T>(fn: (dir: string) => Promise<T>): Promise<T> => withTempDir('layer-blob', fn);

/** A sink that keeps a copy of what it was lent, by position. */
function copyingSink(): { sink: BlobSink; bytes: () => Buffer } {
  const chunks: { position: number; chunk: Buffer }[] = [];
  return {
    sink: { write: (chunk, position) => { chunks.push({ position, chunk: Buffer.from(chunk) }); } },
    bytes: () => Buffer.concat(chunks.sort((a, b) => a.position - b.position).map((c) => c.chunk)),
  };
}

/** Chunks of `data` in pieces of `size` bytes. */
function pieces(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; at += size) out.push(data.subarray(at, at + size));
  return out;
}

/**
 * A layer whose writeTo behaves like a registry download: lends `served` in reused memory,
 * several writes in flight, and verifies against the layer's own digest at the end.
 */
function downloadingLayer(blob: Buffer, served: Buffer, calls: { writeTo: number; opened: number }): Layer {
  const metadata = { digest: sha256(blob), diffId: sha256(blob), size: blob.length, mediaType: MediaType.ociLayer };
  return streamLayer({
    ...metadata,
    open: async () => {
      calls.opened++;
      return Readable.from([served]);
    },
    writeTo: async (sink) => {
      calls.writeTo++;
      const verifier = new DigestVerifier(metadata.digest, metadata.size, `layer ${metadata.digest}`);
      const slot = Buffer.alloc(64 << 10);
      let position = 0;
      for (const piece of pieces(served, slot.length)) {
        verifier.update(piece);
        piece.copy(slot);
        await sink.write(slot.subarray(0, piece.length), position);
        slot.fill(0xee);
        position += piece.length;
      }
      verifier.finish();
    },
  });
}

test('writeBlobFile writes a layer through its writeTo, never opening its stream', () =>
  withDir(async (dir) => {
    const blob = randomBytes(700_000);
    const calls = { writeTo: 0, opened: 0 };
    const layer = downloadingLayer(blob, blob, calls);
    const path = join(dir, 'blob');
    await writeBlobFile(path, layer.digest, layer.size, layer);
    assert.ok((await readFile(path)).equals(blob));
    assert.deepEqual(calls, { writeTo: 1, opened: 0 });
  }));

test('a corrupted blob from writeTo is refused and its file removed', () =>
  withDir(async (dir) => {
    const blob = randomBytes(300_000);
    const corrupted = Buffer.from(blob);
    corrupted[200_000]! ^= 1;
    const layer = downloadingLayer(blob, corrupted, { writeTo: 0, opened: 0 });
    const path = join(dir, 'blob');
    await assert.rejects(writeBlobFile(path, layer.digest, layer.size, layer), (err) => isKilnError(err, 'DIGEST_MISMATCH'));
    assert.deepEqual(await readdir(dir), [], 'the temporary file was removed');

    const truncated = downloadingLayer(blob, blob.subarray(0, blob.length - 1), { writeTo: 0, opened: 0 });
    await assert.rejects(writeBlobFile(path, truncated.digest, truncated.size, truncated), (err) => isKilnError(err, 'SIZE_MISMATCH'));
    assert.deepEqual(await readdir(dir), []);
  }));

test('writeLayerTo falls back to the stream of a layer without writeTo, and verifies it', async () => {
  const blob = randomBytes(200_000);
  const plain = streamLayer({ digest: sha256(blob), diffId: sha256(blob), size: blob.length, mediaType: MediaType.ociLayer, open: async () => Readable.from(pieces(blob, 30_000)) });
  assert.equal(plain.writeTo, undefined);
  const good = copyingSink();
  await writeLayerTo(plain, good.sink);
  assert.ok(good.bytes().equals(blob));

  // A layer made elsewhere, whose stream nothing checks: the fallback checks it.
  const lying: Layer = { ...plain, compressed: async () => Readable.from([Buffer.alloc(blob.length, 7)]) };
  await assert.rejects(writeLayerTo(lying, copyingSink().sink), (err) => isKilnError(err, 'DIGEST_MISMATCH'));
  const short: Layer = { ...plain, compressed: async () => Readable.from([blob.subarray(1)]) };
  await assert.rejects(writeLayerTo(short, copyingSink().sink), (err) => isKilnError(err, 'SIZE_MISMATCH'));
});

test('a corrupted file layer is refused on its way into another file, which is removed', () =>
  withDir(async (dir) => {
    const blob = randomBytes(150_000);
    const source = join(dir, 'source');
    const corrupted = Buffer.from(blob);
    corrupted[5]! ^= 0x80;
    await writeFile(source, corrupted);
    const layer = fileLayer({ path: source, digest: sha256(blob), diffId: sha256(blob), size: blob.length, mediaType: MediaType.ociLayer });
    const target = join(dir, 'target');
    await assert.rejects(writeBlobFile(target, layer.digest, layer.size, layer), (err) => isKilnError(err, 'DIGEST_MISMATCH'));
    assert.deepEqual(await readdir(dir), ['source']);
  }));

test('an aborted writeLayerTo stops the stream and rejects', async () => {
  const blob = randomBytes(100_000);
  let served = 0;
  const endless = streamLayer({
    digest: sha256(blob),
    diffId: sha256(blob),
    size: blob.length,
    mediaType: MediaType.ociLayer,
    open: async () =>
      Readable.from(
        (async function* () {
          for (;;) {
            served++;
            yield blob.subarray(0, 1000);
            await new Promise((resolve) => setTimeout(resolve, 1));
          }
        })(),
      ),
  });
  const stop = new AbortController();
  const writing = writeLayerTo(endless, { write: () => { if (served === 5) stop.abort(new Error('no longer wanted')); } }, { signal: stop.signal });
  await assert.rejects(writing, /no longer wanted/);
  assert.ok(served < 10);
  await assert.rejects(writeLayerTo(endless, copyingSink().sink, { signal: stop.signal }), /no longer wanted/);
});

test('writeBlobFile checks bytes and streams too, and refuses a layer that is another blob', () =>
  withDir(async (dir) => {
    const content = Buffer.from('{"schemaVersion":2}');
    const path = join(dir, 'blob');
    await writeBlobFile(path, sha256(content), content.length, content);
    assert.ok((await readFile(path)).equals(content));
    await assert.rejects(writeBlobFile(join(dir, 'other'), sha256('else'), content.length, content), (err) => isKilnError(err, 'DIGEST_MISMATCH'));
    await assert.rejects(writeBlobFile(join(dir, 'other'), sha256(content), content.length, async () => Readable.from([Buffer.from('{"schemaVersion":3}')])), (err) => isKilnError(err, 'DIGEST_MISMATCH'));
    const layer = downloadingLayer(content, content, { writeTo: 0, opened: 0 });
    await assert.rejects(writeBlobFile(join(dir, 'other'), sha256('else'), content.length, layer), (err) => isKilnError(err, 'INTERNAL'));
    await assert.rejects(writeBlobFile(path, sha256(content), content.length, content), { code: 'EEXIST' });
    assert.deepEqual(await readdir(dir), ['blob']);
  }));

test('relabelling a layer keeps its writeTo', () =>
  withDir(async (dir) => {
    const blob = randomBytes(10_000);
    const calls = { writeTo: 0, opened: 0 };
    const layer = relabelLayer(downloadingLayer(blob, blob, calls), MediaType.dockerLayer);
    assert.equal(layer.mediaType, MediaType.dockerLayer);
    await writeBlobFile(join(dir, 'blob'), layer.digest, layer.size, layer);
    assert.deepEqual(calls, { writeTo: 1, opened: 0 });
  }));
