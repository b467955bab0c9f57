import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  defaultRegistryOptions,
  parseHostFlag,
  parseMirrorTarget,
  parseRegistryCertificate,
  parseRegistryClientCert,
  parseRegistryMap,
  parseRegistryOptions,
  resolveEndpoints,
  type RegistryOptions,
} from '../../src/registry/endpoints.js';
import { parseReference } from '../../src/registry/reference.js';
import { isKilnError } from '../../src/util/errors.js';

const options = (overrides: Partial<RegistryOptions> = {}): RegistryOptions => ({ ...defaultRegistryOptions(), ...overrides });
const summary = (endpoints: ReturnType<typeof resolveEndpoints>) => endpoints.map((e) => `${e.kind} ${e.scheme}://${e.host}/${e.repository}${e.allowHttpFallback ? ' +http' : ''}`);
const STRICT_TLS = { caFiles: [], rejectUnauthorized: true };

function usageError(...mustMention: string[]) {
  return (err: unknown) => {
    assert.ok(isKilnError(err, 'USAGE'), `expected USAGE, got ${String(err)}`);
    for (const text of mustMention) assert.ok(err.message.includes(text), `"${err.message}" should mention ${text}`);
    return true;
  };
}

test('without flags a reference maps to its own registry over https', () => {
  for (const purpose of ['pull', 'push'] as const) {
    assert.deepEqual(resolveEndpoints(parseReference('registry.example/team/app:1'), purpose, options()), [
      { host: 'registry.example', scheme: 'https', allowHttpFallback: false, repository: 'team/app', tls: STRICT_TLS, kind: 'origin' },
    ]);
  }
  assert.deepEqual(summary(resolveEndpoints(parseReference('ubuntu'), 'pull', options())), ['origin https://index.docker.io/library/ubuntu']);
});

test('Docker Hub pulls try registry maps, then mirrors (with their path prefix), then Docker Hub', () => {
  const opts = parseRegistryOptions({
    registryMirror: ['mirror.gcr.io', 'harbor.example/dockerhub-proxy'],
    registryMap: ['docker.io=corp-mirror.example;quay.io=quay-mirror.example'],
  }, {});
  assert.deepEqual(summary(resolveEndpoints(parseReference('ubuntu:22.04'), 'pull', opts)), [
    'mapped https://corp-mirror.example/library/ubuntu',
    'mirror https://mirror.gcr.io/library/ubuntu',
    'mirror https://harbor.example/dockerhub-proxy/library/ubuntu',
    'origin https://index.docker.io/library/ubuntu',
  ]);
  assert.deepEqual(summary(resolveEndpoints(parseReference('quay.io/org/img'), 'pull', opts)), [
    'mapped https://quay-mirror.example/org/img',
    'origin https://quay.io/org/img',
  ]);
  assert.deepEqual(summary(resolveEndpoints(parseReference('gcr.io/p/img'), 'pull', opts)), ['origin https://gcr.io/p/img']);
});

test('pushes never use mirrors or maps', () => {
  const opts = parseRegistryOptions({ registryMirror: ['mirror.gcr.io'], registryMap: ['index.docker.io=m.example', 'r.example=m.example'] }, {});
  assert.deepEqual(summary(resolveEndpoints(parseReference('user/app'), 'push', opts)), ['origin https://index.docker.io/user/app']);
  assert.deepEqual(summary(resolveEndpoints(parseReference('r.example/app'), 'push', opts)), ['origin https://r.example/app']);
});

test('--skip-default-registry-fallback drops the origin only when a mirror or map applies', () => {
  const opts = parseRegistryOptions({ registryMirror: ['mirror.example'], registryMap: ['r.example=m.example'], skipDefaultRegistryFallback: true }, {});
  assert.deepEqual(summary(resolveEndpoints(parseReference('alpine'), 'pull', opts)), ['mirror https://mirror.example/library/alpine']);
  assert.deepEqual(summary(resolveEndpoints(parseReference('r.example/a'), 'pull', opts)), ['mapped https://m.example/a']);
  assert.deepEqual(summary(resolveEndpoints(parseReference('other.example/a'), 'pull', opts)), ['origin https://other.example/a']);
  assert.deepEqual(summary(resolveEndpoints(parseReference('alpine'), 'push', opts)), ['origin https://index.docker.io/library/alpine']);
});

