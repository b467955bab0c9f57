import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDockerfile } from '../../src/dockerfile/parse.js';
import { resolveStages, type ResolveOptions } from '../../src/dockerfile/stages.js';
import { DEFAULT_PATH, planStage, type StageInput, type StageStep } from '../../src/dockerfile/steps.js';
import { referencedArgs, unreferencedArgs } from '../../src/dockerfile/references.js';
import { isKilnError } from '../../src/util/errors.js';

const lines = (...text: string[]): string => text.join('\n') + '\n';
const PLATFORMS = { build: { os: 'linux', architecture: 'amd64' }, target: { os: 'linux', architecture: 'arm64' } };
const EMPTY_IMAGE: StageInput = { kind: 'image' };

function buildPlan(text: string, buildArgs: Record<string, string> = {}, options: Partial<ResolveOptions> = {}) {
  return resolveStages(parseDockerfile(text, 'Dockerfile'), { buildArgs: new Map(Object.entries(buildArgs)), platform: PLATFORMS, environment: {}, ...options });
}

/** Plans every stage in order, feeding each stage-based stage its base's exit. */
function planAll(text: string, buildArgs: Record<string, string> = {}, baseImage: StageInput = EMPTY_IMAGE) {
  const plan = buildPlan(text, buildArgs);
  const planned: ReturnType<typeof planStage>[] = [];
  for (const stage of plan.stages) {
    const input: StageInput = stage.base.kind === 'stage' ? { kind: 'stage', exit: planned[stage.base.index]!.exit } : baseImage;
    planned.push(planStage(plan, stage.index, input));
  }
  return planned;
}

const steps = (text: string, buildArgs: Record<string, string> = {}, baseImage: StageInput = EMPTY_IMAGE): StageStep[] =>
  planAll(text, buildArgs, baseImage).at(-1)!.steps;

const envOf = (step: StageStep): Record<string, string> =>
  Object.fromEntries(step.processEnv.map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]));

const runText = (step: StageStep): string => (step.expanded.kind === 'run' && step.expanded.command.form === 'shell' ? step.expanded.command.text : '');

test('a global ARG is invisible inside a stage until `ARG NAME` declares it there', () => {
  const [before, declare, after] = steps(lines('ARG VERSION=1.0', 'FROM a', 'RUN echo $VERSION', 'ARG VERSION', 'WORKDIR /v$VERSION'));
  assert.equal(envOf(before!).VERSION, undefined);
  assert.equal(before!.args.size, 0);
  assert.deepEqual(declare!.expanded.kind === 'arg' && declare!.expanded.args, [{ name: 'VERSION', defaultValue: '1.0' }]);
  assert.equal(after!.expanded.kind === 'workdir' && after!.expanded.path, '/v1.0');
  assert.equal(after!.args.get('VERSION'), '1.0');
  assert.equal(envOf(after!).VERSION, '1.0');
});

test('a --build-arg overrides a global default and a stage default; an ARG with no value at all stays unset', () => {
  const text = lines('ARG G=global', 'FROM a', 'ARG G', 'ARG S=stage', 'ARG NONE', 'RUN x');
  const defaults = steps(text).at(-1)!;
  assert.deepEqual(Object.fromEntries(defaults.args), { G: 'global', S: 'stage' });
  const given = steps(text, { G: 'cli-g', S: 'cli-s' }).at(-1)!;
  assert.deepEqual(Object.fromEntries(given.args), { G: 'cli-g', S: 'cli-s' });
  assert.equal(envOf(given).NONE, undefined);
});

test('an ARG default is expanded with what is visible at that point, earlier ARGs of its line included', () => {
  const last = steps(lines('FROM a', 'ENV BASE=/opt', 'ARG DIR=$BASE/app', 'ARG FILE=${DIR}/bin', 'ARG A=1 B=$A-2', 'RUN x')).at(-1)!;
  assert.deepEqual(Object.fromEntries(last.args), { DIR: '/opt/app', FILE: '/opt/app/bin', A: '1', B: '1-2' });
});

test('build args never declared do not reach RUN, except the proxy variables', () => {
  const [run, env] = steps(lines('FROM a', 'RUN x', 'ENV P=$HTTP_PROXY'), { SECRET: 's', HTTP_PROXY: 'http://proxy:3128', no_proxy: 'localhost' });
  const processEnv = envOf(run!);
  assert.equal(processEnv.SECRET, undefined);
  assert.equal(processEnv.HTTP_PROXY, 'http://proxy:3128');
  assert.equal(processEnv.no_proxy, 'localhost');
  assert.equal(run!.args.size, 0);
  assert.equal(run!.env.has('HTTP_PROXY'), false);
  assert.deepEqual(env!.expanded.kind === 'env' && env!.expanded.pairs, [{ key: 'P', value: '' }]);
});

