/**
 * kiln's registry client against real registries that want credentials or TLS: htpasswd
 * Basic, Bearer tokens from a token server, and HTTPS with a private CA. Credentials come from
 * a docker config.json, as in a kaniko pipeline; failures are one sentence with a stable code.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import type { Image } from '../src/oci/image.js';
import { layoutImage } from '../src/oci/layout.js';
import { appendLayers } from '../src/oci/mutate.js';
import { RegistryClient } from '../src/registry/client.js';
import { createCredentialStore } from '../src/registry/credentials.js';
import { parseRegistryOptions, type RegistryFlagValues } from '../src/registry/endpoints.js';
import { pushImage } from '../src/registry/push.js';
import { parseReference, type Reference } from '../src/registry/reference.js';
import { fetchRemoteImage } from '../src/registry/remote.js';
import { isKilnError, type ErrorCode } from '../src/util/errors.js';
import { memoryLayer, readAll } from '../test/oci/fixtures.js';
import {
  busyboxLayout,
  skopeoInspect,
  startRegistry,
  type Credentials,
  type Layout,
  type RegistryVariant,
  type RunningRegistry,
} from './harness/index.js';

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

let busybox: Layout;
let image: Image;
before(async () => {
  busybox = await busyboxLayout();
  const base = await layoutImage(busybox.dir, { refName: busybox.tag });
  const added = await memoryLayer({ 'kiln/': '', 'kiln/auth.txt': 'pushed with credentials\n' });
  image = appendLayers(base, [{ layer: added.layer, history: { created_by: 'COPY auth.txt /kiln/' } }]);
});

/**
 * A client built the way `kiln` builds one: registry flags, and a DOCKER_CONFIG directory
 * whose config.json holds `creds` for the registry (none when null).
 */
