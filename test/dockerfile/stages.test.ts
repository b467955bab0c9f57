import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDockerfile } from '../../src/dockerfile/parse.js';
import { mountSource, resolveStages, type ResolveOptions } from '../../src/dockerfile/stages.js';
import { platformArgs } from '../../src/dockerfile/build-args.js';
import { isKilnError } from '../../src/util/errors.js';

const lines = (...text: string[]): string => text.join('\n') + '\n';

const AMD64 = { build: { os: 'linux', architecture: 'amd64' }, target: { os: 'linux', architecture: 'amd64' } };

function plan(text: string, options: Partial<ResolveOptions> = {}) {
  return resolveStages(parseDockerfile(text, 'Dockerfile'), { buildArgs: new Map(), platform: AMD64, environment: {}, ...options });
}

function assertError(run: () => unknown, code: 'DOCKERFILE' | 'USAGE', pattern: RegExp): void {
  assert.throws(run, (err: unknown) => {
    assert.ok(isKilnError(err, code), String(err));
    assert.match(err.message, pattern);
    assert.match(err.message, /; .+\.$/);
    return true;
  });
}

test('a stage is based on an image, an earlier stage (by name, any case) or scratch', () => {
  const resolved = plan(lines('FROM alpine:3.20 AS base', 'FROM BASE AS Next', 'FROM scratch', 'FROM SCRATCH', 'FROM next'));
  assert.deepEqual(resolved.stages.map((stage) => stage.base), [
    { kind: 'image', ref: 'alpine:3.20' },
    { kind: 'stage', index: 0 },
    { kind: 'scratch' },
    { kind: 'scratch' },
    { kind: 'stage', index: 1 },
  ]);
  assert.deepEqual(resolved.stages.map((stage) => stage.name), ['base', 'next', undefined, undefined, undefined]);
});

test('a FROM naming a later stage means an image of that name, as in Docker', () => {
  const resolved = plan(lines('FROM later AS first', 'FROM alpine AS later'));
  assert.deepEqual(resolved.stages[0]!.base, { kind: 'image', ref: 'later' });
});

test('FROM sees global ARGs, --build-arg values for them and the platform args, nothing else', () => {
  const text = lines('ARG REGISTRY=docker.io', 'ARG TAG=3.19', 'ARG IMAGE=$REGISTRY/library/alpine', 'FROM ${IMAGE}:${TAG}', 'ARG LOCAL=x', 'FROM busybox:${LOCAL:-none}-$UNDECLARED');
  const defaults = plan(text);
  assert.equal(defaults.stages[0]!.image, 'docker.io/library/alpine:3.19');
  assert.equal(defaults.stages[1]!.image, 'busybox:none-');

  const overridden = plan(text, { buildArgs: new Map([['TAG', '3.20'], ['REGISTRY', 'mirror.local'], ['UNDECLARED', 'y'], ['LOCAL', 'z']]) });
  assert.equal(overridden.stages[0]!.image, 'mirror.local/library/alpine:3.20');
  assert.equal(overridden.stages[1]!.image, 'busybox:none-');
  assert.deepEqual(overridden.unusedBuildArgs, ['UNDECLARED']);
  assert.equal(overridden.globalArgs.get('TARGETARCH'), 'amd64');
});

test('FROM --platform expands with BUILDPLATFORM and friends; a bad or empty platform is an error', () => {
  const platforms = { build: { os: 'linux', architecture: 'arm64', variant: 'v8' }, target: { os: 'linux', architecture: 'arm', variant: '' } };
  const resolved = plan(lines('FROM --platform=$BUILDPLATFORM golang AS build', 'FROM --platform=${TARGETOS}/${TARGETARCH} alpine'), { platform: platforms });
  assert.deepEqual(resolved.stages.map((stage) => stage.platform), ['linux/arm64', 'linux/arm']);
  assertError(() => plan(lines('FROM --platform=$NOPE alpine')), 'DOCKERFILE', /^Dockerfile:1: --platform=\$NOPE expands to nothing/);
  assertError(() => plan(lines('ARG P=linux', 'FROM --platform=$P alpine')), 'DOCKERFILE', /^Dockerfile:2: --platform=linux is not a platform; write os\/architecture\[\/variant\]/);
  assertError(() => plan(lines('ARG IMAGE', 'FROM $IMAGE')), 'DOCKERFILE', /^Dockerfile:2: FROM \$IMAGE expands to an empty image name; declare and set the ARG/);
  assertError(() => plan(lines('FROM ${IMAGE:?required}')), 'DOCKERFILE', /^Dockerfile:1: IMAGE: required \(in "\$\{IMAGE:\?required\}"\); set IMAGE with ARG/);
  // FROM splits on whitespace before expanding, as Docker does, so a default with a space is three words.
  assertError(() => plan(lines('FROM ${IMAGE:-a b}')), 'DOCKERFILE', /^Dockerfile:1: FROM takes an image and optionally "AS name", but got 2 words/);
});