test('--insecure applies to push, --insecure-pull to pull, --insecure-registry to both: https first, then plain HTTP', () => {
  const ref = parseReference('r.example/app');
  const httpFallback = (opts: RegistryOptions, purpose: 'pull' | 'push') => resolveEndpoints(ref, purpose, opts).map((e) => e.allowHttpFallback);
  assert.deepEqual(httpFallback(options({ insecure: true }), 'push'), [true]);
  assert.deepEqual(httpFallback(options({ insecure: true }), 'pull'), [false]);
  assert.deepEqual(httpFallback(options({ insecurePull: true }), 'pull'), [true]);
  assert.deepEqual(httpFallback(options({ insecurePull: true }), 'push'), [false]);
  const perHost = parseRegistryOptions({ insecureRegistry: ['R.example'] }, {});
  assert.deepEqual(httpFallback(perHost, 'pull'), [true]);
  assert.deepEqual(httpFallback(perHost, 'push'), [true]);
  assert.equal(resolveEndpoints(ref, 'push', perHost)[0]!.scheme, 'https');
  assert.deepEqual(httpFallback(perHost, 'push').length, 1);
  assert.deepEqual(resolveEndpoints(parseReference('s.example/app'), 'push', perHost).map((e) => e.allowHttpFallback), [false]);
});

test('per-host flags for a mirror are looked up by the mirror host; --insecure-pull reaches mirrors', () => {
  const opts = parseRegistryOptions({
    registryMirror: ['mirror.example:5000/hub'],
    insecureRegistry: ['mirror.example:5000'],
    skipTlsVerifyRegistry: ['mirror.example:5000'],
    registryCertificate: ['mirror.example:5000=/certs/mirror-ca.pem'],
  }, {});
  const [mirror, origin] = resolveEndpoints(parseReference('nginx'), 'pull', opts);
  assert.deepEqual(mirror, {
    host: 'mirror.example:5000', scheme: 'https', allowHttpFallback: true, repository: 'hub/library/nginx',
    tls: { caFiles: ['/certs/mirror-ca.pem'], rejectUnauthorized: false }, kind: 'mirror',
  });
  assert.deepEqual(origin!.tls, STRICT_TLS);
  assert.equal(origin!.allowHttpFallback, false);
  const insecurePull = parseRegistryOptions({ registryMirror: ['mirror.example'], insecurePull: true }, {});
  assert.deepEqual(resolveEndpoints(parseReference('nginx'), 'pull', insecurePull).map((e) => e.allowHttpFallback), [true, true]);
});

test('TLS verification flags by purpose and host', () => {
  const ref = parseReference('r.example/app');
  const verify = (opts: RegistryOptions, purpose: 'pull' | 'push', target = ref) => resolveEndpoints(target, purpose, opts)[0]!.tls.rejectUnauthorized;
  assert.equal(verify(options({ skipTlsVerify: true }), 'push'), false);
  assert.equal(verify(options({ skipTlsVerifyPull: true }), 'pull'), false);
  assert.equal(verify(options({ skipTlsVerifyPull: true }), 'push'), true);
  // kaniko 1.23 uses --skip-tls-verify when building pull transports as well.
  assert.equal(verify(options({ skipTlsVerify: true }), 'pull'), false);
  const perHost = parseRegistryOptions({ skipTlsVerifyRegistry: ['r.example'] }, {});
  assert.equal(verify(perHost, 'pull'), false);
  assert.equal(verify(perHost, 'push'), false);
  assert.equal(verify(perHost, 'push', parseReference('s.example/app')), true);
});