test('platform args are available in a stage once declared', () => {
  const [before, , after] = steps(lines('FROM a', 'RUN echo $TARGETARCH', 'ARG TARGETARCH TARGETPLATFORM BUILDPLATFORM', 'ADD https://example.com/tool-${TARGETARCH}.tgz /'));
  assert.equal(envOf(before!).TARGETARCH, undefined);
  assert.deepEqual(Object.fromEntries(after!.args), { TARGETARCH: 'arm64', TARGETPLATFORM: 'linux/arm64', BUILDPLATFORM: 'linux/amd64' });
  assert.deepEqual(after!.expanded.kind === 'add' && after!.expanded.sources, ['https://example.com/tool-arm64.tgz']);
});

test('ENV persists into later instructions and the image config; one ENV expands with the values before it', () => {
  const planned = planAll(lines('FROM a', 'ENV A=1', 'ENV A=2 B=$A', 'RUN echo', 'ENV C="${B}x"'));
  const [, second, run, third] = planned[0]!.steps;
  assert.deepEqual(second!.expanded.kind === 'env' && second!.expanded.pairs, [{ key: 'A', value: '2' }, { key: 'B', value: '1' }]);
  assert.equal(run!.env.get('A'), '2');
  assert.equal(envOf(run!).B, '1');
  assert.deepEqual(third!.expanded.kind === 'env' && third!.expanded.pairs, [{ key: 'C', value: '1x' }]);
  assert.deepEqual(Object.fromEntries(planned[0]!.exit.env), { PATH: DEFAULT_PATH, A: '2', B: '1', C: '1x' });
});

test('ARG values never reach the image config; between ARG and ENV of one name the later one wins', () => {
  const planned = planAll(lines('FROM a', 'ARG V=arg', 'ENV V=env', 'RUN one', 'ARG V=arg2', 'RUN two', 'ARG ONLY=x'), { V: 'cli' });
  const [, , one, , two] = planned[0]!.steps;
  assert.equal(envOf(one!).V, 'env');
  assert.equal(envOf(two!).V, 'cli');
  assert.equal(planned[0]!.exit.env.get('V'), 'env');
  assert.equal(planned[0]!.exit.env.has('ONLY'), false);
  assert.equal(planned[0]!.exit.args.get('ONLY'), 'x');
});

test('the base image ENV is the starting point, with PATH added when it has none', () => {
  const image: StageInput = { kind: 'image', env: ['PATH=/usr/bin:/bin', 'LANG=C.UTF-8', 'EMPTY'] };
  const [env, run] = steps(lines('FROM a', 'ENV PATH=$PATH:/opt/bin', 'RUN x'), {}, image);
  assert.deepEqual(env!.expanded.kind === 'env' && env!.expanded.pairs, [{ key: 'PATH', value: '/usr/bin:/bin:/opt/bin' }]);
  assert.deepEqual(run!.processEnv, ['PATH=/usr/bin:/bin:/opt/bin', 'LANG=C.UTF-8', 'EMPTY=']);
  const [scratch] = steps(lines('FROM scratch', 'RUN x'));
  assert.deepEqual(scratch!.processEnv, [`PATH=${DEFAULT_PATH}`]);
});

test('a stage built on an earlier stage inherits its ENV and its ARGs', () => {
  const planned = planAll(lines('ARG GLOBAL=g', 'FROM a AS stage-a', 'ARG GLOBAL', 'ARG LOCAL="local arg"', 'ENV LOCAL_ENV=true', 'FROM stage-a AS stage-c', 'RUN echo $LOCAL $LOCAL_ENV', 'FROM a', 'RUN echo $LOCAL'));
  const inherited = planned[1]!.steps[0]!;
  assert.equal(envOf(inherited).LOCAL, 'local arg');
  assert.equal(envOf(inherited).LOCAL_ENV, 'true');
  assert.equal(envOf(inherited).GLOBAL, 'g');
  assert.equal(inherited.args.get('LOCAL'), 'local arg');
  assert.equal(envOf(planned[2]!.steps[0]!).LOCAL, undefined);
});

