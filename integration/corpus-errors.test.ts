// The Dockerfile corpus, part 3: bad inputs. Each must end kiln with a non-zero exit and one
// `kiln: error:` line a user can act on (file and line where there is one), and push nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busyboxLayout, pushLayout, skopeoInspect, startRegistry, type RunningRegistry } from './harness/index.js';
import { Corpus, type KilnResult } from './corpus/corpus.js';

let registry: RunningRegistry;
let corpus: Corpus;

before(async () => {
  registry = await startRegistry('plain');
  const layout = await busyboxLayout();
  await pushLayout(layout.dir, layout.tag, registry, 'base/busybox:1');
  corpus = new Corpus(registry);
});

after(async () => {
  await registry?.stop();
  corpus?.remove();
});

/** Builds `fixture` to corpus/<fixture>:1 and checks the failure's shape; returns its one error line. */
async function failingBuild(fixture: string, extraArgs: string[] = [], env: Record<string, string> = {}): Promise<{ error: string; result: KilnResult }> {
  const result = await corpus.build(['--context', corpus.context(fixture), '--destination', corpus.ref(`corpus/${fixture}:1`), ...extraArgs], env);
  assertOneError(result);
  assert.ok(!(await corpus.exists(`corpus/${fixture}:1`)), `${fixture}: nothing is pushed`);
  return { error: result.errors[0]!, result };
}

function assertOneError(result: KilnResult): void {
  assert.notEqual(result.code, 0, result.stderr);
  assert.equal(result.errors.length, 1, `one kiln: error: line in\n${result.stderr}`);
  assert.doesNotMatch(result.stderr, /internal error|\n\s+at /, 'no internal error or stack trace');
  assert.equal(result.stdout, '', 'no digest is printed');
}

test('Dockerfile errors name the file and line: unknown instruction, bad flag, unterminated heredoc', async () => {
  let { error } = await failingBuild('err-unknown-instruction');
  assert.match(error, /Dockerfile:3:/);
  assert.match(error, /"COPPY"/);
  assert.match(error, /COPY/);

  ({ error } = await failingBuild('err-bad-flag'));
  assert.match(error, /Dockerfile:2:/);
  assert.match(error, /--frm/);

  ({ error } = await failingBuild('err-unterminated-heredoc'));
  assert.match(error, /Dockerfile:2:/);
  assert.match(error, /heredoc/i);
  assert.match(error, /EOF/);
});

test('COPY errors: several sources into a path without /, an unknown --from', async () => {
  let { error } = await failingBuild('err-multi-source-no-slash');
  assert.match(error, /Dockerfile:2:/);
  assert.match(error, /\/dest\//);

  // A --from that names no stage is an image reference. The mirror flags keep the pull on this
  // machine's registry, which does not have it.
  ({ error } = await failingBuild('err-unknown-stage', ['--registry-mirror', registry.host, '--skip-default-registry-fallback']));
  assert.match(error, /nosuch/);
  assert.match(error, /stage/);
});

test('COPY of a missing source: file, line and a sentence of advice', async () => {
  const { error, result } = await failingBuild('err-missing-source');
  assert.match(error, /Dockerfile:3:/);
  assert.match(error, /missing\.txt/);
  assert.match(result.stderr, /STEP 2\/2/, 'the steps before it ran');
  assert.match(error, /not found in (the )?build context/);
  assert.doesNotMatch(error, / that the\.$/, 'the advice names the build context');
});

test('a failing RUN: its exit code and line, its output shown, later steps not run', async () => {
  const { error, result } = await failingBuild('err-run-fails');
  assert.match(error, /^kiln: error: Dockerfile:4: RUN exited with code 42/);
  assert.match(result.stderr, /this step succeeds/);
  assert.match(result.stderr, /about to fail/);
  assert.doesNotMatch(result.stderr, /STEP 4\/4/);
  assert.equal(result.code, 1);
});

test('a USER the image does not know: the line of the RUN that needs it', async () => {
  const { error } = await failingBuild('err-unknown-user');
  assert.match(error, /^kiln: error: Dockerfile:3: /);
  assert.match(error, /"ghost"/);
  assert.match(error, /\/etc\/passwd/);
});

test('a FROM image that does not exist', async () => {
  const { error } = await failingBuild('err-missing-base');
  assert.match(error, /no\/such-image/);
});

test('wrong registry credentials, for the pull and for the push: one sentence, no password in it, nothing pushed', async () => {
  const guarded = await startRegistry('basic');
  try {
    const layout = await busyboxLayout();
    await pushLayout(layout.dir, layout.tag, guarded, 'base/busybox:1');
    const wrongPassword = 'not-the-password-4711';
    const dockerConfig = join(corpus.work, 'wrong-credentials');
    mkdirSync(dockerConfig, { recursive: true });
    writeFileSync(join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [guarded.host]: { auth: Buffer.from(`${guarded.username}:${wrongPassword}`).toString('base64') } } }));
    const dir = corpus.context('err-credentials', { REGISTRY: guarded.host });
    const result = await corpus.build(['--context', dir, '--destination', `${guarded.host}/corpus/err-credentials:1`], { DOCKER_CONFIG: dockerConfig });
    assertOneError(result);
    assert.match(result.errors[0]!, new RegExp(guarded.host.replace(/\./g, '\\.')));
    assert.match(result.errors[0]!, /credential|unauthori[sz]ed|401|denied/i);
    assert.ok(!result.stderr.includes(wrongPassword), 'the password is never printed');
    await assert.rejects(skopeoInspect(guarded, 'corpus/err-credentials:1'), 'nothing is pushed');

    // The base pulls (from the open registry) and every step runs; the push is refused.
    const push = await corpus.build(['--context', corpus.context('err-credentials'), '--destination', `${guarded.host}/corpus/err-credentials:2`], { DOCKER_CONFIG: dockerConfig });
    assertOneError(push);
    assert.match(push.errors[0]!, /credential|unauthori[sz]ed|401|denied/i);
    assert.match(push.stderr, /STEP 1\/1/);
    assert.ok(!push.stderr.includes(wrongPassword), 'the password is never printed');
    await assert.rejects(skopeoInspect(guarded, 'corpus/err-credentials:2'), 'nothing is pushed');
  } finally {
    await guarded.stop();
  }
});

test('command line: an unknown flag, and a kaniko flag kiln does not support yet', async () => {
  const dir = corpus.context('outputs-local');
  let result = await corpus.build(['--context', dir, '--destination', corpus.ref('corpus/cli:1'), '--no-such-flag']);
  assertOneError(result);
  assert.match(result.errors[0]!, /--no-such-flag/);

  result = await corpus.build(['--context', dir, '--destination', corpus.ref('corpus/cli:1'), '--use-new-run']);
  assertOneError(result);
  assert.match(result.errors[0]!, /--use-new-run\b/);
  assert.match(result.errors[0]!, /not support/);
  assert.ok(!(await corpus.exists('corpus/cli:1')));
});
