/**
 * kiln's registry client against a real registry (distribution, plain HTTP): pulls of images
 * skopeo pushed, pushes that skopeo and umoci accept, cross-repository mounts, image indexes
 * resolved per platform, corrupted blobs refused, and chunked uploads.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { extract as tarExtract } from 'tar-stream';
import { sha256 } from '../src/oci/digest.js';
import type { Image } from '../src/oci/image.js';
import { blobPath, layoutImage } from '../src/oci/layout.js';
import { appendLayers } from '../src/oci/mutate.js';
import { hostPlatform, parsePlatform } from '../src/oci/platform.js';
import { RegistryClient } from '../src/registry/client.js';
import { createCredentialStore } from '../src/registry/credentials.js';
import { parseRegistryOptions } from '../src/registry/endpoints.js';
import { pushImage } from '../src/registry/push.js';
import { parseReference, type Reference } from '../src/registry/reference.js';
import { fetchRemoteImage } from '../src/registry/remote.js';
import { isKilnError } from '../src/util/errors.js';
import { memoryLayer, readAll } from '../test/oci/fixtures.js';
import {
  busyboxLayout,
  multiPlatformLayout,
  pullToLayout,
  pushLayout,
  skopeoInspect,
  startRegistry,
  umociUnpack,
  type Layout,
  type LoggedRequest,
  type RunningRegistry,
} from './harness/index.js';

const REF_NAME = 'org.opencontainers.image.ref.name';

let reg: RunningRegistry;
let client: RegistryClient;
let busybox: Layout;
const cleanups: (() => Promise<unknown>)[] = [];

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `kiln-${prefix}-`));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A client as `kiln` builds one from its flags: plain HTTP to the registry, a config.json with no entry for it. */
async function plainClient(registry: RunningRegistry): Promise<RegistryClient> {
  const dockerConfig = await tempDir('docker-config');
  await writeFile(join(dockerConfig, 'config.json'), JSON.stringify({ auths: {} }));
  const created = new RegistryClient({
    registry: parseRegistryOptions({ insecureRegistry: [registry.host] }, {}),
    credentials: createCredentialStore({ env: { DOCKER_CONFIG: dockerConfig } }),
  });
  cleanups.push(() => created.close());
  return created;
}

function ref(text: string): Reference {
  return parseReference(`${reg.host}/${text}`);
}

async function layoutManifestDigest(layout: Layout): Promise<string> {
  const index = JSON.parse(await readFile(join(layout.dir, 'index.json'), 'utf8'));
  return index.manifests.find((d: any) => d.annotations?.[REF_NAME] === layout.tag).digest;
}

/** The access-log entries written while `fn` ran. */
async function requestsDuring(fn: () => Promise<unknown>): Promise<LoggedRequest[]> {
  const before = (await reg.settledRequests()).length;
  await fn();
  return (await reg.settledRequests()).slice(before);
}

/** Regular files of a tar stream, name (without a leading ./ or /) to content. */
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

/** Busybox plus one small layer that adds /kiln/added.txt, as a build step would. */
async function busyboxPlusFile(content: string): Promise<{ image: Image; added: Awaited<ReturnType<typeof memoryLayer>> }> {
  const base = await layoutImage(busybox.dir, { refName: busybox.tag });
  const added = await memoryLayer({ 'kiln/': '', 'kiln/added.txt': content });
  const image = appendLayers(base, [{ layer: added.layer, history: { created_by: 'COPY added.txt /kiln/' } }]);
  return { image, added };
}

before(async () => {
  busybox = await busyboxLayout();
  reg = await startRegistry('plain');
  client = await plainClient(reg);
});

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await reg?.stop();
});

describe('pull', () => {
  it('reads an image skopeo pushed, byte for byte', async () => {
    await pushLayout(busybox.dir, busybox.tag, reg, 'kiln/busybox:latest');
    const expected = await layoutManifestDigest(busybox);

    const remote = await fetchRemoteImage(client, ref('kiln/busybox:latest'));
    assert.equal(remote.topDigest, expected);
    assert.equal(remote.resolved.digest, expected);
    assert.equal(remote.image.digest, expected);
    assert.deepEqual(remote.image.rawManifest, await readFile(blobPath(busybox.dir, expected)));

    assert.ok(remote.image.layers.length > 0);
    for (const layer of remote.image.layers) {
      const pulled = await readAll(await layer.compressed());
      assert.deepEqual(pulled, await readFile(blobPath(busybox.dir, layer.digest)), `layer ${layer.digest} differs from the layout`);
    }
    const configDigest = remote.image.manifest.config.digest;
    const layoutConfig = await readFile(blobPath(busybox.dir, configDigest));
    assert.deepEqual(remote.image.rawConfig, layoutConfig);
    const streamed = await readAll(await client.getBlob(ref('kiln/busybox:latest'), remote.image.manifest.config));
    assert.deepEqual(streamed, layoutConfig);
    assert.equal(remote.image.config.architecture, 'amd64');
  });
});