test('ONBUILD triggers of the base image run first, at the FROM line; the stage\'s own ONBUILDs go to the exit', () => {
  const image: StageInput = { kind: 'image', env: ['HOME=/root'], onBuild: ['COPY . /src', 'RUN make -C $HOME'] };
  const planned = planAll(lines('FROM onbuild-base', 'ARG V=1', 'ONBUILD RUN echo $V', 'RUN done'), {}, image);
  const [copy, make, arg, onbuild, done] = planned[0]!.steps;
  assert.deepEqual([copy!.origin, copy!.instruction.kind, copy!.instruction.line, copy!.source], ['onbuild-trigger', 'copy', 1, { kind: 'context' }]);
  assert.deepEqual([make!.origin, runText(make!)], ['onbuild-trigger', 'make -C $HOME']);
  assert.deepEqual([arg!.origin, onbuild!.instruction.kind, done!.origin], ['dockerfile', 'onbuild', 'dockerfile']);
  assert.deepEqual(planned[0]!.exit.onBuild, ['RUN echo $V']);

  const child = planAll(lines('FROM a AS base', 'ONBUILD ENV FROM_TRIGGER=yes', 'FROM base', 'RUN x'));
  const [trigger, run] = child[1]!.steps;
  assert.deepEqual([trigger!.origin, trigger!.instruction.line], ['onbuild-trigger', 3]);
  assert.equal(run!.env.get('FROM_TRIGGER'), 'yes');
  assert.deepEqual(child[1]!.exit.onBuild, []);
});

test('a base image trigger that is not allowed, or not one instruction, is an error at the FROM line', () => {
  const plan = buildPlan(lines('FROM base', 'RUN y'));
  for (const [triggers, pattern] of [
    [['FROM evil'], /^Dockerfile:1: the base image has an ONBUILD trigger "FROM evil", and FROM cannot be a trigger/],
    [['RUN a\nRUN b'], /^Dockerfile:1: the base image has an ONBUILD trigger that is not one instruction/],
    [['RUNN a'], /^Dockerfile:1: unknown instruction "RUNN"/],
  ] as const) {
    assert.throws(() => planStage(plan, 0, { kind: 'image', onBuild: [...triggers] }), (err: unknown) => isKilnError(err, 'DOCKERFILE') && pattern.test(err.message));
  }
});

test('expansion happens per instruction with what it sees; RUN text is left to the shell', () => {
  const [, , copy, run, user, , expose] = steps(
    lines('FROM a', 'ARG APP=web', 'ENV ROOT=/srv', 'COPY --chown=$APP ${APP}.conf $ROOT/$APP/', 'RUN echo $APP > $ROOT/x', 'USER ${APP}:${APP}', 'ENV PORTS="80 443"', 'EXPOSE ${PORTS:-80}'),
  );
  assert.deepEqual(copy!.expanded.kind === 'copy' && [copy!.expanded.chown, copy!.expanded.sources, copy!.expanded.dest], ['web', ['web.conf'], '/srv/web/']);
  assert.equal(runText(run!), 'echo $APP > $ROOT/x');
  assert.equal(user!.expanded.kind === 'user' && user!.expanded.user, 'web:web');
  assert.deepEqual(expose!.expanded.kind === 'expose' && expose!.expanded.ports, ['80', '443']);
});

test('COPY and ADD steps say where they read from', () => {
  const planned = planAll(lines('FROM a AS build', 'FROM b', 'COPY --from=build /x /x', 'COPY --from=0 /y /y', 'COPY --from=nginx /z /z', 'ADD . /src'));
  assert.deepEqual(planned[1]!.steps.map((step) => step.source), [
    { kind: 'stage', index: 0 },
    { kind: 'stage', index: 0 },
    { kind: 'image', ref: 'nginx' },
    { kind: 'context' },
  ]);
});

test('values checked after expansion: chmod, checksum, STOPSIGNAL, ${V:?}', () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [['FROM a', 'ARG MODE=999', 'COPY --chmod=$MODE a b'], {}, /^Dockerfile:3: --chmod=999 is not a file mode; write an octal mode up to 7777/],
    [['FROM a', 'ADD --checksum=md5:abc https://x/y /'], {}, /^Dockerfile:2: --checksum=md5:abc is not a digest/],
    [['FROM a', 'STOPSIGNAL SIGNOPE'], {}, /^Dockerfile:2: STOPSIGNAL SIGNOPE is not a signal; write a name such as SIGTERM/],
    [['FROM a', 'STOPSIGNAL 0'], {}, /STOPSIGNAL 0 is not a signal/],
    [['FROM a', 'ARG V', 'WORKDIR /${V:?give --build-arg V}'], {}, /^Dockerfile:3: V: give --build-arg V \(in "\/\$\{V:\?give --build-arg V\}"\); set V with ARG and --build-arg, or with ENV\.$/],
    [['FROM a', 'VOLUME $NOTHING'], {}, /^Dockerfile:2: VOLUME expands to an empty path/],
  ];
  for (const [text, buildArgs, pattern] of cases) {
    assert.throws(() => steps(lines(...text), buildArgs), (err: unknown) => isKilnError(err, 'DOCKERFILE') && pattern.test(err.message), text.join(' | '));
  }
  for (const ok of ['COPY --chmod=0755 a b', 'COPY --chmod=u+x,go-w a b', 'STOPSIGNAL SIGRTMIN+3', 'STOPSIGNAL term', 'STOPSIGNAL 9']) {
    assert.doesNotThrow(() => steps(lines('FROM a', ok)), ok);
  }
  assert.doesNotThrow(() => steps(lines('FROM a', 'ARG V', 'WORKDIR /${V:?}'), { V: 'set' }));
});

