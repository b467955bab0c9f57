import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseChallenges } from '../../src/registry/challenge.js';

test('parses a bearer challenge with quoted parameters', () => {
  const [challenge] = parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"');
  assert.deepEqual(challenge, {
    scheme: 'bearer',
    params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' },
  });
});

test('parses basic, unquoted values, escapes and several challenges', () => {
  const challenges = parseChallenges(['Basic realm="Registry Realm"', 'Bearer realm=https://x/t, error="insufficient_scope", note="a \\"q\\""']);
  assert.equal(challenges.length, 2);
  assert.deepEqual(challenges[0], { scheme: 'basic', params: { realm: 'Registry Realm' } });
  assert.deepEqual(challenges[1], { scheme: 'bearer', params: { realm: 'https://x/t', error: 'insufficient_scope', note: 'a "q"' } });
});

test('no header means no challenge', () => {
  assert.deepEqual(parseChallenges(undefined), []);
  assert.deepEqual(parseChallenges(''), []);
});
