import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileIndex, recordFromStats } from '../../src/snapshot/file-index.js';
import { IgnoreList } from '../../src/snapshot/ignore.js';
import { entriesOf, planWalk, walk, WalkerPool, type EntryStat, type WalkEntry, type WalkSkip } from '../../src/snapshot/walk.js';

function makeRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'kiln-walk-'));
  mkdirSync(join(root, 'etc/conf.d'), { recursive: true });
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
  writeFileSync(join(root, 'etc/conf.d/a'), 'a');
  mkdirSync(join(root, 'usr/lib'), { recursive: true });
  writeFileSync(join(root, 'usr/lib/libc.so'), 'elf');
  symlinkSync('/usr/lib', join(root, 'lib'));
  symlinkSync('../etc', join(root, 'usr/etc-link'));
  mkdirSync(join(root, 'proc/1'), { recursive: true });
  writeFileSync(join(root, 'proc/1/status'), 'x');
  mkdirSync(join(root, 'cache/deep/deeper'), { recursive: true });
  writeFileSync(join(root, 'cache/deep/deeper/blob'), 'x');
  return root;
}

function paths(entries: Iterable<WalkEntry<EntryStat>>): string[] {
  return [...entries].map((entry) => entry.path).sort();
}

/** An ignore list that records every path it was asked about. */
function watchedIgnore(list: IgnoreList): { ignore: IgnoreList; asked: string[] } {
  const asked: string[] = [];
  const ignore = {
    isIgnored: (path: string) => (asked.push(path), list.isIgnored(path)),
    hasIgnoredBelow: (path: string) => (asked.push(path), list.hasIgnoredBelow(path)),
  } as unknown as IgnoreList;
  return { ignore, asked };
}

