import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { pack as tarPack } from 'tar-stream';
import { BuildProgress, formatRatio } from '../../src/builder/progress.js';
import { countedLayer } from '../../src/builder/progress-layers.js';
import { PhaseClock } from '../../src/builder/progress-phases.js';
import { streamLayer } from '../../src/oci/blob-layer.js';
import { sha256 } from '../../src/oci/digest.js';
import type { Image } from '../../src/oci/image.js';
import type { Layer } from '../../src/oci/layer.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import { extractImage } from '../../src/snapshot/extract.js';
import { IgnoreList } from '../../src/snapshot/ignore.js';
import type { ProgressSink, TaskState } from '../../src/util/progress.js';

/** A sink that keeps every event, in order. */
function recordingSink() {
  const events: { task: number; phase: string; event: 'begin' | 'update' | 'end' | 'fail'; state?: TaskState; message?: string }[] = [];
  let next = 0;
  const sink: ProgressSink = {
    begin(phase, state) {
      const task = next++;
      events.push({ task, phase, event: 'begin', state });
      return {
        update: (s) => void events.push({ task, phase, event: 'update', state: s }),
        end: (message) => void events.push({ task, phase, event: 'end', ...(message ? { message } : {}) }),
        fail: () => void events.push({ task, phase, event: 'fail' }),
      };
    },
    close() {},
  };
  return { sink, events };
}