test('automatic platform args are spelled as containerd spells them', () => {
  const args = platformArgs({ build: { os: 'linux', architecture: 'arm64', variant: 'v8' }, target: { os: 'linux', architecture: 'arm' } });
  assert.deepEqual(Object.fromEntries(args), {
    BUILDPLATFORM: 'linux/arm64',
    BUILDOS: 'linux',
    BUILDARCH: 'arm64',
    BUILDVARIANT: '',
    TARGETPLATFORM: 'linux/arm/v7',
    TARGETOS: 'linux',
    TARGETARCH: 'arm',
    TARGETVARIANT: 'v7',
  });
});

test('--build-arg NAME without a value takes it from the environment, or is dropped', () => {
  const resolved = plan(lines('ARG A', 'ARG B', 'FROM x-$A-$B'), { buildArgs: new Map([['A', undefined], ['B', undefined]]), environment: { A: 'from-env' } });
  assert.equal(resolved.stages[0]!.image, 'x-from-env-');
  assert.deepEqual([...resolved.buildArgs], [['A', 'from-env']]);
});

test('--target picks the last stage to build; the stages it needs follow FROM, COPY --from and RUN --mount from=', () => {
  const text = lines(
    'FROM alpine AS tools', //        0
    'FROM alpine AS deps', //         1
    'FROM golang AS build', //        2
    'COPY --from=tools /bin/x /bin/', //
    'RUN --mount=type=cache,target=/c --mount=type=bind,from=deps,target=/d make', //
    'FROM build AS test', //          3
    'FROM alpine AS unused', //       4
    'FROM scratch', //                5
    'COPY --from=2 /app /app', //
    'COPY --from=docker.io/library/busybox /bin/sh /bin/sh',
  );
  const last = plan(text);
  assert.equal(last.target, 5);
  assert.deepEqual(last.required, [0, 1, 2, 5]);
  assert.deepEqual(last.stages.map((stage) => stage.dependencies), [[], [], [0, 1], [2], [], [2]]);

  const test_ = plan(text, { target: 'TEST' });
  assert.equal(test_.target, 3);
  assert.deepEqual(test_.required, [0, 1, 2, 3]);
  assert.deepEqual(plan(text, { target: 'unused' }).required, [4]);
});

test('an unknown --target lists the stage names', () => {
  assertError(() => plan(lines('FROM a AS build', 'FROM b AS final'), { target: 'prod' }), 'USAGE', /--target "prod" is not a stage of Dockerfile; its named stages are build, final\./);
  assertError(() => plan(lines('FROM a'), { target: 'prod' }), 'USAGE', /it has no named stages/);
});

test('COPY --from must name an earlier stage; other names are images', () => {
  assertError(() => plan(lines('FROM a AS one', 'COPY --from=two /x /x', 'FROM b AS two')), 'DOCKERFILE', /^Dockerfile:2: --from=two names the stage on line 3, which is not earlier than this one/);
  assertError(() => plan(lines('FROM a AS one', 'COPY --from=one /x /x')), 'DOCKERFILE', /^Dockerfile:2: --from=one names the stage on line 1/);
  assertError(() => plan(lines('FROM a', 'COPY --from=7 /x /x')), 'DOCKERFILE', /^Dockerfile:2: --from=7 names stage 7, but the Dockerfile has 1 stages/);
  const resolved = plan(lines('FROM a', 'COPY --from=nginx:latest /etc/nginx /etc/nginx'));
  assert.deepEqual(resolved.stages[0]!.dependencies, []);
});

test('a stage built on another runs that stage\'s ONBUILD triggers, so it needs what they copy from', () => {
  const resolved = plan(lines('FROM a AS assets', 'FROM b AS base', 'ONBUILD COPY --from=assets /x /x', 'FROM base'));
  assert.deepEqual(resolved.stages[2]!.dependencies, [0, 1]);
  assert.deepEqual(resolved.required, [0, 1, 2]);
});

test('mount sources are read from the from= field', () => {
  assert.equal(mountSource('type=bind,from=build,source=/out,target=/in'), 'build');
  assert.equal(mountSource('type=cache,target=/root/.cache'), undefined);
  assert.equal(mountSource('"from=a,b",target=/x'), 'a,b');
  assert.equal(mountSource('FROM=deps'), 'deps');
});

test('build args that no ARG declares are reported; proxy and platform args never are', () => {
  const resolved = plan(lines('ARG GLOBAL', 'FROM a', 'ARG LOCAL', 'ONBUILD ARG TRIGGERED'), {
    buildArgs: new Map([['GLOBAL', '1'], ['LOCAL', '2'], ['TRIGGERED', '3'], ['HTTP_PROXY', 'p'], ['no_proxy', 'q'], ['TARGETARCH', 'arm64'], ['TYPO', '4']]),
  });
  assert.deepEqual(resolved.unusedBuildArgs, ['TYPO']);
});
