import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KILN as kiln, busyboxLayout, skopeoInspect, startRegistry, type RunningRegistry } from './harness/index.js';

const work = mkdtempSync(join(tmpdir(), 'kiln-cli-'));
let registry: RunningRegistry;
let layout: { dir: string; tag: string };

function runKiln(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [kiln, ...args, '--log-format=text'], {
    encoding: 'utf8',
    env: { ...process.env, DOCKER_CONFIG: join(work, 'none'), ...env },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function dockerConfig(name: string, host: string, username: string, password: string): string {
  const dir = join(work, name);
  rmSync(dir, { recursive: true, force: true });
  spawnSync('mkdir', ['-p', dir]);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${username}:${password}`).toString('base64') } } }));
  return dir;
}

before(async () => {
  registry = await startRegistry('basic');
  layout = await busyboxLayout();
});
after(async () => {
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
});

test('kiln copy pushes a layout with config.json credentials and writes every output', () => {
  const config = dockerConfig('good', registry.host, registry.username!, registry.password!);
  const out = join(work, 'out');
  const result = runKiln(
    ['copy', `oci:${layout.dir}:${layout.tag}`, `${registry.host}/cli/busybox:1`, '--oci-layout-path', `${out}-layout`, '--tar-path', `${out}.tar`, '--digest-file', `${out}.digest`, '--image-name-with-digest-file', `${out}.names`],
    { DOCKER_CONFIG: config },
  );
  assert.equal(result.status, 0, result.stderr);
  const digest = result.stdout.trim();
  assert.match(digest, /^sha256:[0-9a-f]{64}$/);
  assert.equal(readFileSync(`${out}.digest`, 'utf8'), digest);
  assert.equal(readFileSync(`${out}.names`, 'utf8'), `${registry.host}/cli/busybox@${digest}\n`);
  assert.ok(existsSync(join(`${out}-layout`, 'index.json')));
  assert.ok(existsSync(`${out}.tar`));
  return skopeoInspect(registry, 'cli/busybox:1').then((inspected) => assert.equal(inspected.Digest, digest));
});

test('wrong credentials: one sentence on stderr, exit 1, nothing pushed', async () => {
  const config = dockerConfig('bad', registry.host, registry.username!, 'wrong-password');
  const result = runKiln(['copy', `oci:${layout.dir}:${layout.tag}`, `${registry.host}/cli/refused:1`], { DOCKER_CONFIG: config });
  assert.equal(result.status, 1);
  const errorLines = result.stderr.split('\n').filter((line) => line.startsWith('kiln: error:'));
  assert.equal(errorLines.length, 1, result.stderr);
  assert.match(errorLines[0]!, /rejected the credentials/);
  assert.ok(!result.stderr.includes('wrong-password'));
  assert.ok(!/\n\s+at /.test(result.stderr), 'no stack trace at default verbosity');
  await assert.rejects(skopeoInspect(registry, 'cli/refused:1'));
});

test('an unknown flag is named and nothing runs', () => {
  const result = runKiln(['copy', `oci:${layout.dir}`, `${registry.host}/cli/x:1`, '--no-such-flag']);
  assert.equal(result.status, 2);
  assert.equal(result.stderr.trim(), 'kiln: error: unknown flag --no-such-flag: kiln does not support it; see kiln --help for the flags it takes.');
});

test('a bad reference is one sentence naming it', () => {
  const result = runKiln(['copy', `oci:${layout.dir}`, 'Bad Reference!']);
  assert.equal(result.status, 1);
  assert.match(result.stderr.trim(), /^kiln: error: .*Bad Reference!/);
  assert.equal(result.stderr.trim().split('\n').length, 1);
});