async function fileTar(name: string, content: string): Promise<Buffer> {
  const archive = tarPack();
  archive.entry({ name, mode: 0o644, mtime: new Date(0) }, content);
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive as unknown as AsyncIterable<Buffer>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** A gzip layer holding one file; `remote` ones say a registry holds them. */
async function layerWith(name: string, content: string, remote: boolean): Promise<Layer> {
  const tar = await fileTar(name, content);
  const blob = gzipSync(tar);
  return streamLayer({
    digest: sha256(blob),
    diffId: sha256(tar),
    size: blob.length,
    mediaType: MediaType.ociLayerGzip,
    ...(remote ? { location: { registry: '127.0.0.1:5000', repository: 'base/busybox' } } : {}),
    // Small chunks, so byte counts move several times per layer.
    open: async () => Readable.from(Array.from({ length: Math.ceil(blob.length / 64) }, (_, i) => blob.subarray(i * 64, (i + 1) * 64))),
  });
}

function tempRoot(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-progress-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('a counted layer reports every byte of its blob and is otherwise the same layer', async () => {
  const layer = await layerWith('a.txt', 'x'.repeat(5000), true);
  let bytes = 0;
  let requested = 0;
  let ended = 0;
  const counted = countedLayer(layer, { requested: () => requested++, bytes: (n) => (bytes += n), ended: () => ended++ });
  assert.deepEqual([counted.digest, counted.diffId, counted.size, counted.mediaType, counted.location], [layer.digest, layer.diffId, layer.size, layer.mediaType, layer.location]);
  const tar: Buffer[] = [];
  for await (const chunk of (await counted.uncompressed()) as AsyncIterable<Buffer>) tar.push(chunk);
  assert.equal(sha256(Buffer.concat(tar)), layer.diffId, 'the tar stream is the blob decompressed');
  assert.deepEqual([bytes, requested, ended], [layer.size, 1, 1]);
});

test('a counted layer keeps its writeTo, counting what goes to the sink', async () => {
  const plain = await layerWith('a.txt', 'x'.repeat(5000), true);
  assert.equal(countedLayer(plain, { bytes: () => {} }).writeTo, undefined, 'a layer without writeTo gets none');
  const blob = await readStream(await plain.compressed());
  let viaWriteTo = 0;
  const layer = streamLayer({
    digest: plain.digest,
    diffId: plain.diffId,
    size: plain.size,
    mediaType: plain.mediaType,
    open: () => plain.compressed(),
    writeTo: async (sink) => {
      viaWriteTo++;
      await sink.write(blob.subarray(0, 100), 0);
      await sink.write(blob.subarray(100), 100);
    },
  });
  let bytes = 0;
  let requested = 0;
  let ended = 0;
  const counted = countedLayer(layer, { requested: () => requested++, bytes: (n) => (bytes += n), ended: () => ended++ });
  const received: Buffer[] = [];
  await counted.writeTo!({ concurrency: 2, write: (chunk) => void received.push(Buffer.from(chunk)) });
  assert.ok(Buffer.concat(received).equals(blob));
  assert.deepEqual([viaWriteTo, bytes, requested, ended], [1, blob.length, 1, 1]);
});

async function readStream(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

test('an extraction counts registry bytes as pulled, and shows which layer is being applied', async (t) => {
  const layers = [await layerWith('one', '1'.repeat(3000), true), await layerWith('two', '2', false), await layerWith('three', '3'.repeat(9000), true)];
  const { sink, events } = recordingSink();
  const progress = new BuildProgress(sink);
  const root = tempRoot(t);
  const image = { layers } as unknown as Image;
  const stats = await progress.extract(
    layers,
    'stage 0',
    (counted) => extractImage({ ...image, layers: counted }, { rootDir: join(root, 'rootfs'), ignore: IgnoreList.of([]), spoolDir: root }),
    (s) => `stage 0: extracted ${s.layers} layers`,
  );
  assert.ok(existsSync(join(root, 'rootfs', 'three')));
  assert.equal(readFileSync(join(root, 'rootfs', 'two'), 'utf8'), '2');
  const pulled = layers[0]!.size + layers[2]!.size;
  assert.equal(stats.pulledBytes, pulled, 'only layers from a registry count as pulled');
  assert.equal(progress.pulledBytes, pulled);

  const pull = events.filter((e) => e.phase === 'pull');
  assert.equal(pull[0]!.event, 'begin');
  assert.equal(pull[0]!.state!.text, `stage 0: pulling 2 layers, ${formatRatio(0, pulled).split('/')[1]}`);
  assert.equal(pull.at(-1)!.event, 'end');
  assert.equal(pull.filter((e) => e.event === 'end').length, 1, 'the pull ends once');
  const lastPull = pull.filter((e) => e.event === 'update').at(-1)!.state!;
  assert.deepEqual([lastPull.done, lastPull.total, lastPull.unit], [pulled, pulled, 'bytes']);
  assert.match(lastPull.text, new RegExp(`^stage 0: pulling layer 3/3 \\(${layers[2]!.digest.slice(0, 19)}\\) `));

  const extract = events.filter((e) => e.phase === 'extract');
  const applied = extract.filter((e) => e.state).map((e) => Number(/layer (\d)\/3$/.exec(e.state!.text)![1]));
  assert.deepEqual([...new Set(applied)], [1, 2, 3], 'layers are shown in order, each one');
  assert.deepEqual(extract.at(-1), { task: 1, phase: 'extract', event: 'end', message: 'stage 0: extracted 3 layers' });
});

test('a failed extraction fails its tasks and counts for the pull phase', async () => {
  const { sink, events } = recordingSink();
  let now = 0;
  const progress = new BuildProgress(sink, () => now);
  const layer = await layerWith('a', 'a', true);
  await assert.rejects(
    progress.extract([layer], 'COPY --from=busybox', async () => {
      now += 2000;
      throw new Error('registry went away');
    }),
    /registry went away/,
  );
  assert.deepEqual(events.filter((e) => e.event !== 'update').map((e) => `${e.phase} ${e.event}`), ['pull begin', 'extract begin', 'pull fail', 'extract fail']);
  assert.equal(progress.phases.seconds().pull, 2);
});

test('a push shows blobs in place and bytes uploaded', async () => {
  const { sink, events } = recordingSink();
  const progress = new BuildProgress(sink);
  const layers = [await layerWith('a', 'a'.repeat(2000), false), await layerWith('b', 'b', false)];
  const pushing = progress.pushing({ layers } as unknown as Image, '127.0.0.1:5000/app:1');
  const blob = await pushing.image.layers[0]!.compressed();
  for await (const _ of blob as AsyncIterable<Buffer>);
  pushing.onBlob({ digest: layers[0]!.digest, size: layers[0]!.size, result: { kind: 'uploaded', bytes: layers[0]!.size } });
  pushing.onBlob({ digest: layers[1]!.digest, size: layers[1]!.size, result: { kind: 'mounted', from: 'cache' } });
  pushing.end('pushed');
  const states = events.filter((e) => e.state).map((e) => e.state!);
  assert.equal(states[0]!.text, 'pushing 127.0.0.1:5000/app:1: 0/2 blobs, 0.0 KiB uploaded');
  const last = states.at(-1)!;
  assert.deepEqual([last.done, last.total, last.unit, last.bytes], [2, 2, 'blobs', layers[0]!.size]);
  assert.equal(last.text, `pushing 127.0.0.1:5000/app:1: 2/2 blobs, ${(layers[0]!.size / 1024).toFixed(1)} KiB uploaded`);
  assert.deepEqual(events.at(-1), { task: 0, phase: 'push', event: 'end', message: 'pushed' });
});

test('phases that nest give their time to the innermost one, so they never add up to more than the build', async () => {
  let now = 0;
  const phases = new PhaseClock(() => now);
  await phases.time('run', async () => {
    now += 1000;
    await phases.time('pull', async () => {
      now += 3000;
    });
    now += 500;
  });
  now += 10_000;
  await phases.time('push', async () => {
    now += 250;
  });
  assert.deepEqual(phases.seconds(), { plan: 0, pull: 3, run: 1.5, snapshot: 0, push: 0.25 });
});

test('byte ratios use the unit of the total', () => {
  assert.equal(formatRatio(47_395_635, 125_829_120), '45.2/120.0 MiB');
  assert.equal(formatRatio(512, 4096), '0.5/4.0 KiB');
});