test('referencedArgs: names an instruction refers to, RUN text and heredocs included', () => {
  const [run, copy, env, cmd, heredoc] = parseDockerfile(
    lines('FROM a', 'RUN --mount=target=$CACHE echo ${VERSION:-1} $HOME "$(date)"', 'COPY --chown=$USER:${GROUP} src-$V /dst', 'ENV A=$B${C}', 'CMD echo $RUNTIME', 'RUN <<EOF', 'make $TARGET', 'EOF'),
    'Dockerfile',
  ).stages[0]!.instructions;
  assert.deepEqual([...referencedArgs(run!)].sort(), ['CACHE', 'HOME', 'VERSION']);
  assert.deepEqual([...referencedArgs(copy!)].sort(), ['GROUP', 'USER', 'V']);
  assert.deepEqual([...referencedArgs(env!)].sort(), ['B', 'C']);
  assert.deepEqual([...referencedArgs(cmd!)], []);
  assert.deepEqual([...referencedArgs(heredoc!)], ['TARGET']);
});

test('unreferencedArgs: ARGs a stage declares and never uses, so a cache key can leave them out', () => {
  const df = parseDockerfile(lines('FROM a', 'ARG USED UNUSED BUILD_DATE', 'ARG DERIVED=$USED', 'RUN echo $DERIVED'), 'Dockerfile');
  assert.deepEqual([...unreferencedArgs(df.stages[0]!)].sort(), ['BUILD_DATE', 'UNUSED']);
});

test('a typical multi-stage Dockerfile from text to planned steps', () => {
  const text = lines(
    '# syntax=docker/dockerfile:1',
    'ARG GO_VERSION=1.22',
    'FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-alpine AS build',
    'ARG TARGETOS TARGETARCH',
    'WORKDIR /src',
    'COPY go.mod go.sum ./',
    'RUN --mount=type=cache,target=/go/pkg/mod go mod download',
    'COPY . .',
    'RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/app ./cmd/app',
    '',
    'FROM alpine:3.20 AS debug',
    'RUN apk add --no-cache strace',
    '',
    'FROM gcr.io/distroless/static:nonroot',
    'COPY --from=build /out/app /app',
    'USER nonroot:nonroot',
    'ENTRYPOINT ["/app"]',
  );
  const plan = buildPlan(text, { GO_VERSION: '1.23' });
  assert.deepEqual(plan.required, [0, 2]);
  assert.deepEqual(plan.stages.map((stage) => [stage.image, stage.platform]), [
    ['golang:1.23-alpine', 'linux/amd64'],
    ['alpine:3.20', undefined],
    ['gcr.io/distroless/static:nonroot', undefined],
  ]);
  const build = planStage(plan, 0, { kind: 'image', env: ['PATH=/go/bin:/usr/local/go/bin:/usr/bin:/bin', 'GOPATH=/go'] });
  const compile = build.steps.at(-1)!;
  assert.equal(runText(compile), 'CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/app ./cmd/app');
  assert.deepEqual(compile.processEnv, ['PATH=/go/bin:/usr/local/go/bin:/usr/bin:/bin', 'GOPATH=/go', 'TARGETOS=linux', 'TARGETARCH=arm64']);
  const final = planStage(plan, 2, { kind: 'image', env: ['PATH=/usr/bin'] });
  assert.deepEqual(final.steps.map((step) => [step.expanded.kind, step.source]), [
    ['copy', { kind: 'stage', index: 0 }],
    ['user', undefined],
    ['entrypoint', undefined],
  ]);
  assert.deepEqual(Object.fromEntries(final.exit.env), { PATH: '/usr/bin' });
});
