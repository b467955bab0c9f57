/**
 * kiln's registry client when the network misbehaves: a proxy in front of a real registry
 * answers 503 or drops connections before passing requests on, and a registry address where
 * nothing listens.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import type { Image } from '../src/oci/image.js';
import { blobPath, layoutImage } from '../src/oci/layout.js';
import { appendLayers } from '../src/oci/mutate.js';
import { RegistryClient, type RegistryClientOptions } from '../src/registry/client.js';
import { createCredentialStore } from '../src/registry/credentials.js';
import { parseRegistryOptions } from '../src/registry/endpoints.js';
import { pushImage } from '../src/registry/push.js';
import { parseReference } from '../src/registry/reference.js';
import { fetchRemoteImage } from '../src/registry/remote.js';
import { isKilnError } from '../src/util/errors.js';
import { memoryLayer, readAll } from '../test/oci/fixtures.js';
import {
  busyboxLayout,
  pushLayout,
  skopeoInspect,
  startFlakyProxy,
  startRegistry,
  unusedPort,
  type FailurePlan,
  type FlakyProxy,
  type Layout,
  type RunningRegistry,
} from './harness/index.js';

const REF_NAME = 'org.opencontainers.image.ref.name';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** A client as `kiln --insecure-registry=HOST` builds one, with no credentials for HOST. */
async function plainClient(host: string, retry: RegistryClientOptions['retry']): Promise<RegistryClient> {
  const dockerConfig = await mkdtemp(join(tmpdir(), 'kiln-docker-config-'));
  cleanups.push(() => rm(dockerConfig, { recursive: true, force: true }));
  await writeFile(join(dockerConfig, 'config.json'), JSON.stringify({ auths: {} }));
  const client = new RegistryClient({
    registry: parseRegistryOptions({ insecureRegistry: [host] }, {}),
    credentials: createCredentialStore({ env: { DOCKER_CONFIG: dockerConfig } }),
    retry,
  });
  cleanups.push(() => client.close());
  return client;
}

/** Every request the proxy failed was sent again later and that time passed on to the registry. */
function assertRetried(proxy: FlakyProxy, failures: number): void {
  const log = proxy.requests();
  const failed = log.map((entry, index) => ({ entry, index })).filter(({ entry }) => entry.outcome === 'failed');
  assert.equal(failed.length, failures, JSON.stringify(log));
  for (const { entry, index } of failed) {
    const retried = log.slice(index + 1).some((later) => later.outcome === 'forwarded' && later.method === entry.method && later.path === entry.path);
    assert.ok(retried, `${entry.method} ${entry.path} failed and was not retried: ${JSON.stringify(log)}`);
  }
}

describe('flaky proxy in front of a registry', () => {
  let reg: RunningRegistry;
  let busybox: Layout;
  let busyboxDigest: string;
  let image: Image;

  before(async () => {
    busybox = await busyboxLayout();
    reg = await startRegistry('plain');
    cleanups.push(() => reg.stop());
    await pushLayout(busybox.dir, busybox.tag, reg, 'kiln/busybox:latest');
    const index = JSON.parse(await readFile(join(busybox.dir, 'index.json'), 'utf8'));
    busyboxDigest = index.manifests.find((d: any) => d.annotations?.[REF_NAME] === busybox.tag).digest;
    const base = await layoutImage(busybox.dir, { refName: busybox.tag });
    const added = await memoryLayer({ 'kiln/': '', 'kiln/flaky.txt': 'pushed through a flaky proxy\n' });
    image = appendLayers(base, [{ layer: added.layer, history: { created_by: 'COPY flaky.txt /kiln/' } }]);
  });

  async function proxy(plan: FailurePlan): Promise<FlakyProxy> {
    const started = await startFlakyProxy(reg.host, plan);
    cleanups.push(() => started.stop());
    return started;
  }

  for (const mode of ['503', 'reset'] as const) {
    it(`pulls through a proxy that fails the first 2 requests (${mode})`, async () => {
      const p = await proxy({ failures: 2, mode });
      const client = await plainClient(p.host, { retries: 3, baseDelayMs: 10 });
      const { image: pulled, topDigest } = await fetchRemoteImage(client, parseReference(`${p.host}/kiln/busybox:latest`));
      assert.equal(topDigest, busyboxDigest);
      for (const layer of pulled.layers) {
        assert.deepEqual(await readAll(await layer.compressed()), await readFile(blobPath(busybox.dir, layer.digest)));
      }
      assertRetried(p, 2);
    });

    it(`pushes through a proxy that fails the first 2 requests (${mode})`, async () => {
      const p = await proxy({ failures: 2, mode });
      const client = await plainClient(p.host, { retries: 3, baseDelayMs: 10 });
      const repo = `kiln/pushed-${mode}`;
      const result = await pushImage(client, image, parseReference(`${p.host}/${repo}:v1`));
      assert.equal(result.digest, image.digest);
      assert.equal((await skopeoInspect(reg, `${repo}:v1`)).Digest, image.digest);
      assertRetried(p, 2);
    });
  }

  it('sends a blob again when the connection drops during its upload', async () => {
    const isBlobPut = (method: string, path: string) => method === 'PUT' && path.includes('/blobs/uploads/');
    const p = await proxy({ failures: 2, mode: 'reset', match: isBlobPut });
    const client = await plainClient(p.host, { retries: 3, baseDelayMs: 10 });
    const repo = 'kiln/pushed-upload-reset';
    const result = await pushImage(client, image, parseReference(`${p.host}/${repo}:v1`));
    assert.equal(result.digest, image.digest);
    assert.deepEqual(result.blobs.map((b) => b.result.kind), ['uploaded', 'uploaded', 'uploaded']);
    assertRetried(p, 2);
    assert.ok(p.requests().filter((r) => r.outcome === 'failed').every((r) => isBlobPut(r.method, r.path.split('?')[0]!)));
    const uploaded = (await reg.settledRequests()).filter((r) => r.method === 'PUT' && r.path.startsWith(`/v2/${repo}/blobs/uploads/`));
    assert.equal(uploaded.length, 3, JSON.stringify(uploaded));
    assert.ok(uploaded.every((r) => r.status === 201), JSON.stringify(uploaded));
    assert.equal((await skopeoInspect(reg, `${repo}:v1`)).Digest, image.digest);
  });
});

describe('unreachable registry', () => {
  it('gives one sentence naming the host, for pull and push', async () => {
    const { host } = await unusedPort();
    const client = await plainClient(host, { retries: 1, baseDelayMs: 10 });
    const busybox = await busyboxLayout();
    const image = await layoutImage(busybox.dir, { refName: busybox.tag });
    const unreachable = (err: unknown): boolean => {
      assert.ok(isKilnError(err, 'REGISTRY_UNREACHABLE'), inspect(err));
      assert.ok(err.message.includes(host), err.message);
      assert.doesNotMatch(err.message, /\n/);
      assert.match(err.message, /\.$/);
      return true;
    };
    await assert.rejects(fetchRemoteImage(client, parseReference(`${host}/kiln/busybox:latest`)), unreachable);
    await assert.rejects(pushImage(client, image, parseReference(`${host}/kiln/busybox:latest`)), unreachable);
  });
});
