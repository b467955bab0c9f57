import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveDockerfilePath } from '../../cmd/options/dockerfile-path.js';
import { KilnError } from '../../src/util/errors.js';

// A Tekton workspace as kaniko's catalog Task sees it: the step runs in the workspace,
// CONTEXT=app and DOCKERFILE=app/Dockerfile are both relative to it.
async function workspace(): Promise<{ root: string; context: string; done: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'kiln-dockerfile-path-'));
  const context = join(root, 'app');
  await mkdir(join(context, 'docker'), { recursive: true });
  await writeFile(join(context, 'Dockerfile'), 'FROM scratch\n');
  await writeFile(join(context, 'docker', 'Dockerfile.prod'), 'FROM scratch\n');
  return { root, context, done: () => rm(root, { recursive: true, force: true }) };
}

test('the path as given, from the working directory, comes first (kaniko\'s rule)', async () => {
  const w = await workspace();
  try {
    assert.equal(resolveDockerfilePath('app/Dockerfile', w.context, w.root), join(w.context, 'Dockerfile'));
  } finally {
    await w.done();
  }
});

test('otherwise the path inside the context', async () => {
  const w = await workspace();
  try {
    assert.equal(resolveDockerfilePath('Dockerfile', w.context, w.root), join(w.context, 'Dockerfile'));
    assert.equal(resolveDockerfilePath('docker/Dockerfile.prod', w.context, w.root), join(w.context, 'docker', 'Dockerfile.prod'));
    assert.equal(resolveDockerfilePath(join(w.context, 'Dockerfile'), '/elsewhere', w.root), join(w.context, 'Dockerfile'));
  } finally {
    await w.done();
  }
});

test('a directory is not a Dockerfile', async () => {
  const w = await workspace();
  try {
    // `docker` exists from the working directory (w.context) but is a directory.
    assert.throws(() => resolveDockerfilePath('docker', w.context, w.context), (err: unknown) => err instanceof KilnError && /does not exist/.test(err.message));
  } finally {
    await w.done();
  }
});

test('a missing Dockerfile and a URL are refused with one sentence naming the flag', async () => {
  const w = await workspace();
  try {
    assert.throws(() => resolveDockerfilePath('nope/Dockerfile', w.context, w.root), (err: unknown) =>
      err instanceof KilnError && err.code === 'USAGE' && err.message.includes(join(w.context, 'nope/Dockerfile')) && /--dockerfile/.test(err.message));
    assert.throws(() => resolveDockerfilePath('https://example.com/Dockerfile', w.context, w.root), (err: unknown) =>
      err instanceof KilnError && /--dockerfile https:\/\/example\.com\/Dockerfile: .*not supported/.test(err.message));
  } finally {
    await w.done();
  }
});
