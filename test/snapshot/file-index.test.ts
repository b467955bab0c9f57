import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FileIndex, recordFromStats, type FileRecord, type StatFields } from '../../src/snapshot/file-index.js';

function stats(overrides: Partial<StatFields> = {}): StatFields {
  return { mode: 0o100644, uid: 1000, gid: 100, size: 12, mtimeMs: 1_700_000_000_123.456, ctimeMs: 1_700_000_001_000.25, ino: 2 ** 40 + 7, dev: 2049, nlink: 1, rdev: 0, ...overrides };
}

const FILE = recordFromStats(stats(), undefined, '0123456789abcdef');
const DIR = recordFromStats(stats({ mode: 0o042755, size: 4096, nlink: 3 }));
const LINK = recordFromStats(stats({ mode: 0o120777, size: 9 }), '../target');
const DEVICE = recordFromStats(stats({ mode: 0o020620, rdev: (259 << 8) | 7 }));

test('records come back exactly as they were stored, whatever their kind', () => {
  const index = new FileIndex();
  const records: [string, FileRecord][] = [
    ['/', DIR],
    ['/etc', DIR],
    ['/etc/passwd', FILE],
    ['/etc/localtime', LINK],
    ['/dev/tty1', DEVICE],
    ['/srv/fifo', recordFromStats(stats({ mode: 0o010600 }))],
    ['/srv/suid', recordFromStats(stats({ mode: 0o104755 }))],
  ];
  for (const [path, record] of records) index.set(path, record);
  assert.equal(index.size, records.length);
  for (const [path, record] of records) assert.deepEqual(index.get(path), record, path);
  assert.deepEqual(new Map(index.entries()), new Map(records));
  assert.deepEqual([...index.paths()].sort(), records.map(([path]) => path).sort());
  assert.equal(index.get('/etc/missing'), undefined);
  assert.equal(index.has('/etc'), true);
  assert.equal(index.has('/et'), false);
});

test('setStats stores what recordFromStats would make, device numbers only for devices', () => {
  const index = new FileIndex();
  index.setStats('/a/file', stats({ rdev: 5 }), undefined, 'ffffffffffffffff');
  index.setStats('/a/link', stats({ mode: 0o120777 }), 'there');
  index.setStatsIn('/a', 'block', stats({ mode: 0o060660, rdev: 2049 }));
  assert.deepEqual(index.get('/a/file'), recordFromStats(stats({ rdev: 5 }), undefined, 'ffffffffffffffff'));
  assert.deepEqual(index.get('/a/link'), recordFromStats(stats({ mode: 0o120777 }), 'there'));
  assert.deepEqual(index.get('/a/block'), recordFromStats(stats({ mode: 0o060660, rdev: 2049 })));
  assert.equal(index.get('/a/file')!.rdev, undefined);
});

test('a view reads in place: it follows later writes and moves with the next view', () => {
  const index = new FileIndex();
  index.set('/one', FILE);
  index.set('/dir/two', LINK);
  const view = index.view('/one')!;
  assert.equal(view.kind, 'file');
  assert.equal(view.contentHash, '0123456789abcdef');
  index.set('/one', { ...FILE, size: 99, contentHash: undefined });
  assert.equal(view.size, 99);
  assert.equal(view.contentHash, undefined);
  assert.equal(index.viewIn('/dir', 'two')!.linkTarget, '../target');
  assert.equal(view.kind, 'symlink', 'one view object, moved to the last path asked for');
  assert.equal(index.view('/nothing'), undefined);
  assert.equal(index.viewIn('/dir', 'nothing'), undefined);
});

test('content hashes are kept for regular files only', () => {
  const index = new FileIndex();
  index.set('/file', { ...FILE, contentHash: undefined });
  index.set('/dir', DIR);
  assert.equal(index.setContentHash('/file', 'aaaaaaaaaaaaaaaa'), true);
  assert.equal(index.setContentHash('/dir', 'bbbbbbbbbbbbbbbb'), false);
  assert.equal(index.setContentHash('/missing', 'cccccccccccccccc'), false);
  assert.equal(index.get('/file')!.contentHash, 'aaaaaaaaaaaaaaaa');
  assert.equal(index.get('/dir')!.contentHash, undefined);
  assert.equal(index.has('/missing'), false);
});

test('deletes free their slots for new paths, and a tree goes with its root', () => {
  const index = new FileIndex();
  for (let i = 0; i < 5000; i++) index.set(`/app/d${i % 50}/f${i}`, { ...FILE, ino: i });
  index.set('/app', DIR);
  index.set('/apple', FILE);
  index.set('/app/d3', DIR);
  assert.equal(index.size, 5003);
  index.delete('/app/d0/f0');
  index.delete('/app/d0/f0');
  assert.equal(index.size, 5002);
  index.deleteTree('/app/d3');
  assert.equal(index.has('/app/d3'), false);
  assert.equal(index.has('/app/d3/f3'), false);
  assert.equal(index.has('/app/d33/f33'), true, 'a sibling whose name starts the same stays');
  assert.equal(index.size, 5002 - 101);
  for (let i = 0; i < 200; i++) index.set(`/new/f${i}`, { ...LINK, ino: i });
  assert.equal(index.size, 5002 - 101 + 200);
  assert.deepEqual(index.get('/new/f7'), { ...LINK, ino: 7 });
  assert.deepEqual(index.get('/app/d1/f4951'), { ...FILE, ino: 4951 });
  index.deleteTree('/app');
  assert.deepEqual([...index.paths()].sort(), ['/apple', ...Array.from({ length: 200 }, (_, i) => `/new/f${i}`)].sort());
  index.deleteTree('/');
  assert.equal(index.size, 0);
});

test('forEach sees every path once and lets the visitor delete the path it is given', () => {
  const index = new FileIndex();
  for (let i = 0; i < 300; i++) index.set(`/d${i % 7}/f${i}`, { ...FILE, size: i });
  index.set('/', DIR);
  const seen = new Map<string, number>();
  index.forEach((path, record) => {
    seen.set(path, record.size);
    if (record.size % 2 === 1) index.delete(path);
  });
  assert.equal(seen.size, 301);
  assert.equal(seen.get('/d3/f10'), 10);
  assert.equal(index.size, 301 - 150);
  assert.equal(index.has('/d3/f10'), true);
  assert.equal(index.has('/d4/f11'), false);
});

test('pathsUnder lists exactly the paths at or below the given roots', () => {
  const index = new FileIndex();
  for (const path of ['/', '/app', '/app/a', '/app/a/x', '/app/b', '/apple', '/apple/y', '/etc', '/etc/passwd', '/srv/www/index.html']) index.set(path, path.includes('.') || path.endsWith('x') || path.endsWith('y') || path.endsWith('passwd') ? FILE : DIR);
  const under = (roots: string[]) => [...index.pathsUnder(roots)].sort();
  assert.deepEqual(under(['/app/a', '/etc']), ['/app/a', '/app/a/x', '/etc', '/etc/passwd']);
  assert.deepEqual(under(['/app']), ['/app', '/app/a', '/app/a/x', '/app/b'], 'a sibling whose name starts the same is not below');
  assert.deepEqual(under(['/srv', '/missing']), ['/srv/www/index.html'], 'a root the index lacks still has what is below it');
  assert.deepEqual(under(['/']), [...index.paths()].sort());
  assert.deepEqual(under([]), []);
});
