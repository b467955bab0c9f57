import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { LayoutLayerCache } from '../../src/cache/layout-cache.js';
import { defaultCacheRepo, openLayerCache, parseCacheRepo } from '../../src/cache/open.js';
import { RegistryLayerCache } from '../../src/cache/registry-cache.js';
import { RegistryClient } from '../../src/registry/client.js';
import { createCredentialStore } from '../../src/registry/credentials.js';
import { defaultRegistryOptions } from '../../src/registry/endpoints.js';
import { parseReference } from '../../src/registry/reference.js';
import { isKilnError } from '../../src/util/errors.js';
import { silentLogger } from '../../src/util/log.js';

test('oci: names a layout directory, made absolute', () => {
  assert.deepEqual(parseCacheRepo('oci:/var/cache/kiln'), { kind: 'layout', dir: '/var/cache/kiln' });
  assert.deepEqual(parseCacheRepo('oci:relative/dir'), { kind: 'layout', dir: resolve('relative/dir') });
  assert.throws(() => parseCacheRepo('oci:'), (err) => isKilnError(err, 'USAGE') && /--cache-repo/.test(err.message));
});

test('anything else is a registry repository, with a port allowed', () => {
  assert.deepEqual(parseCacheRepo('127.0.0.1:5000/team/app/cache'), { kind: 'registry', repo: { registry: '127.0.0.1:5000', repository: 'team/app/cache' } });
  assert.deepEqual(parseCacheRepo('cache'), { kind: 'registry', repo: { registry: 'index.docker.io', repository: 'library/cache' } });
});

test('a tag or digest in --cache-repo is refused in one sentence naming the flag', () => {
  for (const spec of ['registry.example.com/app/cache:v1', 'localhost:5000/cache@sha256:' + 'a'.repeat(64), 'cache:latest']) {
    assert.throws(() => parseCacheRepo(spec), (err) => isKilnError(err, 'USAGE') && err.message.startsWith(`--cache-repo ${spec} names a tag or digest`), spec);
  }
  assert.throws(() => parseCacheRepo('Registry.example.com/UPPER'), (err) => isKilnError(err, 'USAGE') && /--cache-repo/.test(err.message));
});

test('openLayerCache picks the store the value names', async () => {
  const client = new RegistryClient({ registry: defaultRegistryOptions(), credentials: createCredentialStore({ env: {} }) });
  try {
    const deps = { client, ttlMs: 1000, push: true, logger: silentLogger() };
    const layout = openLayerCache('oci:/tmp/kiln-cache', deps);
    assert.ok(layout instanceof LayoutLayerCache);
    assert.equal(layout.description, 'oci:/tmp/kiln-cache');
    const registry = openLayerCache('registry.example.com/app/cache', deps);
    assert.ok(registry instanceof RegistryLayerCache);
    assert.equal(registry.description, 'registry.example.com/app/cache');
  } finally {
    await client.close();
  }
});

test('the default cache repository is the destination\'s repository plus /cache', () => {
  assert.equal(defaultCacheRepo(parseReference('registry.example.com/team/app:1.0')), 'registry.example.com/team/app/cache');
});
