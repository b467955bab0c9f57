import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { wipeRoot } from '../../src/builder/isolation/wipe.js';
import { IgnoreList } from '../../src/snapshot/ignore.js';

test('wipeRoot removes a stage\'s files but keeps ignored paths and the directories above them', async () => {
  const root = mkdtempSync(join(tmpdir(), 'kiln-wipe-'));
  const outside = mkdtempSync(join(tmpdir(), 'kiln-wipe-outside-'));
  try {
    for (const dir of ['kaniko/bin', 'workspace/src', 'usr/lib', 'var/lib/secret', 'var/cache', 'etc']) mkdirSync(join(root, dir), { recursive: true });
    writeFileSync(join(root, 'kaniko/bin/node'), 'node');
    writeFileSync(join(root, 'workspace/src/app.js'), 'app');
    writeFileSync(join(root, 'usr/lib/libc.so'), 'libc');
    writeFileSync(join(root, 'var/lib/secret/token'), 'token');
    writeFileSync(join(root, 'var/cache/big'), 'big');
    writeFileSync(join(root, 'etc/passwd'), 'root');
    writeFileSync(join(outside, 'keep'), 'keep');
    // A symlink out of the root is removed as a link; its target is never touched.
    symlinkSync(outside, join(root, 'link'));
    await wipeRoot(root, IgnoreList.of(['/kaniko', '/workspace', '/var/lib/secret']));
    assert.deepEqual(readdirSync(root).sort(), ['kaniko', 'var', 'workspace']);
    assert.deepEqual(readdirSync(join(root, 'var')), ['lib']);
    assert.deepEqual(readdirSync(join(root, 'var/lib')), ['secret']);
    assert.ok(existsSync(join(root, 'kaniko/bin/node')));
    assert.ok(existsSync(join(root, 'workspace/src/app.js')));
    assert.ok(existsSync(join(root, 'var/lib/secret/token')));
    assert.ok(existsSync(join(outside, 'keep')));
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  }
});
