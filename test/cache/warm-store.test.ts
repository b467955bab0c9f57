import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { REF_NAME_ANNOTATION } from '../../src/oci/layout.js';
import { WORK_DIR, removeAbandonedTemporaries, storeBlob } from '../../src/cache/warm-blob.js';
import { storeImage } from '../../src/cache/warm-store.js';
import { streamLayer } from '../../src/oci/blob-layer.js';
import { sha256 } from '../../src/oci/digest.js';
import { blobPath, layoutImage } from '../../src/oci/layout.js';
import { appendLayers, emptyImage } from '../../src/oci/mutate.js';
import { isKilnError } from '../../src/util/errors.js';
import { memoryLayer } from '../oci/fixtures.js';
import { withTempDir } from '../temp-dir.js';

const withDir = <T>(fn: (dir: string) => Promise<T>): Promise<T> => withTempDir('warm-store', (dir) => fn(join(dir, 'cache')));

/** Yields `first`, then fails: a download cut off half-way. */
function cutOff(first: Buffer): () => Promise<Readable> {
  return async () =>
    Readable.from(
      (async function* () {
        yield first;
        throw new Error('connection reset');
      })(),
    );
}

async function filesUnder(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).map(String).sort();
}

test('a download cut off half-way leaves neither a blob nor a temporary behind', () =>
  withDir(async (dir) => {
    const content = Buffer.from('x'.repeat(4096));
    const digest = sha256(content);
    await assert.rejects(storeBlob(dir, digest, content.length, cutOff(content.subarray(0, 1000)), { replace: false }));
    await assert.rejects(stat(blobPath(dir, digest)));
    assert.deepEqual(await readdir(join(dir, WORK_DIR)), []);
  }));

test('content that does not match its digest is refused and never stored', () =>
  withDir(async (dir) => {
    const content = Buffer.from('the real content');
    const digest = sha256(content);
    await assert.rejects(
      storeBlob(dir, digest, content.length, async () => Readable.from([Buffer.from('the fake content')]), { replace: false }),
      (err: unknown) => isKilnError(err, 'DIGEST_MISMATCH'),
    );
    await assert.rejects(stat(blobPath(dir, digest)));
    assert.deepEqual(await readdir(join(dir, WORK_DIR)), []);
  }));

test('a present blob is not fetched again unless replace is asked, which rewrites it', () =>
  withDir(async (dir) => {
    const content = Buffer.from('layer bytes');
    const digest = sha256(content);
    let opened = 0;
    const open = async () => {
      opened++;
      return Readable.from([content]);
    };
    assert.equal(await storeBlob(dir, digest, content.length, open, { replace: false }), content.length);
    assert.equal(await storeBlob(dir, digest, content.length, open, { replace: false }), 0);
    assert.equal(opened, 1);
    await writeFile(blobPath(dir, digest), 'damaged bye');
    assert.equal(await storeBlob(dir, digest, content.length, open, { replace: true }), content.length);
    assert.equal(opened, 2);
    assert.ok((await readFile(blobPath(dir, digest))).equals(content));
  }));

test('an image is stored as a layout whose only index entry names it, with its platform', () =>
  withDir(async (dir) => {
    const { layer } = await memoryLayer({ 'etc/hello': 'hello' });
    const image = appendLayers(emptyImage({ os: 'linux', architecture: 'arm64', variant: 'v8' }, 'oci'), [{ layer }]);
    const bytes = await storeImage(dir, image, { refName: 'registry.test/app:1', resolvedDigest: image.digest, replace: false, warmedAt: new Date(0) });
    assert.equal(bytes, layer.size + image.rawConfig.length + image.rawManifest.length);
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
    assert.deepEqual(index.manifests, [
      {
        mediaType: image.mediaType,
        digest: image.digest,
        size: image.rawManifest.length,
        platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
        annotations: {
          [REF_NAME_ANNOTATION]: 'registry.test/app:1',
          'dev.kiln.warm.resolved-digest': image.digest,
          'dev.kiln.warm.time': '1970-01-01T00:00:00.000Z',
        },
      },
    ]);
    assert.equal((await layoutImage(dir, { refName: 'registry.test/app:1' })).digest, image.digest);
    assert.equal(await storeImage(dir, image, { refName: 'registry.test/app:1', resolvedDigest: image.digest, replace: false, warmedAt: new Date(0) }), 0, 'nothing is written twice');
  }));

