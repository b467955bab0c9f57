import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createCredentialStore, dockerConfigPath, type CredentialStoreOptions } from '../../src/registry/credentials.js';
import { createLogger } from '../../src/util/log.js';
import { isKilnError } from '../../src/util/errors.js';

const SECRET = 's3cr3t-Pa55word';
const b64 = (text: string) => Buffer.from(text).toString('base64');

/** A temp dir with a docker config dir and a bin dir for fake helpers, removed after the test. */
async function sandbox(t: { after(fn: () => Promise<void>): void }) {
  const root = await mkdtemp(join(tmpdir(), 'kiln-creds-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const configDir = join(root, 'docker');
  const bin = join(root, 'bin');
  await mkdir(configDir);
  await mkdir(bin);
  const env = { DOCKER_CONFIG: configDir, PATH: `${bin}:${process.env.PATH}` };
  return {
    root,
    configDir,
    env,
    writeConfig: (config: unknown) => writeFile(join(configDir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config)),
    /** A docker-credential-<name> shell script; it logs each server URL it is asked about. */
    writeHelper: async (name: string, body: string) => {
      const file = join(bin, `docker-credential-${name}`);
      await writeFile(file, `#!/bin/sh\n[ "$1" = get ] || exit 3\nurl=$(cat)\necho "$url" >> "${root}/${name}.calls"\n${body}\n`);
      await chmod(file, 0o755);
    },
    helperCalls: async (name: string) => (await readFile(join(root, `${name}.calls`), 'utf8').catch(() => '')).split('\n').filter(Boolean),
    store: (options: CredentialStoreOptions = {}) => createCredentialStore({ env, homeDir: join(root, 'nohome'), ...options }),
  };
}

function expectError(code: 'DOCKER_CONFIG' | 'CREDENTIAL_HELPER', ...mustMention: string[]) {
  return (err: unknown) => {
    assert.ok(isKilnError(err, code), `expected ${code}, got ${String(err)}`);
    for (const text of mustMention) assert.ok(err.message.includes(text), `"${err.message}" should mention ${text}`);
    assert.ok(!err.message.includes(SECRET), `"${err.message}" leaks the secret`);
    assert.ok(!String(err.cause ?? '').includes(SECRET), 'the cause leaks the secret');
    return true;
  };
}

test('no config file anywhere means anonymous', async (t) => {
  const box = await sandbox(t);
  assert.deepEqual(await box.store().get('registry.example'), { kind: 'anonymous' });
});

test('auths entries in all four forms', async (t) => {
  const box = await sandbox(t);
  await box.writeConfig({
    auths: {
      'basic.example': { auth: b64(`alice:${SECRET}`) },
      'fields.example': { username: 'bob', password: SECRET },
      'identity.example': { auth: b64('00000000-0000-0000-0000-000000000000:'), identitytoken: 'refresh-me' },
      'bearer.example': { registrytoken: 'bearer-token' },
      'empty.example': {},
    },
  });
  const store = box.store();
  assert.deepEqual(await store.get('basic.example'), { kind: 'basic', username: 'alice', password: SECRET });
  assert.deepEqual(await store.get('fields.example'), { kind: 'basic', username: 'bob', password: SECRET });
  assert.deepEqual(await store.get('identity.example'), { kind: 'identityToken', token: 'refresh-me' });
  assert.deepEqual(await store.get('bearer.example'), { kind: 'registryToken', token: 'bearer-token' });
  assert.deepEqual(await store.get('empty.example'), { kind: 'anonymous' });
  assert.deepEqual(await store.get('other.example'), { kind: 'anonymous' });
});

test('auths keys may carry a scheme or the /v1/ path; the exact host wins', async (t) => {
  const box = await sandbox(t);
  await box.writeConfig({
    auths: {
      'https://a.example': { auth: b64('a:1') },
      'http://b.example:5000': { auth: b64('b:2') },
      'https://c.example/v1/': { auth: b64('c:3') },
      'https://d.example': { auth: b64('wrong:0') },
      'd.example': { auth: b64('d:4') },
    },
  });
  const store = box.store();
  assert.deepEqual(await store.get('a.example'), { kind: 'basic', username: 'a', password: '1' });
  assert.deepEqual(await store.get('b.example:5000'), { kind: 'basic', username: 'b', password: '2' });
  assert.deepEqual(await store.get('b.example'), { kind: 'anonymous' }, 'the port is part of the host');
  assert.deepEqual(await store.get('c.example'), { kind: 'basic', username: 'c', password: '3' });
  assert.deepEqual(await store.get('D.example'), { kind: 'basic', username: 'd', password: '4' });
});

test("Docker Hub's https://index.docker.io/v1/ key serves all of Hub's names", async (t) => {
  const box = await sandbox(t);
  await box.writeConfig({ auths: { 'https://index.docker.io/v1/': { auth: b64(`hubuser:${SECRET}`) } } });
  const store = box.store();
  for (const host of ['index.docker.io', 'docker.io', 'registry-1.docker.io']) {
    assert.deepEqual(await store.get(host), { kind: 'basic', username: 'hubuser', password: SECRET }, host);
  }
});

test('Docker Hub also matches a key written as docker.io', async (t) => {
  const box = await sandbox(t);
  await box.writeConfig({ auths: { 'docker.io': { auth: b64('hub:x') } } });
  assert.deepEqual(await box.store().get('index.docker.io'), { kind: 'basic', username: 'hub', password: 'x' });
});

test('config location: DOCKER_CONFIG dir, DOCKER_CONFIG naming the file, else ~/.docker', async (t) => {
  const box = await sandbox(t);
  const file = join(box.root, 'gitlab-file-variable');
  await writeFile(file, JSON.stringify({ auths: { 'r.example': { auth: b64('file:1') } } }));
  assert.equal(await dockerConfigPath({ DOCKER_CONFIG: box.configDir }), join(box.configDir, 'config.json'));
  assert.equal(await dockerConfigPath({ DOCKER_CONFIG: file }), file);
  assert.equal(await dockerConfigPath({ HOME: '/home/x' }), '/home/x/.docker/config.json');
  assert.equal(await dockerConfigPath({ HOME: '/home/x' }, '/other'), '/other/.docker/config.json');
  assert.deepEqual(await createCredentialStore({ env: { DOCKER_CONFIG: file } }).get('r.example'), { kind: 'basic', username: 'file', password: '1' });

  const home = join(box.root, 'home');
  await mkdir(join(home, '.docker'), { recursive: true });
  await writeFile(join(home, '.docker', 'config.json'), JSON.stringify({ auths: { 'r.example': { auth: b64('home:2') } } }));
  assert.deepEqual(await createCredentialStore({ env: { HOME: home } }).get('r.example'), { kind: 'basic', username: 'home', password: '2' });
  assert.deepEqual(await createCredentialStore({ env: {}, homeDir: home }).get('r.example'), { kind: 'basic', username: 'home', password: '2' });
});

test("without a docker config, podman's REGISTRY_AUTH_FILE is read", async (t) => {
  const box = await sandbox(t);
  const authFile = join(box.root, 'auth.json');
  await writeFile(authFile, JSON.stringify({ auths: { 'quay.io': { auth: b64('pod:man') } } }));
  const store = createCredentialStore({ env: { ...box.env, REGISTRY_AUTH_FILE: authFile }, homeDir: box.root });
  assert.deepEqual(await store.get('quay.io'), { kind: 'basic', username: 'pod', password: 'man' });
});

test('a broken config.json is a DOCKER_CONFIG error naming the file and the spot, without its text', async (t) => {
  const box = await sandbox(t);
  const file = join(box.configDir, 'config.json');
  await box.writeConfig(`{"auths": {"r.example": {"password": "${SECRET}"}} oops}`);
  await assert.rejects(box.store().get('r.example'), expectError('DOCKER_CONFIG', file, 'not valid JSON', 'line 1'));
  await box.writeConfig(`{\n  "auths": {"r.example": {"password": ${SECRET}}}\n}`);
  await assert.rejects(box.store().get('r.example'), expectError('DOCKER_CONFIG', file, 'line 2'));
  await box.writeConfig(`{"auths": {"r.example": {"password": "${SECRET}"`);
  await assert.rejects(box.store().get('r.example'), expectError('DOCKER_CONFIG', file, 'ends too early'));
  await box.writeConfig({ auths: [] });
  await assert.rejects(box.store().get('r.example'), expectError('DOCKER_CONFIG', file, '"auths" must be an object'));
  await box.writeConfig({ credHelpers: { 'r.example': 7 } });
  await assert.rejects(box.store().get('r.example'), expectError('DOCKER_CONFIG', '"credHelpers" entry for "r.example"'));
});

test('an auth value that is not base64 user:password is a DOCKER_CONFIG error naming the entry', async (t) => {
  const box = await sandbox(t);
  await box.writeConfig({ auths: { 'r.example': { auth: b64(SECRET) }, 's.example': { auth: `${SECRET}!*` } } });
  const store = box.store();
  await assert.rejects(store.get('r.example'), expectError('DOCKER_CONFIG', '"r.example"', 'user:password'));
  await assert.rejects(store.get('s.example'), expectError('DOCKER_CONFIG', '"s.example"'));
});

test('an auth value wrapped over lines by base64 still decodes', async (t) => {
  const box = await sandbox(t);
  const long = 'p'.repeat(80);
  const wrapped = b64(`u:${long}`).replace(/(.{76})/g, '$1\n');
  await box.writeConfig({ auths: { 'r.example': { auth: wrapped } } });
  assert.deepEqual(await box.store().get('r.example'), { kind: 'basic', username: 'u', password: long });
});

test('credHelpers[host] runs docker-credential-<name> get with the server URL on stdin', async (t) => {
  const box = await sandbox(t);
  await box.writeHelper('fake', `printf '{"ServerURL":"%s","Username":"helper-user","Secret":"${SECRET}"}' "$url"`);
  await box.writeConfig({
    credHelpers: { 'r.example:5000': 'fake', 'https://index.docker.io/v1/': 'fake' },
    auths: { 'r.example:5000': { auth: b64('ignored:x') } },
  });
  const store = box.store();
  assert.deepEqual(await store.get('r.example:5000'), { kind: 'basic', username: 'helper-user', password: SECRET });
  assert.deepEqual(await store.get('docker.io'), { kind: 'basic', username: 'helper-user', password: SECRET });
  assert.deepEqual(await box.helperCalls('fake'), ['r.example:5000', 'https://index.docker.io/v1/']);
});

test('credsStore applies to hosts without a credHelpers entry; <token> means an identity token', async (t) => {
  const box = await sandbox(t);
  await box.writeHelper('store', `printf '{"Username":"<token>","Secret":"id-token"}'`);
  await box.writeHelper('other', `printf '{"Username":"u","Secret":"p"}'`);
  await box.writeConfig({ credsStore: 'store', credHelpers: { 'gcr.io': 'other' } });
  const store = box.store();
  assert.deepEqual(await store.get('r.example'), { kind: 'identityToken', token: 'id-token' });
  assert.deepEqual(await store.get('gcr.io'), { kind: 'basic', username: 'u', password: 'p' });
});

test('a helper with nothing for the host falls back to auths, else anonymous', async (t) => {
  const box = await sandbox(t);
  await box.writeHelper('empty', `echo "credentials not found in native keychain"; exit 1`);
  await box.writeConfig({ credsStore: 'empty', auths: { 'r.example': { auth: b64('from:auths') } } });
  const store = box.store();
  assert.deepEqual(await store.get('r.example'), { kind: 'basic', username: 'from', password: 'auths' });
  assert.deepEqual(await store.get('s.example'), { kind: 'anonymous' });
});

test('credentials are looked up once per host', async (t) => {
  const box = await sandbox(t);
  await box.writeHelper('count', `printf '{"Username":"u","Secret":"p"}'`);
  await box.writeConfig({ credsStore: 'count' });
  const store = box.store();
  await Promise.all([store.get('r.example'), store.get('r.example'), store.get('R.example')]);
  await store.get('r.example');
  await store.get('s.example');
  assert.deepEqual(await box.helperCalls('count'), ['r.example', 's.example']);
});

test('a missing helper is a CREDENTIAL_HELPER error naming the helper and the host', async (t) => {
  const box = await sandbox(t);
  await box.writeConfig({ credHelpers: { 'r.example': 'absent' } });
  await assert.rejects(box.store().get('r.example'), expectError('CREDENTIAL_HELPER', 'docker-credential-absent', 'r.example', 'PATH'));
});

test('a failing helper is a CREDENTIAL_HELPER error with its message; a later call asks again', async (t) => {
  const box = await sandbox(t);
  await box.writeHelper('flaky', `if [ ! -f "${box.root}/ok" ]; then echo "token expired, run login" >&2; exit 2; fi; printf '{"Username":"u","Secret":"p"}'`);
  await box.writeConfig({ credsStore: 'flaky' });
  const store = box.store();
  await assert.rejects(store.get('r.example'), expectError('CREDENTIAL_HELPER', 'docker-credential-flaky', 'r.example', 'status 2', 'token expired'));
  await writeFile(join(box.root, 'ok'), '');
  assert.deepEqual(await store.get('r.example'), { kind: 'basic', username: 'u', password: 'p' });
});

test('helper output that is not JSON, or a failure echoing a secret, never reaches the message', async (t) => {
  const box = await sandbox(t);
  await box.writeHelper('garbled', `printf 'Username=u Secret=${SECRET}'`);
  await box.writeHelper('leaky', `printf '{"Username":"u","Secret":"${SECRET}"' ; exit 1`);
  await box.writeConfig({ credHelpers: { 'a.example': 'garbled', 'b.example': 'leaky' } });
  const store = box.store();
  await assert.rejects(store.get('a.example'), expectError('CREDENTIAL_HELPER', 'docker-credential-garbled', 'not JSON'));
  await assert.rejects(store.get('b.example'), expectError('CREDENTIAL_HELPER', 'docker-credential-leaky', 'status 1'));
});

test('a helper that hangs is stopped after the timeout', async (t) => {
  const box = await sandbox(t);
  await box.writeHelper('slow', 'exec sleep 30');
  await box.writeConfig({ credsStore: 'slow' });
  const started = Date.now();
  await assert.rejects(box.store({ helperTimeoutMs: 200 }).get('r.example'), expectError('CREDENTIAL_HELPER', 'docker-credential-slow', 'did not answer'));
  assert.ok(Date.now() - started < 5_000);
});

test('an invalid helper name is refused before anything runs', async (t) => {
  const box = await sandbox(t);
  await box.writeConfig({ credsStore: '../../bin/sh' });
  await assert.rejects(box.store().get('r.example'), expectError('DOCKER_CONFIG', '"../../bin/sh"'));
});

test('debug logs say where credentials came from, never what they are', async (t) => {
  const box = await sandbox(t);
  await box.writeHelper('fake', `printf '{"Username":"<token>","Secret":"${SECRET}"}'`);
  await box.writeConfig({ credHelpers: { 'a.example': 'fake' }, auths: { 'b.example': { auth: b64(`user:${SECRET}`) } } });
  let output = '';
  const destination = new Writable({ write(chunk, _encoding, callback) { output += String(chunk); callback(); } });
  const store = box.store({ logger: createLogger({ level: 'debug', format: 'json', destination }) });
  await store.get('a.example');
  await store.get('b.example');
  await store.get('c.example');
  assert.match(output, /docker-credential-fake/);
  assert.match(output, /b\.example/);
  assert.ok(!output.includes(SECRET), 'logs leak the secret');
  assert.ok(!output.includes(b64(`user:${SECRET}`)), 'logs leak the encoded secret');
});

test('an injected runner receives program, args, server URL, env and timeout', async (t) => {
  const box = await sandbox(t);
  await box.writeConfig({ credsStore: 'injected' });
  const seen: unknown[] = [];
  const env = { ...box.env, MARK: '1' };
  const store = createCredentialStore({
    env,
    homeDir: box.root,
    helperTimeoutMs: 1234,
    runHelper: async (...args) => {
      seen.push(args);
      return { exitCode: 0, stdout: '{"Username":"u","Secret":"p"}', stderr: '' };
    },
  });
  assert.deepEqual(await store.get('index.docker.io'), { kind: 'basic', username: 'u', password: 'p' });
  assert.deepEqual(seen, [['docker-credential-injected', ['get'], 'https://index.docker.io/v1/', env, 1234]]);
});