describe('push', () => {
  let image: Image;
  let added: Awaited<ReturnType<typeof memoryLayer>>;
  let pushedDigest: string;
  const FIRST = 'kiln/pushed';
  const SECOND = 'kiln/mounted';

  before(async () => {
    ({ image, added } = await busyboxPlusFile('added by kiln\n'));
  });

  it('pushes an image that skopeo and umoci accept', async () => {
    const result = await pushImage(client, image, ref(`${FIRST}:v1`));
    pushedDigest = result.digest;
    assert.equal(result.digest, image.digest);
    assert.deepEqual(result.blobs.map((b) => b.result.kind), ['uploaded', 'uploaded', 'uploaded']);

    const inspected = await skopeoInspect(reg, `${FIRST}:v1`);
    assert.equal(inspected.Digest, image.digest);
    const raw = await skopeoInspect(reg, `${FIRST}:v1`, { raw: true });
    assert.deepEqual(raw.layers.map((l: any) => l.digest), image.layers.map((l) => l.digest));
    assert.equal(raw.layers.at(-1).digest, added.layer.digest);
    const config = await skopeoInspect(reg, `${FIRST}:v1`, { config: true });
    assert.equal(config.rootfs.diff_ids.at(-1), added.layer.diffId);
    assert.equal(config.history.at(-1).created_by, 'COPY added.txt /kiln/');

    const work = await tempDir('pushed-copy');
    await pullToLayout(reg, `${FIRST}:v1`, join(work, 'layout'), 'v1');
    await umociUnpack(join(work, 'layout'), 'v1', join(work, 'bundle'));
    assert.equal(await readFile(join(work, 'bundle/rootfs/kiln/added.txt'), 'utf8'), 'added by kiln\n');
    assert.match(await readFile(join(work, 'bundle/rootfs/etc/passwd'), 'utf8'), /^root:x:0:0:/m);
  });

  it('mounts every blob from a repository known to hold them', async () => {
    assert.ok(pushedDigest, 'the first push did not happen');
    let result: Awaited<ReturnType<typeof pushImage>> | undefined;
    const requests = await requestsDuring(async () => {
      result = await pushImage(client, image, ref(`${SECOND}:v1`), {
        knownLocations: [{ registry: reg.host, repository: FIRST }],
      });
    });
    assert.equal(result!.digest, pushedDigest);
    assert.deepEqual(result!.blobs.map((b) => b.result), [
      { kind: 'mounted', from: FIRST },
      { kind: 'mounted', from: FIRST },
      { kind: 'mounted', from: FIRST },
    ]);
    const mounts = requests.filter((r) => r.method === 'POST' && r.path === `/v2/${SECOND}/blobs/uploads/`);
    assert.equal(mounts.length, 3, JSON.stringify(requests));
    for (const mount of mounts) {
      const query = new URLSearchParams(mount.query);
      assert.equal(query.get('from'), FIRST);
      assert.match(query.get('mount') ?? '', /^sha256:[0-9a-f]{64}$/);
      assert.equal(mount.status, 201);
    }
    const mounted = new Set(mounts.map((m) => new URLSearchParams(m.query).get('mount')));
    assert.deepEqual(mounted, new Set([...image.layers.map((l) => l.digest), image.manifest.config.digest]));
    const uploads = requests.filter((r) => (r.method === 'PUT' || r.method === 'PATCH') && r.path.includes('/blobs/'));
    assert.deepEqual(uploads, [], 'the second push uploaded blob content');
    assert.ok(requests.some((r) => r.method === 'PUT' && r.path === `/v2/${SECOND}/manifests/v1` && r.status === 201));
    assert.equal((await skopeoInspect(reg, `${SECOND}:v1`)).Digest, pushedDigest);
  });

  it('uploads nothing when the repository has every blob already', async () => {
    assert.ok(pushedDigest, 'the first push did not happen');
    let result: Awaited<ReturnType<typeof pushImage>> | undefined;
    const requests = await requestsDuring(async () => {
      result = await pushImage(client, image, ref(`${FIRST}:v2`));
    });
    assert.deepEqual(result!.blobs.map((b) => b.result.kind), ['exists', 'exists', 'exists']);
    assert.equal(result!.uploadedBytes, 0);
    const blobRequests = requests.filter((r) => r.path.includes('/blobs/'));
    assert.equal(blobRequests.length, 3, JSON.stringify(requests));
    assert.ok(blobRequests.every((r) => r.method === 'HEAD' && r.status === 200), JSON.stringify(blobRequests));
    assert.equal((await skopeoInspect(reg, `${FIRST}:v2`)).Digest, pushedDigest);
  });
});

