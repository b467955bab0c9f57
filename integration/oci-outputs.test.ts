/**
 * kiln's OCI layouts and docker archives, checked by tools kiln did not write (skopeo, umoci,
 * zstd), and layouts those tools wrote, read back by kiln.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { extract as tarExtract } from 'tar-stream';
import { compress } from '../src/oci/compression.js';
import type { Image } from '../src/oci/image.js';
import { blobPath, layoutImage, writeLayout } from '../src/oci/layout.js';
import { appendLayers, emptyImage, setContainerConfig } from '../src/oci/mutate.js';
import { readDockerTarball, writeDockerTarball } from '../src/oci/tarball.js';
import { memoryLayer, readAll } from '../test/oci/fixtures.js';
import { withTempDir } from '../test/temp-dir.js';

const run = promisify(execFile);

function hasTool(tool: string): boolean {
  return spawnSync(tool, ['--version'], { stdio: 'ignore' }).error === undefined;
}

/** Skips the test (and says why) when a peer tool is missing; returns false then. */
function requireTools(t: TestContext, ...tools: string[]): boolean {
  const missing = tools.filter((tool) => !hasTool(tool));
  if (missing.length > 0) t.skip(`${missing.join(', ')} not installed`);
  return missing.length === 0;
}

async function tool(command: string, args: string[]): Promise<string> {
  try {
    return (await run(command, args, { maxBuffer: 16 << 20 })).stdout;
  } catch (err) {
    const { stderr } = err as { stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed: ${stderr ?? String(err)}`);
  }
}

const withDir = <T>(fn: (dir: string) => Promise<T>): Promise<T> => withTempDir('oci-outputs', fn);

const FILES_ONE = { 'etc/': '', 'etc/kiln-marker': 'built by kiln\n' };
const FILES_TWO = { 'opt/': '', 'opt/app/': '', 'opt/app/run.sh': '#!/bin/sh\necho hello\n' };

async function sampleImage(flavor: 'oci' | 'docker'): Promise<Image> {
  const one = await memoryLayer(FILES_ONE, 'gzip', flavor);
  const two = await memoryLayer(FILES_TWO, 'gzip', flavor);
  const base = emptyImage({ os: 'linux', architecture: 'amd64' }, flavor);
  const withLayers = appendLayers(base, [
    { layer: one.layer, history: { created_by: 'COPY kiln-marker /etc/' } },
    { layer: two.layer, history: { created_by: 'COPY run.sh /opt/app/' } },
  ]);
  return setContainerConfig(withLayers, { Cmd: ['/opt/app/run.sh'], Env: ['PATH=/usr/bin:/bin'] });
}

/** File name → content of the regular files in a tar stream. */
async function filesOf(tar: Readable): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const extract = tarExtract();
  tar.pipe(extract as unknown as NodeJS.WritableStream);
  for await (const entry of extract) {
    const content = await readAll(entry as unknown as Readable);
    if (entry.header.type === 'file') files.set(entry.header.name.replace(/^\.?\//, ''), content.toString());
  }
  return files;
}

test('skopeo inspects kiln’s OCI layout and copies it to another layout', async (t) => {
  if (!requireTools(t, 'skopeo')) return;
  await withDir(async (dir) => {
    const image = await sampleImage('oci');
    const layout = join(dir, 'layout');
    await writeLayout(layout, [{ image, refName: 'v1' }]);

    const inspected = JSON.parse(await tool('skopeo', ['inspect', `oci:${layout}:v1`])) as { Digest: string; Layers: string[]; Architecture: string; Os: string; Env: string[] };
    assert.equal(inspected.Digest, image.digest);
    assert.deepEqual(inspected.Layers, image.layers.map((l) => l.digest));
    assert.equal(inspected.Architecture, 'amd64');
    assert.deepEqual(inspected.Env, ['PATH=/usr/bin:/bin']);
    const rawConfig = await tool('skopeo', ['inspect', '--config', '--raw', `oci:${layout}:v1`]);
    assert.equal(rawConfig, image.rawConfig.toString());

    const other = join(dir, 'other');
    await tool('skopeo', ['copy', '--quiet', `oci:${layout}:v1`, `oci:${other}:copied`]);
    const copied = await layoutImage(other, { refName: 'copied' });
    assert.equal(copied.digest, image.digest, 'skopeo kept the manifest bytes');
    for (const [i, layer] of copied.layers.entries()) {
      assert.ok((await readAll(await layer.compressed())).equals(await readAll(await image.layers[i]!.compressed())));
    }
  });
});

test('umoci unpacks kiln’s OCI layout into the files put into its layers', async (t) => {
  if (!requireTools(t, 'umoci')) return;
  await withDir(async (dir) => {
    const image = await sampleImage('oci');
    const layout = join(dir, 'layout');
    await writeLayout(layout, [{ image, refName: 'v1' }]);
    const bundle = join(dir, 'bundle');
    const rootless = process.getuid?.() !== 0 ? ['--rootless'] : [];
    await tool('umoci', ['unpack', ...rootless, '--image', `${layout}:v1`, bundle]);
    assert.equal(await readFile(join(bundle, 'rootfs/etc/kiln-marker'), 'utf8'), FILES_ONE['etc/kiln-marker']);
    assert.equal(await readFile(join(bundle, 'rootfs/opt/app/run.sh'), 'utf8'), FILES_TWO['opt/app/run.sh']);
    const runtimeConfig = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as { process: { args: string[] } };
    assert.deepEqual(runtimeConfig.process.args, ['/opt/app/run.sh']);
  });
});

test('skopeo accepts kiln’s docker archive, and kiln reads skopeo’s', async (t) => {
  if (!requireTools(t, 'skopeo')) return;
  await withDir(async (dir) => {
    const image = await sampleImage('docker');
    const archive = join(dir, 'image.tar');
    await writeDockerTarball(archive, [{ image, tags: ['kiln.test/app:1'] }]);

    const inspected = JSON.parse(await tool('skopeo', ['inspect', `docker-archive:${archive}`])) as { Layers: string[]; Architecture: string; RepoTags: string[] };
    // skopeo serves docker-archive layers decompressed, so it names them by their diffIds.
    assert.deepEqual(inspected.Layers, image.config.rootfs.diff_ids);
    assert.equal(inspected.Architecture, 'amd64');
    const rawConfig = await tool('skopeo', ['inspect', '--config', '--raw', `docker-archive:${archive}`]);
    assert.equal(rawConfig, image.rawConfig.toString());

    // skopeo writes its archives with uncompressed layers behind legacy symlinks.
    const fromSkopeo = join(dir, 'skopeo.tar');
    await tool('skopeo', ['copy', '--quiet', `docker-archive:${archive}`, `docker-archive:${fromSkopeo}:kiln.test/copy:2`]);
    const read = await readDockerTarball(fromSkopeo);
    assert.deepEqual(read.config.rootfs.diff_ids, image.config.rootfs.diff_ids);
    for (const [i, layer] of read.layers.entries()) {
      assert.ok((await readAll(await layer.uncompressed())).equals(await readAll(await image.layers[i]!.uncompressed())), `layer ${i} content`);
    }
  });
});

test('kiln reads a layout written by umoci and copied by skopeo, blob bytes unchanged', async (t) => {
  if (!requireTools(t, 'umoci', 'skopeo')) return;
  await withDir(async (dir) => {
    const layout = join(dir, 'umoci');
    const bundle = join(dir, 'bundle');
    const rootless = process.getuid?.() !== 0 ? ['--rootless'] : [];
    await tool('umoci', ['init', '--layout', layout]);
    await tool('umoci', ['new', '--image', `${layout}:base`]);
    await tool('umoci', ['unpack', ...rootless, '--image', `${layout}:base`, bundle]);
    await mkdir(join(bundle, 'rootfs/srv'), { recursive: true });
    await writeFile(join(bundle, 'rootfs/srv/data.txt'), 'written by umoci\n');
    await tool('umoci', ['repack', '--image', `${layout}:base`, bundle]);

    const image = await layoutImage(layout, { refName: 'base' });
    assert.ok(image.rawManifest.equals(await readFile(blobPath(layout, image.digest))));
    assert.ok(image.rawConfig.equals(await readFile(blobPath(layout, image.manifest.config.digest))));
    assert.equal(image.layers.length, 1);
    const layer = image.layers[0]!;
    assert.ok((await readAll(await layer.compressed())).equals(await readFile(blobPath(layout, layer.digest))));
    assert.equal((await filesOf(await layer.uncompressed())).get('srv/data.txt'), 'written by umoci\n');

    const copied = join(dir, 'skopeo');
    await tool('skopeo', ['copy', '--quiet', `oci:${layout}:base`, `oci:${copied}:again`]);
    const again = await layoutImage(copied, { refName: 'again' });
    assert.equal(again.config.rootfs.diff_ids[0], layer.diffId);
    assert.ok((await readAll(await again.layers[0]!.compressed())).equals(await readFile(blobPath(copied, again.layers[0]!.digest))));
  });
});

test('the zstd command decompresses what kiln compresses', async (t) => {
  if (!requireTools(t, 'zstd')) return;
  await withDir(async (dir) => {
    const data = Buffer.from('kiln zstd stream '.repeat(100_000));
    const compressed = await readAll(Readable.from([data]).pipe(compress('zstd', 3)));
    const path = join(dir, 'data.zst');
    await writeFile(path, compressed);
    await tool('zstd', ['-q', '-d', path, '-o', join(dir, 'data')]);
    assert.ok((await readFile(join(dir, 'data'))).equals(data));
  });
});
