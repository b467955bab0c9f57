import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dockerfileBaseImages } from '../../src/cache/warm-dockerfile.js';
import { parseBuildArgFlags } from '../../cmd/options/build-args.js';
import type { WarmTarget } from '../../src/cache/warmer.js';
import { formatPlatform } from '../../src/oci/platform.js';
import { formatReference } from '../../src/registry/reference.js';
import { isKilnError } from '../../src/util/errors.js';

async function basesOf(dockerfile: string, buildArgs: string[] = [], environment: Record<string, string> = {}): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-warm-dockerfile-'));
  try {
    const path = join(dir, 'Dockerfile');
    await writeFile(path, dockerfile);
    const targets = await dockerfileBaseImages(path, { buildArgs: parseBuildArgFlags(buildArgs), environment });
    return targets.map(describe);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function describe(target: WarmTarget): string {
  return formatReference(target.ref) + (target.platform ? ` ${formatPlatform(target.platform)}` : '');
}

test('ARGs before FROM are expanded, stage names and scratch are skipped, duplicates warmed once', async () => {
  const dockerfile = [
    'ARG REGISTRY=registry.test',
    'ARG VERSION=1.0',
    'FROM ${REGISTRY}/base:${VERSION} AS build',
    'RUN make',
    'FROM scratch AS empty',
    'FROM build AS test',
    'FROM Build',
    'FROM ${REGISTRY}/runtime:${VERSION}',
    'COPY --from=build /app /app',
    'FROM registry.test/base:1.0',
    '',
  ].join('\n');
  assert.deepEqual(await basesOf(dockerfile), ['registry.test/base:1.0', 'registry.test/runtime:1.0']);
  assert.deepEqual(await basesOf(dockerfile, ['VERSION=2.0']), ['registry.test/base:2.0', 'registry.test/runtime:2.0', 'registry.test/base:1.0']);
  assert.deepEqual(await basesOf(dockerfile, ['VERSION'], { VERSION: '3.0' }), ['registry.test/base:3.0', 'registry.test/runtime:3.0', 'registry.test/base:1.0'], '--build-arg NAME takes the environment');
});

test('FROM --platform and digests are kept; Docker Hub names are normalised', async () => {
  const digest = 'sha256:' + 'd'.repeat(64);
  const dockerfile = ['FROM --platform=linux/arm64 busybox AS a', `FROM alpine@${digest}`, 'FROM busybox', ''].join('\n');
  assert.deepEqual(await basesOf(dockerfile), [
    'index.docker.io/library/busybox:latest linux/arm64',
    `index.docker.io/library/alpine@${digest}`,
    'index.docker.io/library/busybox:latest',
  ]);
});

test('a Dockerfile that cannot be read or names a bad image is one sentence naming the file', async () => {
  await assert.rejects(
    dockerfileBaseImages('/no/such/Dockerfile', { buildArgs: new Map() }),
    (err: unknown) => isKilnError(err, 'USAGE') && err.message.includes('/no/such/Dockerfile') && err.message.includes('--dockerfile'),
  );
  await assert.rejects(basesOf('FROM Bad:Name!\n'), (err: unknown) => isKilnError(err, 'INVALID_REFERENCE') && /Dockerfile:1: /.test(err.message));
  await assert.rejects(basesOf('FROM ${MISSING}\n'), (err: unknown) => isKilnError(err, 'DOCKERFILE'));
});

test('--build-arg without a name is refused', () => {
  assert.throws(() => parseBuildArgFlags(['=value']), (err: unknown) => isKilnError(err, 'USAGE'));
  assert.deepEqual([...parseBuildArgFlags(['A=1', 'B', 'C=x=y'])], [['A', '1'], ['B', undefined], ['C', 'x=y']]);
});
