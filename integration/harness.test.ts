// Checks the integration harness itself with independent tools (skopeo, umoci, curl-like
// fetches), so that a failing kiln integration test points at kiln, not at its fixtures.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readlink, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  busyboxLayout,
  multiPlatformLayout,
  pullToLayout,
  pushLayout,
  skopeoInspect,
  startBlackHole,
  startFlakyProxy,
  startRegistry,
  umociUnpack,
  unusedPort,
  type FlakyProxy,
  type Layout,
  type RegistryVariant,
  type RunningRegistry,
} from './harness/index.js';
import { skopeo } from './harness/skopeo.js';

const REPO = 'kiln/busybox';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

/** Registries started by this file, to prove afterwards that each one is gone. */
const started: RunningRegistry[] = [];

async function registry(variant: RegistryVariant, options?: Parameters<typeof startRegistry>[1]): Promise<RunningRegistry> {
  const running = await startRegistry(variant, options);
  started.push(running);
  return running;
}

async function layoutManifestDigest(layout: Layout): Promise<string> {
  const index = JSON.parse(await readFile(join(layout.dir, 'index.json'), 'utf8'));
  return index.manifests.find((d: any) => d.annotations?.['org.opencontainers.image.ref.name'] === layout.tag).digest;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

let busybox: Layout;

before(async () => {
  const t0 = performance.now();
  busybox = await busyboxLayout();
  const t1 = performance.now();
  await busyboxLayout();
  const t2 = performance.now();
  console.log(`busybox layout: first call ${(t1 - t0).toFixed(0)} ms, cached call ${(t2 - t1).toFixed(0)} ms`);
});

describe('busybox layout', () => {
  it('unpacks with umoci into a shell, applet links and users', async (t) => {
    const work = await mkdtemp(join(tmpdir(), 'kiln-harness-bundle-'));
    t.after(() => rm(work, { recursive: true, force: true }));
    const bundle = join(work, 'bundle');
    await umociUnpack(busybox.dir, busybox.tag, bundle);
    assert.equal(await readlink(join(bundle, 'rootfs/bin/sh')), '/bin/busybox');
    assert.ok((await stat(join(bundle, 'rootfs/bin/busybox'))).mode & 0o111);
    assert.match(await readFile(join(bundle, 'rootfs/etc/passwd'), 'utf8'), /^root:x:0:0:/m);
    assert.match(await readFile(join(bundle, 'rootfs/etc/group'), 'utf8'), /^nobody:x:65534:/m);
    assert.equal((await stat(join(bundle, 'rootfs/tmp'))).mode & 0o7777, 0o1777);
  });
});

for (const variant of ['plain', 'basic', 'tls', 'token'] as const) {
  describe(`${variant} registry`, () => {
    let reg: RunningRegistry;
    before(async () => {
      const t0 = performance.now();
      reg = await registry(variant);
      console.log(`${variant} registry ready in ${(performance.now() - t0).toFixed(0)} ms at ${reg.url}`);
    });
    after(() => reg?.stop());

    it('takes a push from skopeo and gives the same manifest back', async () => {
      const t0 = performance.now();
      await pushLayout(busybox.dir, busybox.tag, reg, `${REPO}:latest`);
      console.log(`${variant}: skopeo push of busybox ${(performance.now() - t0).toFixed(0)} ms`);

      const raw = await skopeoInspect(reg, `${REPO}:latest`, { raw: true });
      assert.equal(raw.mediaType ?? OCI_MANIFEST, OCI_MANIFEST);
      const inspected = await skopeoInspect(reg, `${REPO}:latest`);
      assert.equal(inspected.Digest, await layoutManifestDigest(busybox));
      assert.equal(raw.layers.length, 1);
      const config = await skopeoInspect(reg, `${REPO}:latest`, { config: true });
      assert.equal(config.architecture, 'amd64');
      assert.equal(config.os, 'linux');
      assert.deepEqual(config.config.Cmd, ['sh']);

      const requests = await reg.settledRequests();
      assert.ok(
        requests.some((r) => r.method === 'PUT' && r.path === `/v2/${REPO}/manifests/latest` && r.status === 201),
        `no manifest PUT in ${JSON.stringify(requests)}`,
      );
      assert.ok(requests.some((r) => r.method === 'GET' && r.path.startsWith(`/v2/${REPO}/blobs/sha256:`)));
    });

    if (variant === 'basic' || variant === 'token') {
      it('refuses wrong and missing credentials', async () => {
        const wrong = { username: reg.username!, password: 'not-the-password' };
        await assert.rejects(pushLayout(busybox.dir, busybox.tag, reg, `${REPO}:wrong`, { creds: wrong }));
        await assert.rejects(skopeoInspect(reg, `${REPO}:latest`, { creds: wrong }));
        await assert.rejects(skopeoInspect(reg, `${REPO}:latest`, { creds: null }));
        const leaked = JSON.stringify([reg.requests(), reg.tokenRequests()]);
        assert.ok(!leaked.includes(reg.password!), 'the password shows up in the recorded requests');
      });
    }

    if (variant === 'tls') {
      it('serves a certificate that only the test CA vouches for', async () => {
        assert.ok(reg.url.startsWith('https://'));
        await assert.rejects(skopeo(['inspect', '--no-creds', '--tls-verify=true', `docker://${reg.host}/${REPO}:latest`]));
        const pem = await readFile(reg.caCertPath!, 'utf8');
        assert.match(pem, /BEGIN CERTIFICATE/);
      });
    }

    if (variant === 'token') {
      it('issued tokens for the pull and push scopes to the known user only', () => {
        const seen = reg.tokenRequests();
        assert.ok(
          seen.some((r) => r.user === 'kiln' && r.scopes.includes(`repository:${REPO}:pull,push`)),
          `token requests: ${JSON.stringify(seen)}`,
        );
        assert.ok(seen.some((r) => r.user === 'kiln' && r.scopes.includes(`repository:${REPO}:pull`)));
        assert.ok(seen.some((r) => r.rejected), 'the wrong password was not refused by the token server');
        assert.ok(seen.every((r) => r.service === undefined || r.service === reg.service));
      });

      it('gives anonymous clients a token with empty access', async () => {
        const response = await fetch(`${reg.realm}?service=${reg.service}&scope=repository:${REPO}:pull`);
        assert.equal(response.status, 200);
        const { token } = (await response.json()) as { token: string };
        const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
        assert.deepEqual(claims.access, []);
        assert.equal(claims.aud, reg.service);
        const denied = await fetch(`${reg.url}/v2/${REPO}/tags/list`, { headers: { Authorization: `Bearer ${token}` } });
        assert.equal(denied.status, 401);
        assert.match(denied.headers.get('www-authenticate') ?? '', /^Bearer realm=/);
      });
    }
  });
}

describe('token registry with a kid header', () => {
  let reg: RunningRegistry;
  before(async () => { reg = await registry('token', { tokenKeyHeader: 'kid', tokenLifetimeSeconds: 5 }); });
  after(() => reg?.stop());

  it('accepts tokens that name their key by libtrust id', async () => {
    await pushLayout(busybox.dir, busybox.tag, reg, `${REPO}:kid`);
    const inspected = await skopeoInspect(reg, `${REPO}:kid`);
    assert.equal(inspected.Digest, await layoutManifestDigest(busybox));
    const response = await fetch(`${reg.realm}?service=${reg.service}&scope=repository:${REPO}:pull`, {
      headers: { Authorization: `Basic ${Buffer.from(`${reg.username}:${reg.password}`).toString('base64')}` },
    });
    const body = (await response.json()) as { token: string; expires_in: number };
    assert.equal(body.expires_in, 5);
    const header = JSON.parse(Buffer.from(body.token.split('.')[0]!, 'base64url').toString('utf8'));
    assert.match(header.kid, /^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
  });
});

describe('multi-platform layout', () => {
  let reg: RunningRegistry;
  let multi: Layout;
  before(async () => {
    const t0 = performance.now();
    multi = await multiPlatformLayout();
    console.log(`multi-platform layout: ${(performance.now() - t0).toFixed(0)} ms`);
    reg = await registry('plain');
  });
  after(() => reg?.stop());

  it('pushes as an index of linux/amd64 and linux/arm64 with a /platform marker each', async (t) => {
    await pushLayout(multi.dir, multi.tag, reg, `${REPO}:multi`, { all: true });
    const index = await skopeoInspect(reg, `${REPO}:multi`, { raw: true });
    assert.equal(index.mediaType, OCI_INDEX);
    assert.deepEqual(
      index.manifests.map((m: any) => `${m.platform.os}/${m.platform.architecture}`),
      ['linux/amd64', 'linux/arm64'],
    );
    const arm = index.manifests.find((m: any) => m.platform.architecture === 'arm64');
    const config = await skopeoInspect(reg, `${REPO}@${arm.digest}`, { config: true });
    assert.equal(config.architecture, 'arm64');

    const work = await mkdtemp(join(tmpdir(), 'kiln-harness-multi-'));
    t.after(() => rm(work, { recursive: true, force: true }));
    await pullToLayout(reg, `${REPO}@${arm.digest}`, join(work, 'layout'), 'arm64');
    await umociUnpack(join(work, 'layout'), 'arm64', join(work, 'bundle'));
    assert.equal(await readFile(join(work, 'bundle/rootfs/platform'), 'utf8'), 'linux/arm64\n');
  });
});

describe('flaky proxy', () => {
  let reg: RunningRegistry;
  const proxies: FlakyProxy[] = [];
  const manifestPath = `/v2/${REPO}/manifests/latest`;
  const isManifestGet = (method: string, path: string) => method === 'GET' && path.includes('/manifests/');
  before(async () => {
    reg = await registry('plain');
    await pushLayout(busybox.dir, busybox.tag, reg, `${REPO}:latest`);
  });
  after(async () => {
    for (const proxy of proxies) await proxy.stop();
    await reg?.stop();
  });
  const proxy = async (plan: Parameters<typeof startFlakyProxy>[1]) => {
    const started = await startFlakyProxy(reg.host, plan);
    proxies.push(started);
    return started;
  };
  const getManifest = (base: string) =>
    fetch(`${base}${manifestPath}`, { headers: { Accept: OCI_MANIFEST } });

  it('answers 503 the planned number of times, then forwards', async () => {
    const p = await proxy({ failures: 2, mode: '503', match: isManifestGet });
    assert.equal((await fetch(`${p.url}/v2/`)).status, 200);
    assert.equal((await getManifest(p.url)).status, 503);
    assert.equal((await getManifest(p.url)).status, 503);
    const ok = await getManifest(p.url);
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('docker-content-digest'), await layoutManifestDigest(busybox));
    assert.deepEqual(
      p.requests().map((r) => r.outcome),
      ['forwarded', 'failed', 'failed', 'forwarded'],
    );
    const reached = (await reg.settledRequests()).filter((r) => r.method === 'GET' && r.path === manifestPath);
    assert.equal(reached.length, 1, 'failed requests must not reach the registry');
  });

  it('answers 429 with Retry-After: 0', async () => {
    const p = await proxy({ failures: 1, mode: '429' });
    const limited = await getManifest(p.url);
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get('retry-after'), '0');
    assert.equal((await getManifest(p.url)).status, 200);
  });

  it('drops the connection before answering', async () => {
    const p = await proxy({ failures: 1, mode: 'reset', match: isManifestGet });
    await assert.rejects(getManifest(p.url));
    assert.equal((await getManifest(p.url)).status, 200);
    assert.deepEqual(p.requests().map((r) => r.outcome), ['failed', 'forwarded']);
  });

  it('streams a whole push through and keeps uploads on the proxy', async () => {
    const p = await proxy({ failures: 0, mode: '503' });
    const start = await fetch(`${p.url}/v2/${REPO}/blobs/uploads/`, { method: 'POST' });
    assert.equal(start.status, 202);
    assert.ok(start.headers.get('location')!.startsWith(`${p.url}/v2/${REPO}/blobs/uploads/`), start.headers.get('location')!);
    await pushLayout(busybox.dir, busybox.tag, { ...reg, host: p.host }, `${REPO}:via-proxy`);
    const inspected = await skopeoInspect(reg, `${REPO}:via-proxy`);
    assert.equal(inspected.Digest, await layoutManifestDigest(busybox));
    assert.ok(p.requests().some((r) => r.method === 'PUT' && r.path === `/v2/${REPO}/manifests/via-proxy`));
  });
});

describe('unreachable registries', () => {
  it('unusedPort() refuses connections', async () => {
    const { host } = await unusedPort();
    await assert.rejects(fetch(`http://${host}/v2/`), (error: any) => error.cause?.code === 'ECONNREFUSED');
  });

  it('startBlackHole() accepts and never answers', async (t) => {
    const hole = await startBlackHole();
    t.after(() => hole.stop());
    await assert.rejects(fetch(`${hole.url}/v2/`, { signal: AbortSignal.timeout(300) }), { name: 'TimeoutError' });
    assert.equal(hole.connections(), 1);
  });
});

after(async () => {
  for (const reg of started) {
    await reg.stop();
    assert.equal(isAlive(reg.pid), false, `docker-registry ${reg.pid} (${reg.variant}) still runs`);
    await assert.rejects(stat(reg.storageDir), { code: 'ENOENT' });
  }
});