test('CA files accumulate per host and client certificates attach to their host', () => {
  const opts = parseRegistryOptions({
    registryCertificate: ['r.example=/a.pem', 'r.example=/b.pem', 's.example=/c.pem'],
    registryClientCert: ['r.example=/client.crt,/client.key'],
  }, {});
  const [endpoint] = resolveEndpoints(parseReference('r.example/app'), 'push', opts);
  assert.deepEqual(endpoint!.tls, { caFiles: ['/a.pem', '/b.pem'], rejectUnauthorized: true, clientCert: { cert: '/client.crt', key: '/client.key' } });
  endpoint!.tls.caFiles.push('/mutated.pem');
  assert.deepEqual(opts.registryCertificates['r.example'], ['/a.pem', '/b.pem'], 'endpoints must not share arrays with the options');
});

test('Docker Hub per-host flags match under any of its names', () => {
  const opts = parseRegistryOptions({ insecureRegistry: ['docker.io'], registryCertificate: ['registry-1.docker.io=/hub.pem'] }, {});
  const [endpoint] = resolveEndpoints(parseReference('alpine'), 'pull', opts);
  assert.equal(endpoint!.host, 'index.docker.io');
  assert.equal(endpoint!.allowHttpFallback, true);
  assert.deepEqual(endpoint!.tls.caFiles, ['/hub.pem']);
});

test('local-looking hosts may fall back to plain HTTP without flags, as go-containerregistry allows', () => {
  for (const local of ['localhost:5000', 'localhost', '127.0.0.1:5000', '[::1]:5000', '10.1.2.3:5000', '172.20.0.1', '192.168.1.10:443', 'registry.local:5000', 'reg.localhost']) {
    assert.equal(resolveEndpoints(parseReference(`${local}/app`), 'push', options())[0]!.allowHttpFallback, true, local);
  }
  for (const remote of ['registry.example', '172.32.0.1:5000', '8.8.8.8', 'localhost.example.com', '11.0.0.1']) {
    assert.equal(resolveEndpoints(parseReference(`${remote}/app`), 'push', options())[0]!.allowHttpFallback, false, remote);
  }
});

test('a scheme on a mirror or map target fixes the scheme and disables the fallback', () => {
  const opts = parseRegistryOptions({ registryMirror: ['http://plain.example:5000', 'https://localhost:5443/hub/'], insecurePull: true }, {});
  assert.deepEqual(summary(resolveEndpoints(parseReference('alpine'), 'pull', opts)), [
    'mirror http://plain.example:5000/library/alpine',
    'mirror https://localhost:5443/hub/library/alpine',
    'origin https://index.docker.io/library/alpine +http',
  ]);
});

test('the same target listed twice is tried once', () => {
  const opts = parseRegistryOptions({ registryMirror: ['mirror.example'], registryMap: ['index.docker.io=mirror.example'] }, {});
  assert.deepEqual(summary(resolveEndpoints(parseReference('alpine'), 'pull', opts)), [
    'mapped https://mirror.example/library/alpine',
    'origin https://index.docker.io/library/alpine',
  ]);
});

test('KANIKO_REGISTRY_MAP and KANIKO_REGISTRY_MIRROR add to the flags, after them', () => {
  const opts = parseRegistryOptions(
    { registryMirror: ['flag-mirror.example'], registryMap: ['index.docker.io=flag-map.example'] },
    { KANIKO_REGISTRY_MIRROR: 'env-mirror.example', KANIKO_REGISTRY_MAP: 'index.docker.io=env-map.example;gcr.io=gcr-mirror.example' },
  );
  assert.deepEqual(summary(resolveEndpoints(parseReference('alpine'), 'pull', opts)).map((line) => line.split(' ')[1]), [
    'https://flag-map.example/library/alpine',
    'https://env-map.example/library/alpine',
    'https://flag-mirror.example/library/alpine',
    'https://env-mirror.example/library/alpine',
    'https://index.docker.io/library/alpine',
  ]);
  assert.deepEqual(opts.registryMaps['gcr.io'], [{ host: 'gcr-mirror.example', pathPrefix: '' }]);
});