test('a layer is stored through its writeTo, and a corrupted one leaves nothing behind', () =>
  withDir(async (dir) => {
    const content = Buffer.from('layer bytes '.repeat(1000));
    const via: string[] = [];
    const layerServing = (served: Buffer) =>
      streamLayer({
        digest: sha256(content),
        diffId: sha256(content),
        size: content.length,
        mediaType: 'application/vnd.oci.image.layer.v1.tar',
        open: async () => {
          via.push('stream');
          return Readable.from([served]);
        },
        // Verifies as a registry download does: the sink's bytes count only once this resolves.
        writeTo: async (sink) => {
          via.push('writeTo');
          await sink.write(served, 0);
          if (sha256(served) !== sha256(content)) throw Object.assign(new Error('digest mismatch'), { code: 'DIGEST_MISMATCH' });
        },
      });
    const corrupted = Buffer.from(content);
    corrupted[7]! ^= 1;
    await assert.rejects(storeBlob(dir, sha256(content), content.length, layerServing(corrupted), { replace: false }), /digest mismatch/);
    await assert.rejects(stat(blobPath(dir, sha256(content))));
    assert.deepEqual(await readdir(join(dir, WORK_DIR)), []);
    assert.equal(await storeBlob(dir, sha256(content), content.length, layerServing(content), { replace: false }), content.length);
    assert.ok((await readFile(blobPath(dir, sha256(content)))).equals(content));
    assert.deepEqual(via, ['writeTo', 'writeTo']);
  }));

test('removeAbandonedTemporaries clears only temporaries nobody has written to for an hour', () =>
  withDir(async (dir) => {
    const content = Buffer.from('kept');
    await storeBlob(dir, sha256(content), content.length, async () => Readable.from([content]), { replace: false });
    await writeFile(join(dir, WORK_DIR, 'blob-abandoned'), 'half');
    await writeFile(join(dir, WORK_DIR, 'blob-live'), 'half');
    const abandonedAt = (await stat(join(dir, WORK_DIR, 'blob-abandoned'))).mtimeMs;
    await removeAbandonedTemporaries(dir, abandonedAt + 30 * 60_000);
    assert.deepEqual((await readdir(join(dir, WORK_DIR))).sort(), ['blob-abandoned', 'blob-live']);
    await removeAbandonedTemporaries(dir, abandonedAt + 61 * 60_000);
    assert.deepEqual(await readdir(join(dir, WORK_DIR)), []);
    assert.ok((await readFile(blobPath(dir, sha256(content)))).equals(content), 'blobs are never touched');
  }));

// Separate processes, so the lock is what keeps them apart (not one event loop). The writer
// imports this file's siblings in whichever form is running: .ts under tsx, .js once compiled.
const here = fileURLToPath(import.meta.url);
const extension = here.endsWith('.ts') ? '.ts' : '.js';
const sibling = (path: string) => JSON.stringify(join(dirname(here), path + extension));
const WRITER = `
import { storeImage } from ${sibling('../../src/cache/warm-store')};
import { appendLayers, emptyImage } from ${sibling('../../src/oci/mutate')};
import { memoryLayer } from ${sibling('../oci/fixtures')};
const [dir, writer] = process.argv.slice(-2);
for (let i = 0; i < 5; i++) {
  const { layer } = await memoryLayer({ 'etc/who': writer + '/' + i });
  const image = appendLayers(emptyImage({ os: 'linux', architecture: 'amd64' }, 'oci'), [{ layer }]);
  await storeImage(dir, image, { refName: 'registry.test/w' + writer + ':' + i, resolvedDigest: image.digest, replace: false, warmedAt: new Date() });
}
`;

function runWriter(dir: string, writer: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(extension === '.ts' ? ['--import', 'tsx'] : []), '--input-type=module', '-e', WRITER, dir, String(writer)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`writer ${writer} exited ${code}: ${stderr}`))));
  });
}

test('warmers writing one cache at once lose no entry and leave a valid index.json', { timeout: 120_000 }, () =>
  withDir(async (dir) => {
    const writers = [1, 2, 3, 4];
    await Promise.all(writers.map((writer) => runWriter(dir, writer)));
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { annotations: Record<string, string> }[] };
    const names = index.manifests.map((m) => m.annotations[REF_NAME_ANNOTATION]).sort();
    const expected = writers.flatMap((w) => [0, 1, 2, 3, 4].map((i) => `registry.test/w${w}:${i}`)).sort();
    assert.deepEqual(names, expected);
    assert.deepEqual((await filesUnder(dir)).filter((name) => !name.startsWith('blobs') && name !== 'index.json' && name !== 'oci-layout'), [WORK_DIR], 'no lock or temporary left');
  }));
