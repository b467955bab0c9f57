import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createReadStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { busyboxLayout, pushLayout, runImage, startRegistry, umociUnpack, type RunningRegistry } from './harness/index.js';

const kiln = join(dirname(fileURLToPath(import.meta.url)), '..', 'cmd', 'kiln.js');
const work = mkdtempSync(join(tmpdir(), 'kiln-context-test-'));
let registry: RunningRegistry;

before(async () => {
  registry = await startRegistry('plain');
  const layout = await busyboxLayout();
  await pushLayout(layout.dir, layout.tag, registry, 'base/busybox:1');
  const dir = join(work, 'src');
  mkdirSync(join(dir, 'sub'), { recursive: true });
  writeFileSync(join(dir, 'Dockerfile'), `FROM ${registry.host}/base/busybox:1\nCOPY sub/file.txt /file.txt\nCMD ["cat", "/file.txt"]\n`);
  writeFileSync(join(dir, 'sub', 'file.txt'), 'from a tar context\n');
  spawnSync('tar', ['-czf', join(work, 'context.tar.gz'), '-C', dir, '.']);
  spawnSync('tar', ['-cf', join(work, 'context.tar'), '-C', dir, '.']);
});
after(async () => {
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
});

function kilnBuild(args: string[], stdinFile?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [kiln, 'build', '--log-format=text', ...args], { stdio: [stdinFile ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    if (stdinFile) createReadStream(stdinFile).pipe(child.stdin!);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (c: Buffer) => out.push(c));
    child.stderr!.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
  });
}

for (const [name, context, stdin] of [
  ['tar://FILE.tar.gz', () => `tar://${join(work, 'context.tar.gz')}`, undefined],
  ['tar://FILE.tar', () => `tar://${join(work, 'context.tar')}`, undefined],
  ['tar://stdin', () => 'tar://stdin', () => join(work, 'context.tar.gz')],
] as const) {
  test(`a ${name} context is unpacked and built`, async () => {
    const layout = join(work, `layout-${name.replace(/\W/g, '')}`);
    const result = await kilnBuild(['--context', context(), '--no-push', '--oci-layout-path', layout], stdin?.());
    assert.equal(result.code, 0, result.stderr);
    const run = await runImage(layout, 'latest');
    assert.equal(run.stdout, 'from a tar context\n');
  });
}

test('--context-sub-path picks a directory inside the context', async () => {
  const dir = join(work, 'nested');
  mkdirSync(join(dir, 'app'), { recursive: true });
  writeFileSync(join(dir, 'app', 'Dockerfile'), `FROM ${registry.host}/base/busybox:1\nCOPY hello /hello\n`);
  writeFileSync(join(dir, 'app', 'hello'), 'hi\n');
  const layout = join(work, 'layout-sub');
  const result = await kilnBuild(['--context', `dir://${dir}`, '--context-sub-path', 'app', '--no-push', '--oci-layout-path', layout]);
  assert.equal(result.code, 0, result.stderr);
  const bundle = join(work, 'bundle-sub');
  await umociUnpack(layout, 'latest', bundle);
  assert.equal(spawnSync('cat', [join(bundle, 'rootfs', 'hello')], { encoding: 'utf8' }).stdout, 'hi\n');
});

test('a context that does not exist is one sentence', async () => {
  const result = await kilnBuild(['--context', `tar://${join(work, 'missing.tar.gz')}`, '--no-push']);
  assert.equal(result.code, 2);
  assert.match(result.stderr.trim(), /^kiln: error: --context tar:\/\/.*missing\.tar\.gz: .* does not exist\.$/);
});