test('parseRegistryMap follows kaniko: pairs separated by ";", several targets for one registry', () => {
  assert.deepEqual(parseRegistryMap('index.docker.io=a.example;index.docker.io=b.example/proxy;gcr.io=127.0.0.1:5000;'), [
    { from: 'index.docker.io', to: { host: 'a.example', pathPrefix: '' } },
    { from: 'index.docker.io', to: { host: 'b.example', pathPrefix: 'proxy' } },
    { from: 'gcr.io', to: { host: '127.0.0.1:5000', pathPrefix: '' } },
  ]);
  assert.deepEqual(parseRegistryMap(''), []);
  assert.throws(() => parseRegistryMap('index.docker.io=a.example;b.example'), usageError('--registry-map', '"b.example"', ';'));
  assert.throws(() => parseRegistryMap('index.docker.io='), usageError('--registry-map'));
  assert.throws(() => parseRegistryMap('not a host=a.example'), usageError('--registry-map'));
  assert.throws(() => parseRegistryMap('gcr.io=Bad_Host'), usageError('--registry-map', '"Bad_Host"'));
});

test('parseMirrorTarget accepts host, port, path prefix and scheme; refuses the rest', () => {
  assert.deepEqual(parseMirrorTarget('--registry-mirror', 'mirror.gcr.io'), { host: 'mirror.gcr.io', pathPrefix: '' });
  assert.deepEqual(parseMirrorTarget('--registry-mirror', 'Harbor.Example:8443/a/b/'), { host: 'harbor.example:8443', pathPrefix: 'a/b' });
  assert.deepEqual(parseMirrorTarget('--registry-mirror', 'HTTP://10.0.0.5:5000'), { host: '10.0.0.5:5000', pathPrefix: '', scheme: 'http' });
  assert.throws(() => parseMirrorTarget('--registry-mirror', 'ftp://x.example'), usageError('--registry-mirror', '"ftp://x.example"'));
  assert.throws(() => parseMirrorTarget('--registry-mirror', 'x.example/Upper'), usageError('--registry-mirror', 'lowercase'));
  assert.throws(() => parseMirrorTarget('--registry-mirror', ''), usageError('--registry-mirror'));
});

test('host=path flags: certificates, client certificates and host lists', () => {
  assert.deepEqual(parseRegistryCertificate('my.registry:5000=/etc/certs/ca=1.pem'), { host: 'my.registry:5000', path: '/etc/certs/ca=1.pem' });
  assert.deepEqual(parseRegistryClientCert('my.registry=/c.pem,/k.pem'), { host: 'my.registry', cert: '/c.pem', key: '/k.pem' });
  for (const bad of ['my.registry', 'my.registry=', '=/ca.pem', 'bad host=/ca.pem']) {
    assert.throws(() => parseRegistryCertificate(bad), usageError('--registry-certificate', `"${bad}"`));
  }
  for (const bad of ['my.registry=/c.pem', 'my.registry=/c.pem,', 'my.registry=/a,/b,/c', '/c.pem,/k.pem']) {
    assert.throws(() => parseRegistryClientCert(bad), usageError('--registry-client-cert', `"${bad}"`));
  }
  assert.equal(parseHostFlag('--insecure-registry', 'https://My.Registry:5000/'), 'my.registry:5000');
  assert.equal(parseHostFlag('--insecure-registry', 'docker.io'), 'index.docker.io');
  assert.throws(() => parseHostFlag('--insecure-registry', 'my.registry/path'), usageError('--insecure-registry', '"my.registry/path"'));
  assert.throws(
    () => parseRegistryOptions({ skipTlsVerifyRegistry: ['a b'] }, {}),
    usageError('--skip-tls-verify-registry', '"a b"'),
  );
});

test('parseRegistryOptions maps every boolean flag and defaults the rest', () => {
  assert.deepEqual(parseRegistryOptions({}, {}), defaultRegistryOptions());
  const all = parseRegistryOptions({ insecure: true, insecurePull: true, skipTlsVerify: true, skipTlsVerifyPull: true, skipDefaultRegistryFallback: true }, {});
  assert.equal(all.insecure && all.insecurePull && all.skipTlsVerify && all.skipTlsVerifyPull && all.skipDefaultRegistryFallback, true);
});
