import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  canonicalRegistry,
  formatReference,
  isDockerHub,
  isValidRegistryHost,
  manifestIdentifier,
  parseReference,
  referenceWithDigest,
  referenceWithTag,
  repositoryName,
} from '../../src/registry/reference.js';
import { isKilnError } from '../../src/util/errors.js';

const DIGEST = 'sha256:' + 'ab'.repeat(32);

test('a bare name is an official Docker Hub image at latest', () => {
  assert.deepEqual(parseReference('ubuntu'), { registry: 'index.docker.io', repository: 'library/ubuntu', tag: 'latest' });
  assert.deepEqual(parseReference('ubuntu:22.04'), { registry: 'index.docker.io', repository: 'library/ubuntu', tag: '22.04' });
  assert.deepEqual(parseReference('bitnami/redis:7'), { registry: 'index.docker.io', repository: 'bitnami/redis', tag: '7' });
});

test('Docker Hub aliases become index.docker.io, with library/ added to single names', () => {
  for (const host of ['docker.io', 'index.docker.io', 'registry-1.docker.io']) {
    assert.deepEqual(parseReference(`${host}/x/y`), { registry: 'index.docker.io', repository: 'x/y', tag: 'latest' });
    assert.deepEqual(parseReference(`${host}/alpine:3`), { registry: 'index.docker.io', repository: 'library/alpine', tag: '3' });
  }
});

test('hosts with ports, IPs, IPv6, localhost and deep paths', () => {
  assert.deepEqual(parseReference('localhost:5000/a'), { registry: 'localhost:5000', repository: 'a', tag: 'latest' });
  assert.deepEqual(parseReference('localhost/a'), { registry: 'localhost', repository: 'a', tag: 'latest' });
  assert.deepEqual(parseReference(`127.0.0.1:5000/a:tag@${DIGEST}`), { registry: '127.0.0.1:5000', repository: 'a', tag: 'tag', digest: DIGEST });
  assert.deepEqual(parseReference('host.example/a/b/c'), { registry: 'host.example', repository: 'a/b/c', tag: 'latest' });
  assert.deepEqual(parseReference('[::1]:5000/x:1'), { registry: '[::1]:5000', repository: 'x', tag: '1' });
  assert.deepEqual(parseReference('gcr.io/my-proj/app__x/web.server:v1.2-rc_3'), {
    registry: 'gcr.io', repository: 'my-proj/app__x/web.server', tag: 'v1.2-rc_3',
  });
});

test('a digest alone has no tag; tag and digest together keep both and the digest is fetched', () => {
  const byDigest = parseReference(`ubuntu@${DIGEST}`);
  assert.deepEqual(byDigest, { registry: 'index.docker.io', repository: 'library/ubuntu', digest: DIGEST });
  assert.equal(manifestIdentifier(byDigest), DIGEST);
  const both = parseReference(`registry.example/app:1.0@${DIGEST}`);
  assert.equal(both.tag, '1.0');
  assert.equal(manifestIdentifier(both), DIGEST);
  assert.equal(manifestIdentifier(parseReference('app:2')), '2');
});

test('invalid references fail with INVALID_REFERENCE quoting the input and the problem', () => {
  const cases: Array<[string, RegExp]> = [
    ['', /is empty/],
    ['Ubuntu', /must be lowercase/],
    ['registry.example/Team/app', /must be lowercase/],
    ['registry.example/a//b', /empty path component/],
    ['registry.example/a..b', /path component "a\.\.b"/],
    ['registry.example/-a', /path component "-a"/],
    ['app:-bad', /tag "-bad"/],
    ['app:' + 'x'.repeat(129), /tag "x+"/],
    ['app:', /tag ""/],
    ['app@sha256:abc', /digest "sha256:abc"/],
    [`app@md5:${'a'.repeat(32)}`, /digest "md5:/],
    ['bad_host.example:5000/a', /registry "bad_host\.example:5000"/],
    ['host.example:99999/a', /registry "host\.example:99999"/],
    ['host.example/', /repository name is missing/],
    ['my app', /path component "my app"/],
    ['registry.example/' + 'a'.repeat(250), /longer than 255/],
  ];
  for (const [input, problem] of cases) {
    assert.throws(() => parseReference(input), (err) => {
      assert.ok(isKilnError(err, 'INVALID_REFERENCE'), `expected INVALID_REFERENCE for ${JSON.stringify(input)}`);
      assert.ok(err.message.includes(`"${input}"`), `message should quote the input: ${err.message}`);
      assert.match(err.message, problem);
      return true;
    });
  }
});

test('formatReference spells out the registry and round-trips', () => {
  assert.equal(formatReference(parseReference('ubuntu')), 'index.docker.io/library/ubuntu:latest');
  assert.equal(formatReference(parseReference(`ubuntu@${DIGEST}`)), `index.docker.io/library/ubuntu@${DIGEST}`);
  for (const input of ['localhost:5000/a:1', `127.0.0.1:5000/a:tag@${DIGEST}`, '[::1]:5000/x:1', 'host.example/a/b/c:latest']) {
    assert.equal(formatReference(parseReference(input)), input);
    assert.deepEqual(parseReference(formatReference(parseReference(input))), parseReference(input));
  }
});

test('referenceWithTag drops the digest; referenceWithDigest keeps the tag', () => {
  const pinned = parseReference(`registry.example/app:1@${DIGEST}`);
  assert.deepEqual(referenceWithTag(pinned, '2'), { registry: 'registry.example', repository: 'app', tag: '2' });
  const other = 'sha256:' + 'cd'.repeat(32);
  assert.equal(formatReference(referenceWithDigest(parseReference('registry.example/app:1'), other)), `registry.example/app:1@${other}`);
  assert.throws(() => referenceWithTag(pinned, '.x'), (err) => isKilnError(err, 'INVALID_REFERENCE'));
  assert.throws(() => referenceWithDigest(pinned, 'sha256:zz'), (err) => isKilnError(err, 'INVALID_REFERENCE'));
});

test('repositoryName, isDockerHub and canonicalRegistry', () => {
  assert.equal(repositoryName(parseReference('redis:7')), 'index.docker.io/library/redis');
  assert.ok(isDockerHub('docker.io') && isDockerHub('INDEX.docker.io') && isDockerHub('registry-1.docker.io'));
  assert.ok(!isDockerHub('docker.example') && !isDockerHub('quay.io'));
  assert.equal(canonicalRegistry('docker.io'), 'index.docker.io');
  assert.equal(canonicalRegistry('quay.io'), 'quay.io');
});

test('isValidRegistryHost follows the distribution grammar', () => {
  for (const ok of ['localhost', 'localhost:5000', 'a.b-c.example', '10.0.0.1:443', '[::1]', '[fe80::1]:5000', 'UPPER.example']) {
    assert.ok(isValidRegistryHost(ok), ok);
  }
  for (const bad of ['', 'https://x', 'x/y', '-x.example', 'x.example:', 'x.example:0', 'x:65536', '[::1', 'a_b.example']) {
    assert.ok(!isValidRegistryHost(bad), bad);
  }
});
