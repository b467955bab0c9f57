import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IgnoreList, mountPoints } from '../../src/snapshot/ignore.js';

const MOUNTINFO = [
  '22 1 0:21 / / rw,relatime - overlay overlay rw',
  '23 22 0:22 / /proc rw - proc proc rw',
  '24 22 0:23 / /workspace rw - ext4 /dev/vda rw',
  '25 22 0:24 / /etc/my\\040secret rw - tmpfs tmpfs rw',
].join('\n');

test('default list covers kernel filesystems, the kaniko dir and /var/run', async () => {
  const list = await IgnoreList.create({ rootDir: '/tmp/root' });
  for (const path of ['/proc/1/status', '/sys', '/dev/null', '/kaniko/executor', '/var/run/x', '/etc/mtab']) {
    assert.equal(list.isIgnored(path), true, path);
  }
  for (const path of ['/', '/etc', '/etc/passwd', '/var', '/var/lib', '/kanikox', '/procfs']) {
    assert.equal(list.isIgnored(path), false, path);
  }
});

test('--ignore-var-run=false and --ignore-path and --kaniko-dir are honoured', async () => {
  const list = await IgnoreList.create({ rootDir: '/tmp/root', ignoreVarRun: false, ignorePaths: ['/opt/cache/'], kanikoDir: '/builder' });
  assert.equal(list.isIgnored('/var/run/x'), false);
  assert.equal(list.isIgnored('/opt/cache/a'), true);
  assert.equal(list.isIgnored('/builder/x'), true);
  assert.equal(list.isIgnored('/kaniko/x'), false);
});

test('mount points are ignored only when building into /', async () => {
  const inRoot = await IgnoreList.create({ rootDir: '/', mountInfo: MOUNTINFO });
  assert.equal(inRoot.isIgnored('/workspace/Dockerfile'), true);
  assert.equal(inRoot.isIgnored('/etc/my secret'), true);
  assert.equal(inRoot.isIgnored('/etc/hosts'), false);
  const elsewhere = await IgnoreList.create({ rootDir: '/tmp/root', mountInfo: MOUNTINFO });
  assert.equal(elsewhere.isIgnored('/workspace/Dockerfile'), false);
});

test('hasIgnoredBelow tells a walk where to look inside', () => {
  const list = IgnoreList.of(['/var/run', '/proc']);
  assert.equal(list.hasIgnoredBelow('/var'), true);
  assert.equal(list.hasIgnoredBelow('/'), true);
  assert.equal(list.hasIgnoredBelow('/etc'), false);
});

test('mountPoints decodes octal escapes', () => {
  assert.deepEqual(mountPoints(MOUNTINFO), ['/', '/proc', '/workspace', '/etc/my secret']);
});