describe('image index', () => {
  let multiDigest: string;
  const REPO = 'kiln/multi';

  before(async () => {
    const multi = await multiPlatformLayout();
    await pushLayout(multi.dir, multi.tag, reg, `${REPO}:multi`, { all: true });
    multiDigest = await layoutManifestDigest(multi);
  });

  /** The content of /platform in the image's last layer. */
  async function platformMarker(image: Image): Promise<string | undefined> {
    const files = await filesOf(await image.layers.at(-1)!.uncompressed());
    return files.get('platform');
  }

  it('resolves to the image for the asked platform', async () => {
    const remote = await fetchRemoteImage(client, ref(`${REPO}:multi`), { platform: parsePlatform('linux/arm64') });
    assert.equal(remote.topDigest, multiDigest);
    assert.notEqual(remote.resolved.digest, multiDigest);
    assert.equal(remote.image.digest, remote.resolved.digest);
    assert.equal(remote.image.config.architecture, 'arm64');
    assert.equal(await platformMarker(remote.image), 'linux/arm64\n');

    const index = await skopeoInspect(reg, `${REPO}:multi`, { raw: true });
    const arm = index.manifests.find((m: any) => m.platform.architecture === 'arm64');
    assert.equal(remote.resolved.digest, arm.digest);
  });

  it('resolves to the host platform by default', async (t) => {
    const host = hostPlatform();
    if (host.os !== 'linux' || !['amd64', 'arm64'].includes(host.architecture)) {
      t.skip(`the index has no image for this host (${host.os}/${host.architecture})`);
      return;
    }
    const remote = await fetchRemoteImage(client, ref(`${REPO}:multi`));
    assert.equal(remote.image.config.architecture, host.architecture);
    assert.equal(await platformMarker(remote.image), `linux/${host.architecture}\n`);
  });

  it('names the available platforms when the asked one is missing', async () => {
    await assert.rejects(
      fetchRemoteImage(client, ref(`${REPO}:multi`), { platform: parsePlatform('linux/s390x') }),
      (err: unknown) => {
        assert.ok(isKilnError(err, 'PLATFORM_NOT_FOUND'), String(err));
        assert.match(err.message, /linux\/s390x/);
        assert.match(err.message, /linux\/amd64/);
        assert.match(err.message, /linux\/arm64/);
        assert.doesNotMatch(err.message, /\n/);
        return true;
      },
    );
  });
});

describe('corrupted storage', () => {
  it('refuses a layer whose bytes no longer match its digest', async () => {
    const base = await layoutImage(busybox.dir, { refName: busybox.tag });
    // A layer of its own, so that corrupting it breaks no other test's image.
    const unique = await memoryLayer({ 'kiln/': '', 'kiln/unique.bin': randomBytes(2048).toString('base64') });
    const image = appendLayers(base, [{ layer: unique.layer }]);
    await pushImage(client, image, ref('kiln/corrupt:v1'));

    const hex = unique.layer.digest.slice('sha256:'.length);
    const dataFile = join(reg.storageDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
    const original = await readFile(dataFile);
    assert.deepEqual(original, unique.blob);
    const corrupted = Buffer.from(original);
    for (let i = 0; i < corrupted.length; i++) corrupted[i] = corrupted[i]! ^ 0xff;
    await writeFile(dataFile, corrupted);

    const remote = await fetchRemoteImage(client, ref('kiln/corrupt:v1'));
    const layer = remote.image.layers.at(-1)!;
    assert.equal(layer.digest, unique.layer.digest);
    await assert.rejects(
      (async () => readAll(await layer.compressed()))(),
      (err: unknown) => {
        assert.ok(isKilnError(err, 'DIGEST_MISMATCH'), String(err));
        assert.ok(err.message.includes(unique.layer.digest), err.message);
        return true;
      },
    );
    // The other layers of that image are intact and still read.
    const first = remote.image.layers[0]!;
    assert.deepEqual(await readAll(await first.compressed()), await readFile(blobPath(busybox.dir, first.digest)));
  });
});

describe('chunked upload', () => {
  it('uploads a blob in 64 KiB chunks that reads back equal', async () => {
    const blob = randomBytes(300 * 1024 + 123);
    const digest = sha256(blob);
    const target = ref('kiln/chunked:v1');
    let result: Awaited<ReturnType<RegistryClient['uploadBlob']>> | undefined;
    const requests = await requestsDuring(async () => {
      result = await client.uploadBlob(
        target,
        { digest, size: blob.length, open: async () => Readable.from([blob.subarray(0, 100_000), blob.subarray(100_000)]) },
        { chunkSize: 64 * 1024 },
      );
    });
    assert.deepEqual(result, { kind: 'uploaded', bytes: blob.length });
    const patches = requests.filter((r) => r.method === 'PATCH');
    assert.equal(patches.length, Math.ceil(blob.length / (64 * 1024)), JSON.stringify(requests));
    assert.ok(patches.every((r) => r.status === 202));
    const puts = requests.filter((r) => r.method === 'PUT' && r.path.startsWith('/v2/kiln/chunked/blobs/uploads/'));
    assert.equal(puts.length, 1);
    assert.equal(puts[0]!.status, 201);
    assert.equal(new URLSearchParams(puts[0]!.query).get('digest'), digest);

    assert.equal(await client.headBlob(target, digest), blob.length);
    assert.deepEqual(await readAll(await client.getBlob(target, { digest, size: blob.length })), blob);
  });
});