test('walk yields every entry once, parents first, symlinks as links with their targets', () => {
  const root = makeRoot();
  try {
    const entries = [...walk({ rootDir: root, ignore: IgnoreList.of([]) })];
    assert.deepEqual(paths(entries), [
      '/', '/cache', '/cache/deep', '/cache/deep/deeper', '/cache/deep/deeper/blob', '/etc', '/etc/conf.d', '/etc/conf.d/a',
      '/etc/passwd', '/lib', '/proc', '/proc/1', '/proc/1/status', '/usr', '/usr/etc-link', '/usr/lib', '/usr/lib/libc.so',
    ]);
    const seen = new Set<string>();
    for (const entry of entries) {
      if (entry.path !== '/') assert.ok(seen.has(entry.path.slice(0, entry.path.lastIndexOf('/')) || '/'), `parent of ${entry.path} first`);
      seen.add(entry.path);
    }
    const byPath = new Map(entries.map((entry) => [entry.path, entry]));
    assert.equal(byPath.get('/lib')?.linkTarget, '/usr/lib');
    assert.equal(byPath.get('/usr/etc-link')?.linkTarget, '../etc');
    assert.equal(byPath.get('/etc/passwd')?.fsPath, join(root, 'etc/passwd'));
    assert.equal(byPath.get('/etc/passwd')?.linkTarget, undefined);
    assert.equal(byPath.get('/etc/passwd')?.stats.size, 26);
    assert.equal(byPath.get('/')?.fsPath, root);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('walk never enters an ignored subtree and asks the ignore list only where it can match', () => {
  const root = makeRoot();
  try {
    const { ignore, asked } = watchedIgnore(IgnoreList.of(['/proc', '/etc/passwd']));
    const found = paths(walk({ rootDir: root, ignore }));
    assert.ok(!found.some((path) => path === '/proc' || path.startsWith('/proc/')));
    assert.ok(!found.includes('/etc/passwd'));
    assert.ok(found.includes('/etc/conf.d/a'));
    // Nothing below /proc was listed, and nothing below /usr or /cache needed a check.
    assert.ok(!asked.some((path) => path.startsWith('/proc/')), asked.join(' '));
    assert.ok(!asked.some((path) => path.startsWith('/usr/') || path.startsWith('/cache/')), asked.join(' '));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('walk from a subtree, and past excluded paths', () => {
  const root = makeRoot();
  try {
    assert.deepEqual(paths(walk({ rootDir: root, ignore: IgnoreList.of([]), from: '/cache/deep' })), [
      '/cache/deep', '/cache/deep/deeper', '/cache/deep/deeper/blob',
    ]);
    assert.deepEqual(paths(walk({ rootDir: root, ignore: IgnoreList.of([]), from: '/etc/passwd' })), ['/etc/passwd']);
    assert.deepEqual(paths(walk({ rootDir: root, ignore: IgnoreList.of([]), from: '/missing' })), []);
    assert.deepEqual(paths(walk({ rootDir: root, ignore: IgnoreList.of(['/proc']), from: '/proc/1' })), []);
    const rest = paths(walk({ rootDir: root, ignore: IgnoreList.of([]), exclude: new Set(['/usr', '/cache/deep']) }));
    assert.ok(!rest.some((path) => path.startsWith('/usr') || path.startsWith('/cache/deep')));
    assert.ok(rest.includes('/cache') && rest.includes('/etc/passwd'));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('walk reports a name that is not UTF-8 instead of losing it silently', () => {
  const root = makeRoot();
  try {
    writeFileSync(Buffer.concat([Buffer.from(root + '/etc/'), Buffer.from([0x66, 0xff, 0x6f])]), 'latin');
    const skips: Array<[string, WalkSkip]> = [];
    const found = paths(walk({ rootDir: root, ignore: IgnoreList.of([]), onSkip: (path, reason) => skips.push([path, reason]) }));
    assert.deepEqual(skips, [['/etc/f\uFFFDo', 'undecodable-name']]);
    assert.ok(!found.includes('/etc/f\uFFFDo'));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('walk leaves out another filesystem mounted inside the root, unless told to include it', (t) => {
  const root = makeRoot();
  const mountPoint = join(root, 'cache/deep');
  try {
    try {
      execFileSync('mount', ['-t', 'tmpfs', 'kiln-test', mountPoint], { stdio: 'ignore' });
    } catch {
      t.skip('cannot mount a tmpfs here');
      return;
    }
    writeFileSync(join(mountPoint, 'secret'), 'x');
    const skips: Array<[string, WalkSkip]> = [];
    const found = paths(walk({ rootDir: root, ignore: IgnoreList.of([]), onSkip: (path, reason) => skips.push([path, reason]) }));
    assert.ok(!found.some((path) => path.startsWith('/cache/deep')), found.join(' '));
    assert.deepEqual(skips, [['/cache/deep', 'other-filesystem']]);
    const all = paths(walk({ rootDir: root, ignore: IgnoreList.of([]), mounts: 'include' }));
    assert.ok(all.includes('/cache/deep/secret'));
  } finally {
    try {
      execFileSync('umount', [mountPoint], { stdio: 'ignore' });
    } catch {
      // not mounted
    }
    rmSync(root, { recursive: true, force: true });
  }
});

test('a parallel walk by plan finds exactly what the single-threaded walk finds', async () => {
  const root = makeRoot();
  for (let pkg = 0; pkg < 40; pkg++) {
    mkdirSync(join(root, `app/node_modules/p${pkg}/lib`), { recursive: true });
    for (let i = 0; i < 60; i++) writeFileSync(join(root, `app/node_modules/p${pkg}/lib/f${i}.js`), `${pkg}/${i}`);
    symlinkSync(`../p${pkg}/lib/f0.js`, join(root, `app/node_modules/p${pkg}/bin`));
  }
  const pool = new WalkerPool(2);
  try {
    const ignore = IgnoreList.of(['/proc']);
    const index = new FileIndex();
    const single = [...walk({ rootDir: root, ignore })];
    for (const entry of single) index.set(entry.path, recordFromStats(lstatSync(entry.fsPath), entry.linkTarget));
    // Changes after planning: a new subtree, a planned root gone, a planned root now a symlink.
    mkdirSync(join(root, 'app/node_modules/fresh/x'), { recursive: true });
    writeFileSync(join(root, 'app/node_modules/fresh/x/y'), 'y');
    const plan = planWalk(index, ignore, 2, 4);
    assert.ok(plan.tasks.length > 1, 'the tree is split');
    rmSync(join(root, 'app/node_modules/p3'), { recursive: true });
    rmSync(join(root, 'app/node_modules/p4'), { recursive: true });
    symlinkSync('/usr', join(root, 'app/node_modules/p4'));

    const expected = [...walk({ rootDir: root, ignore })];
    const found: WalkEntry<EntryStat>[] = [];
    const running = pool.run(plan, { rootDir: root }, (batch) => found.push(...entriesOf(batch, root)));
    found.push(...walk({ rootDir: root, ignore, exclude: plan.assigned }));
    await running;
    assert.deepEqual(paths(found), paths(expected));
    assert.equal(new Set(paths(found)).size, found.length, 'no entry twice');
    const want = new Map(expected.map((entry) => [entry.path, entry]));
    for (const entry of found) {
      const other = want.get(entry.path)!;
      assert.equal(entry.linkTarget, other.linkTarget, entry.path);
      assert.equal(entry.fsPath, other.fsPath, entry.path);
      for (const field of ['mode', 'uid', 'gid', 'size', 'mtimeMs', 'ctimeMs', 'ino', 'dev', 'nlink', 'rdev'] as const) {
        assert.equal(entry.stats[field], other.stats[field], `${entry.path} ${field}`);
      }
    }
  } finally {
    await pool.close();
    rmSync(root, { recursive: true, force: true });
  }
});

test('a failing walker thread fails the walk with an IO error', async () => {
  const root = makeRoot();
  const pool = new WalkerPool(1);
  try {
    const plan = { tasks: [['/usr']], assigned: new Set(['/usr']), plannedFor: 0 };
    // A name too long for the filesystem is an error the walk cannot skip.
    const deep = { tasks: [['/usr/' + 'x'.repeat(300)]], assigned: new Set(['/usr/' + 'x'.repeat(300)]), plannedFor: 0 };
    await pool.run(plan, { rootDir: root }, () => {});
    await assert.rejects(pool.run(deep, { rootDir: root }, () => {}), (err: Error & { code?: string }) => err.code === 'IO');
    // The pool is usable again afterwards.
    let count = 0;
    await pool.run(plan, { rootDir: root }, (batch) => (count += batch.names.length));
    assert.equal(count, 4);
  } finally {
    await pool.close();
    rmSync(root, { recursive: true, force: true });
  }
});

test('a planned root whose parent became a symlink is never looked up through it', async () => {
  const root = makeRoot();
  const pool = new WalkerPool(1);
  try {
    mkdirSync(join(root, 'opt'));
    // /opt/usr is a symlink to the machine's /usr: /opt/usr/lib must not lead there.
    symlinkSync('/usr', join(root, 'opt/usr'));
    const plan = { tasks: [['/opt/usr/lib']], assigned: new Set(['/opt/usr/lib']), plannedFor: 0 };
    const found: string[] = [];
    await pool.run(plan, { rootDir: root }, (batch) => found.push(...entriesOf(batch, root).map((entry) => entry.path)));
    assert.deepEqual(found, []);
  } finally {
    await pool.close();
    rmSync(root, { recursive: true, force: true });
  }
});