async function kilnClient(reg: RunningRegistry, flags: RegistryFlagValues, creds: Credentials | null): Promise<RegistryClient> {
  const dockerConfig = await mkdtemp(join(tmpdir(), 'kiln-docker-config-'));
  cleanups.push(() => rm(dockerConfig, { recursive: true, force: true }));
  const auths = creds ? { [reg.host]: { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') } } : {};
  await writeFile(join(dockerConfig, 'config.json'), JSON.stringify({ auths }));
  const client = new RegistryClient({
    registry: parseRegistryOptions(flags, {}),
    credentials: createCredentialStore({ env: { DOCKER_CONFIG: dockerConfig } }),
    retry: { retries: 1, baseDelayMs: 10 },
  });
  cleanups.push(() => client.close());
  return client;
}

/** The flags a user passes to reach this registry variant: its CA for tls, plain HTTP otherwise. */
function flagsFor(reg: RunningRegistry): RegistryFlagValues {
  return reg.variant === 'tls' ? { registryCertificate: [`${reg.host}=${reg.caCertPath}`] } : { insecureRegistry: [reg.host] };
}

function rightCredentials(reg: RunningRegistry): Credentials | null {
  return reg.username ? { username: reg.username, password: reg.password! } : null;
}

/** Pulls `ref` and reads every layer to its end, so the content is verified too. */
async function pullAll(client: RegistryClient, ref: Reference): Promise<Image> {
  const { image: pulled } = await fetchRemoteImage(client, ref);
  for (const layer of pulled.layers) await readAll(await layer.compressed());
  return pulled;
}

/** Asserts one user-facing sentence with `code` that does not leak `secret`. */
function oneSentence(code: ErrorCode, secret: string | undefined, pattern?: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(isKilnError(err, code), `expected ${code}, got ${inspect(err)}`);
    assert.doesNotMatch(err.message, /\n/);
    assert.match(err.message, /\.$/);
    if (pattern) assert.match(err.message, pattern);
    if (secret) {
      assert.ok(!err.message.includes(secret), 'the password shows up in the message');
      assert.ok(!inspect(err, { depth: 10 }).includes(secret), 'the password shows up in the error or its cause');
    }
    return true;
  };
}

for (const variant of ['basic', 'tls', 'token'] as const satisfies readonly RegistryVariant[]) {
  describe(`${variant} registry`, () => {
    let reg: RunningRegistry;
    const REPO = `kiln/${variant}`;
    before(async () => {
      reg = await startRegistry(variant);
      cleanups.push(() => reg.stop());
    });
    const at = (tag: string) => parseReference(`${reg.host}/${REPO}:${tag}`);

    it('pushes and pulls with the right credentials', async () => {
      const client = await kilnClient(reg, flagsFor(reg), rightCredentials(reg));
      const pushed = await pushImage(client, image, at('v1'));
      assert.equal(pushed.digest, image.digest);
      assert.equal((await skopeoInspect(reg, `${REPO}:v1`)).Digest, image.digest);

      const pulled = await pullAll(client, at('v1'));
      assert.equal(pulled.digest, image.digest);
      assert.deepEqual(pulled.rawConfig, image.rawConfig);
    });

    if (variant === 'basic' || variant === 'token') {
      it('fails with one sentence on a wrong password, for pull and push', async () => {
        const wrong = { username: reg.username!, password: `wrong-${reg.password}` };
        const client = await kilnClient(reg, flagsFor(reg), wrong);
        await assert.rejects(fetchRemoteImage(client, at('v1')), oneSentence('REGISTRY_AUTH', wrong.password, /credentials/));
        await assert.rejects(pushImage(client, image, at('wrong')), oneSentence('REGISTRY_AUTH', wrong.password, /credentials/));
        await assert.rejects(skopeoInspect(reg, `${REPO}:wrong`), 'the failed push left a tag behind');
      });

      it('says that credentials are required when it has none', async () => {
        const client = await kilnClient(reg, flagsFor(reg), null);
        const required = new RegExp(`${reg.host.replace(/\./g, '\\.')} requires credentials`);
        await assert.rejects(fetchRemoteImage(client, at('v1')), oneSentence('REGISTRY_AUTH', undefined, required));
        await assert.rejects(pushImage(client, image, at('anonymous')), oneSentence('REGISTRY_AUTH', undefined, required));
      });
    }

    if (variant === 'token') {
      it('asks the token server for pull and pull,push scopes, once per scope', async () => {
        const client = await kilnClient(reg, flagsFor(reg), rightCredentials(reg));
        const ref = at('scopes');
        // An earlier test's failed push may still have token requests in flight: let them land.
        const tokensBefore = await settledCount(() => reg.tokenRequests().length);
        const requestsBefore = (await reg.settledRequests()).length;
        await pushImage(client, image, ref);
        await pullAll(client, ref);
        await pullAll(client, ref);
        const tokens = reg.tokenRequests().slice(tokensBefore);
        const requests = (await reg.settledRequests()).slice(requestsBefore);

        assert.ok(tokens.every((t) => t.user === reg.username && !t.rejected && t.service === reg.service), JSON.stringify(tokens));
        const scopeSets = tokens.map((t) => [...t.scopes].sort().join(' '));
        assert.deepEqual(
          [...scopeSets].sort(),
          [`repository:${REPO}:pull`, `repository:${REPO}:pull,push`],
          `one token per scope set, cached for every later request: ${JSON.stringify(tokens)}`,
        );
        const authorized = requests.filter((r) => r.status !== 401);
        assert.ok(authorized.length > 10, JSON.stringify(requests));
      });
    }

    if (variant === 'tls') {
      it('names --registry-certificate when the CA is unknown', async () => {
        const client = await kilnClient(reg, {}, null);
        await assert.rejects(
          fetchRemoteImage(client, at('v1')),
          oneSentence('REGISTRY_TLS', undefined, new RegExp(`--registry-certificate=${reg.host.replace(/\./g, '\\.')}=`)),
        );
        await assert.rejects(
          pushImage(client, image, at('untrusted')),
          oneSentence('REGISTRY_TLS', undefined, /--registry-certificate/),
        );
      });

      it('skips verification for a host given to --skip-tls-verify-registry', async () => {
        const client = await kilnClient(reg, { skipTlsVerifyRegistry: [reg.host] }, null);
        const pulled = await pullAll(client, at('v1'));
        assert.equal(pulled.digest, image.digest);
        const pushed = await pushImage(client, image, at('unverified'));
        assert.equal(pushed.digest, image.digest);
        assert.match(await readFile(reg.caCertPath!, 'utf8'), /BEGIN CERTIFICATE/);
      });
    }
  });
}

/** A count once it has stopped changing for a moment. */
async function settledCount(count: () => number): Promise<number> {
  for (let last = -1; ; ) {
    const now = count();
    if (now === last) return now;
    last = now;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
