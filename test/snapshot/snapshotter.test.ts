import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  chownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import xxhash from 'xxhash-wasm';
import { FileIndex, type ChangeSet } from '../../src/snapshot/file-index.js';
import { ContentHasher, recordOfEntry, withContentHash, type SnapshotMode } from '../../src/snapshot/hasher.js';
import { IgnoreList } from '../../src/snapshot/ignore.js';
import { Snapshotter, type SnapshotterOptions } from '../../src/snapshot/snapshotter.js';
import { walk } from '../../src/snapshot/walk.js';
import { createLogger, type Logger } from '../../src/util/log.js';

const MODES: readonly SnapshotMode[] = ['full', 'redo', 'time'];
const IGNORED = ['/ign', '/proc'];
/** A whole second, so that putting an mtime back is exact. */
const OLD_TIME = 1_700_000_000;
const isRoot = process.getuid?.() === 0;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The base image every scenario starts from. */
function buildTree(root: string): void {
  const file = (path: string, content: string) => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  };
  file('etc/passwd', 'root:x:0:0::/root:/bin/sh\n');
  file('etc/hosts', '127.0.0.1 localhost\n');
  file('app/main.js', 'console.log(1);\n');
  utimesSync(join(root, 'app/main.js'), OLD_TIME, OLD_TIME);
  file('app/lib/util.js', 'exports.u = 1;\n');
  file('app/lib/deep/x.js', 'exports.x = 1;\n');
  file('data/file', 'data');
  chmodSync(join(root, 'data/file'), 0o755);
  file('ign/secret', 'token');
  mkdirSync(join(root, 'proc'));
}

/** The index the extractor leaves: every entry with content hashes. */
async function extractedIndex(root: string, ignore: IgnoreList): Promise<FileIndex> {
  const hasher = await ContentHasher.create();
  const index = new FileIndex();
  for (const entry of walk({ rootDir: root, ignore })) {
    const record = recordOfEntry(entry);
    index.set(entry.path, record.kind === 'file' ? withContentHash(record, hasher.hashFile(entry.fsPath)) : record);
  }
  return index;
}

interface Harness {
  root: string;
  snap: Snapshotter;
  at(path: string): string;
  done(): Promise<void>;
}

async function start(mode: SnapshotMode, options: { index?: 'extracted' | 'walked' } & Partial<SnapshotterOptions> = {}): Promise<Harness> {
  const root = mkdtempSync(join(tmpdir(), 'kiln-snapshot-'));
  buildTree(root);
  const ignore = IgnoreList.of(IGNORED);
  await sleep(25); // the base image is older than the racy window, as it is in a build
  const snap = new Snapshotter({ rootDir: root, ignore, mode, threads: 1, ...options });
  await snap.init(options.index === 'walked' ? undefined : await extractedIndex(root, ignore));
  await sleep(15); // changes land on a later tick of the filesystem clock
  return {
    root,
    snap,
    at: (path) => join(root, path),
    done: async () => {
      await snap.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Per mode: what `changed` must hold. */
type Expected = Record<SnapshotMode, string[]>;

function scenario(name: string, change: (h: Harness) => void, changed: Expected, deleted: string[] = [], check?: (h: Harness, mode: SnapshotMode) => void) {
  for (const mode of MODES) {
    test(`${mode}: ${name}`, async () => {
      const h = await start(mode);
      try {
        change(h);
        const result = await h.snap.scan();
        assert.deepEqual(result, { changed: changed[mode], deleted });
        check?.(h, mode);
        // The index now holds the new state: a second scan finds nothing.
        await sleep(25);
        assert.deepEqual(await h.snap.scan(), { changed: [], deleted: [] });
      } finally {
        await h.done();
      }
    });
  }
}

const longName = 'n'.repeat(200);

scenario('a new file', (h) => writeFileSync(h.at('app/new.js'), 'new'), {
  full: ['/app/new.js'],
  redo: ['/app', '/app/new.js'],
  time: ['/app', '/app/new.js'],
});

scenario(
  'an edit that keeps size and mtime (full sees the ctime; redo and time miss it, as documented)',
  (h) => {
    writeFileSync(h.at('app/main.js'), 'console.log(2);\n');
    utimesSync(h.at('app/main.js'), OLD_TIME, OLD_TIME);
  },
  { full: ['/app/main.js'], redo: [], time: [] },
);

scenario('chmod (time misses it, as documented)', (h) => chmodSync(h.at('data/file'), 0o600), {
  full: ['/data/file'],
  redo: ['/data/file'],
  time: [],
});

if (isRoot) {
  scenario('chown (time misses it, as documented)', (h) => chownSync(h.at('data/file'), 1000, 1000), {
    full: ['/data/file'],
    redo: ['/data/file'],
    time: [],
  });
}

scenario(
  'a deleted file',
  (h) => rmSync(h.at('app/lib/util.js')),
  { full: [], redo: ['/app/lib'], time: ['/app/lib'] },
  ['/app/lib/util.js'],
);

scenario(
  'a deleted directory: only the directory is reported',
  (h) => rmSync(h.at('app/lib'), { recursive: true }),
  { full: [], redo: ['/app'], time: ['/app'] },
  ['/app/lib'],
  (h) => assert.deepEqual([...h.snap.index.paths()].filter((path) => path.startsWith('/app/lib')), []),
);

scenario(
  'a directory replaced by a file: changed, its old children gone without whiteouts',
  (h) => {
    rmSync(h.at('app/lib'), { recursive: true });
    writeFileSync(h.at('app/lib'), 'now a file');
  },
  { full: ['/app/lib'], redo: ['/app', '/app/lib'], time: ['/app', '/app/lib'] },
  [],
  (h) => {
    assert.equal(h.snap.index.get('/app/lib')?.kind, 'file');
    assert.deepEqual([...h.snap.index.paths()].filter((path) => path.startsWith('/app/lib/')), []);
  },
);

scenario(
  'a file replaced by a symlink',
  (h) => {
    rmSync(h.at('etc/hosts'));
    symlinkSync('/run/hosts', h.at('etc/hosts'));
  },
  { full: ['/etc/hosts'], redo: ['/etc', '/etc/hosts'], time: ['/etc', '/etc/hosts'] },
  [],
  (h) => assert.equal(h.snap.index.get('/etc/hosts')?.linkTarget, '/run/hosts'),
);

scenario(
  'a new hardlink: the link is new, the file it shares is not changed',
  (h) => linkSync(h.at('data/file'), h.at('data/hard')),
  { full: ['/data/hard'], redo: ['/data', '/data/hard'], time: ['/data', '/data/hard'] },
  [],
  (h) => assert.equal(h.snap.index.get('/data/hard')?.ino, h.snap.index.get('/data/file')?.ino),
);

scenario(
  'a new fifo',
  (h) => execFileSync('mkfifo', [h.at('data/pipe')]),
  { full: ['/data/pipe'], redo: ['/data', '/data/pipe'], time: ['/data', '/data/pipe'] },
  [],
  (h) => assert.equal(h.snap.index.get('/data/pipe')?.kind, 'fifo'),
);

scenario(
  'setuid: a new setuid file, and setuid added to a file (time misses the chmod, as documented)',
  (h) => {
    writeFileSync(h.at('data/suid'), 'x');
    chmodSync(h.at('data/suid'), 0o4755);
    chmodSync(h.at('data/file'), 0o4755);
  },
  { full: ['/data/file', '/data/suid'], redo: ['/data', '/data/file', '/data/suid'], time: ['/data', '/data/suid'] },
  [],
  (h) => assert.equal(h.snap.index.get('/data/suid')?.mode, 0o4755),
);

scenario('a 200-character name', (h) => writeFileSync(h.at(`app/${longName}`), 'x'), {
  full: [`/app/${longName}`],
  redo: ['/app', `/app/${longName}`],
  time: ['/app', `/app/${longName}`],
});

scenario('touch without an edit (a change for redo and time only)', (h) => utimesSync(h.at('etc/passwd'), new Date(), new Date(Date.now() + 60_000)), {
  full: [],
  redo: ['/etc/passwd'],
  time: ['/etc/passwd'],
});

scenario(
  'a file deleted and written again with the same content and mode',
  (h) => {
    rmSync(h.at('etc/passwd'));
    writeFileSync(h.at('etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
  },
  { full: [], redo: ['/etc', '/etc/passwd'], time: ['/etc', '/etc/passwd'] },
);

scenario(
  'ignored paths are never reported, whatever happens to them',
  (h) => {
    writeFileSync(h.at('ign/new'), 'x');
    appendFileSync(h.at('ign/secret'), 'more');
    mkdirSync(h.at('ign/sub'));
    rmSync(h.at('ign/new'));
    writeFileSync(h.at('proc/1'), 'x');
  },
  { full: [], redo: [], time: [] },
  [],
  (h) => assert.deepEqual([...h.snap.index.paths()].filter((path) => path.startsWith('/ign') || path.startsWith('/proc')), []),
);

for (const mode of MODES) {
  test(`${mode}: scanPaths looks only at the given paths; the rest waits for a full scan`, async () => {
    const h = await start(mode);
    try {
      appendFileSync(h.at('app/main.js'), '// more\n');
      appendFileSync(h.at('etc/passwd'), 'user:x:1000:1000::/home/user:/bin/sh\n');
      assert.deepEqual(await h.snap.scanPaths(['/app/main.js']), { changed: ['/app/main.js'], deleted: [] });
      assert.deepEqual(await h.snap.scan(), { changed: ['/etc/passwd'], deleted: [] });
    } finally {
      await h.done();
    }
  });

  test(`${mode}: scanPaths takes in what COPY wrote: new directories, their parents, deletions inside`, async () => {
    const h = await start(mode);
    try {
      mkdirSync(h.at('srv/www/css'), { recursive: true });
      writeFileSync(h.at('srv/www/index.html'), '<html>');
      writeFileSync(h.at('srv/www/css/a.css'), 'a{}');
      writeFileSync(h.at('app/elsewhere'), 'not copied');
      const parents = mode === 'full' ? [] : ['/'];
      assert.deepEqual(await h.snap.scanPaths(['/srv/www', '/srv/www/index.html', 'srv/www/css/']), {
        changed: [...parents, '/srv', '/srv/www', '/srv/www/css', '/srv/www/css/a.css', '/srv/www/index.html'],
        deleted: [],
      });
      await sleep(15);
      rmSync(h.at('srv/www/css'), { recursive: true });
      writeFileSync(h.at('srv/www/index.html'), '<html><body>');
      assert.deepEqual(await h.snap.scanPaths(['/srv/www']), {
        changed: mode === 'full' ? ['/srv/www/index.html'] : ['/srv/www', '/srv/www/index.html'],
        deleted: ['/srv/www/css'],
      });
      assert.deepEqual(await h.snap.scanPaths(['/srv/missing', '/ign/secret']), { changed: [], deleted: [] });
      // The given path's parent went too: the top-most path gone is what a full scan would report.
      rmSync(h.at('srv'), { recursive: true });
      const gone = await h.snap.scanPaths(['/srv/www']);
      assert.deepEqual(gone.deleted, ['/srv']);
      assert.equal(h.snap.index.has('/srv/www/index.html'), false);
    } finally {
      await h.done();
    }
  });

  test(`${mode}: scanPaths looks at entries alone, their subtrees left for later`, async () => {
    const h = await start(mode);
    try {
      await sleep(15);
      writeFileSync(h.at('app/new.js'), 'new');
      appendFileSync(h.at('app/lib/util.js'), '// not listed\n');
      rmSync(h.at('data/file'));
      // What a RUN on an overlay reports: the directory it wrote in and the new file as
      // entries, the deleted file as a subtree; a path inside a subtree is no entry of its own.
      const result = await h.snap.scanPaths(['/data/file', '/srv'], ['/app', '/app/new.js', '/data/file', '/srv/inside']);
      // Ancestors are looked at as ever: /data's times moved with the deletion.
      assert.deepEqual(result, { changed: mode === 'full' ? ['/app/new.js'] : ['/app', '/app/new.js', '/data'], deleted: ['/data/file'] });
      assert.deepEqual(await h.snap.scan(), { changed: ['/app/lib/util.js'], deleted: [] });
    } finally {
      await h.done();
    }
  });
}

test('scanPaths never follows a symlinked ancestor out of the root', async () => {
  const h = await start('full');
  try {
    // /opt is a symlink to the machine's /usr: /opt/lib must not be looked up there.
    symlinkSync('/usr', h.at('opt'));
    const result = await h.snap.scanPaths(['/opt/lib']);
    // The symlink itself is new and reported; nothing of the machine's /usr/lib is.
    assert.deepEqual(result, { changed: ['/opt'], deleted: [] });
    assert.equal(h.snap.index.has('/opt/lib'), false);
  } finally {
    await h.done();
  }
});

test('full: content hashes from the layer writer make a later touch a non-change', async () => {
  const h = await start('full');
  try {
    writeFileSync(h.at('app/a.js'), 'a');
    writeFileSync(h.at('app/b.js'), 'b');
    assert.deepEqual((await h.snap.scan()).changed, ['/app/a.js', '/app/b.js']);
    const hasher = await ContentHasher.create();
    const api = await xxhash();
    h.snap.recordContent(new Map([['/app/a.js', api.h64Raw(readFileSync(h.at('app/a.js')))]]));
    assert.equal(h.snap.index.get('/app/a.js')?.contentHash, hasher.hashFile(h.at('app/a.js')));
    await sleep(25);
    for (const name of ['a.js', 'b.js']) utimesSync(h.at(`app/${name}`), new Date(), new Date(Date.now() + 60_000));
    // b.js has no content hash to compare with: moved metadata counts as a change.
    assert.deepEqual(await h.snap.scan(), { changed: ['/app/b.js'], deleted: [] });
  } finally {
    await h.done();
  }
});

test('full with an index built by walking (no content hashes): a touch counts as a change', async () => {
  const h = await start('full', { index: 'walked' });
  try {
    assert.equal(h.snap.index.get('/etc/passwd')?.contentHash, undefined);
    assert.equal(h.snap.index.has('/ign/secret'), false);
    utimesSync(h.at('etc/passwd'), new Date(), new Date(Date.now() + 60_000));
    assert.deepEqual(await h.snap.scan(), { changed: ['/etc/passwd'], deleted: [] });
  } finally {
    await h.done();
  }
});

test('full: a record taken in the same clock tick as a write is checked by content', async () => {
  const root = mkdtempSync(join(tmpdir(), 'kiln-snapshot-'));
  try {
    buildTree(root);
    const ignore = IgnoreList.of(IGNORED);
    const index = await extractedIndex(root, ignore);
    // /etc/passwd was rewritten in the tick its record was taken: same lstat, other content.
    chmodSync(join(root, 'etc/passwd'), 0o644);
    const seen = [...walk({ rootDir: root, ignore, from: '/etc/passwd' })][0]!;
    index.set('/etc/passwd', recordOfEntry(seen, '0123456789abcdef'));
    const snap = new Snapshotter({ rootDir: root, ignore, mode: 'full', threads: 1 });
    await snap.init(index);
    assert.deepEqual(await snap.scan(), { changed: ['/etc/passwd'], deleted: [] });
    await sleep(25);
    assert.deepEqual(await snap.scan(), { changed: [], deleted: [] });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('scan before init is an internal error', async () => {
  const snap = new Snapshotter({ rootDir: tmpdir(), ignore: IgnoreList.of([]), mode: 'full' });
  await assert.rejects(snap.scan(), (err: Error & { code?: string }) => err.code === 'INTERNAL');
});

test('a filesystem mounted into the root is neither snapshotted nor taken for deleted', async (t) => {
  for (const threads of [1, 2]) {
    const h = await start('full', { threads, parallelFrom: 0 });
    const mountPoint = h.at('app/lib');
    try {
      try {
        execFileSync('mount', ['-t', 'tmpfs', 'kiln-test', mountPoint], { stdio: 'ignore' });
      } catch {
        t.skip('cannot mount a tmpfs here');
        return;
      }
      writeFileSync(join(mountPoint, 'cache'), 'x');
      assert.deepEqual(await h.snap.scan(), { changed: [], deleted: [] }, `threads ${threads}`);
      assert.ok(h.snap.index.has('/app/lib/util.js'));
      execFileSync('umount', [mountPoint]);
      assert.deepEqual(await h.snap.scan(), { changed: [], deleted: [] }, `threads ${threads}`);
    } finally {
      try {
        execFileSync('umount', [mountPoint], { stdio: 'ignore' });
      } catch {
        // not mounted any more
      }
      await h.done();
    }
  }
});

/**
 * The same scripted step on a bigger tree, walked on one thread and on several: split by a
 * plan from the index (parallelFrom 0), or with the new directories handed to the walker
 * threads as the main thread finds them (no plan). Also returns how many threads each scan used.
 */
async function parallelScenario(threads: number, parallelFrom: number): Promise<{ results: ChangeSet[]; threads: unknown[] }> {
  const { logger, records } = capturingLogger();
  const h = await start('full', { threads, parallelFrom, logger });
  try {
    for (let pkg = 0; pkg < 40; pkg++) {
      mkdirSync(h.at(`app/node_modules/p${pkg}/lib`), { recursive: true });
      for (let i = 0; i < 50; i++) writeFileSync(h.at(`app/node_modules/p${pkg}/lib/f${i}.js`), `${pkg}/${i}`);
    }
    const results = [await h.snap.scan()];
    await sleep(25);
    rmSync(h.at('app/node_modules/p3'), { recursive: true });
    rmSync(h.at('app/node_modules/p4/lib'), { recursive: true });
    writeFileSync(h.at('app/node_modules/p4/lib'), 'file now');
    appendFileSync(h.at('app/node_modules/p5/lib/f7.js'), '!');
    chmodSync(h.at('app/node_modules/p6/lib/f1.js'), 0o600);
    writeFileSync(h.at('ign/more'), 'x');
    mkdirSync(h.at('app/node_modules/p7/lib/new'));
    results.push(await h.snap.scan());
    await sleep(10);
    return { results, threads: records.filter((record) => record.msg === 'snapshot scan done').map((record) => record.threads) };
  } finally {
    await h.done();
  }
}

test('a scan on several threads reports exactly what a single-threaded scan reports', async () => {
  const single = await parallelScenario(1, 0);
  const planned = await parallelScenario(2, 0);
  const handedOff = await parallelScenario(2, Infinity);
  assert.equal(single.results[0]!.changed.length, 40 * 52 + 1);
  assert.deepEqual(planned.results, single.results);
  assert.deepEqual(handedOff.results, single.results);
  assert.deepEqual(single.threads, [1, 1]);
  assert.deepEqual(planned.threads, [2, 2]);
  // 40 new directories without subdirectories: more than the main thread keeps for itself.
  assert.deepEqual(handedOff.threads, [2, 1]);
  assert.deepEqual(single.results[1], {
    changed: ['/app/node_modules/p4/lib', '/app/node_modules/p5/lib/f7.js', '/app/node_modules/p6/lib/f1.js', '/app/node_modules/p7/lib/new'],
    deleted: ['/app/node_modules/p3'],
  });
});

test('the root directory itself is part of the index and of redo scans', async () => {
  const h = await start('redo');
  try {
    assert.equal(h.snap.index.get('/')?.kind, 'dir');
    chmodSync(h.root, 0o751);
    assert.deepEqual(await h.snap.scan(), { changed: ['/'], deleted: [] });
    assert.equal(h.snap.index.get('/')?.mode, lstatSync(h.root).mode & 0o7777);
  } finally {
    await h.done();
  }
});

/** A logger whose debug records the test can read. */
function capturingLogger(): { logger: Logger; records: Array<Record<string, unknown>> } {
  const records: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line.trim() !== '') records.push(JSON.parse(line));
      done();
    },
  });
  return { logger: createLogger({ level: 'debug', format: 'json', destination }), records };
}

test('deletions are found from the directories that moved, without a second walk', async () => {
  const { logger, records } = capturingLogger();
  const h = await start('full', { logger });
  try {
    assert.deepEqual(await h.snap.scan(), { changed: [], deleted: [] });
    rmSync(h.at('app/lib/deep'), { recursive: true });
    rmSync(h.at('etc/hosts'));
    assert.deepEqual(await h.snap.scan(), { changed: [], deleted: ['/app/lib/deep', '/etc/hosts'] });
    await sleep(10);
    const scans = records.filter((record) => record.msg === 'snapshot scan done').map((record) => record.deletions);
    assert.deepEqual(scans, ['none', 'moved-dirs']);
  } finally {
    await h.done();
  }
});

test('a known path gone from a directory whose times did not move is still found, by walking again', async () => {
  const { logger, records } = capturingLogger();
  const root = mkdtempSync(join(tmpdir(), 'kiln-snapshot-'));
  try {
    buildTree(root);
    const ignore = IgnoreList.of(IGNORED);
    const index = await extractedIndex(root, ignore);
    // An index that knows a path the directory never listed (as after a clock step back).
    index.set('/etc/ghost', { ...index.get('/etc/passwd')!, ino: 1 });
    index.set('/etc/ghost-dir', { ...index.get('/etc')!, ino: 2 });
    index.set('/etc/ghost-dir/child', { ...index.get('/etc/passwd')!, ino: 3 });
    await sleep(25);
    const snap = new Snapshotter({ rootDir: root, ignore, mode: 'full', threads: 1, logger });
    await snap.init(index);
    assert.deepEqual(await snap.scan(), { changed: [], deleted: ['/etc/ghost', '/etc/ghost-dir'] });
    assert.equal(snap.index.has('/etc/ghost-dir/child'), false);
    await sleep(10);
    assert.deepEqual(records.filter((record) => record.msg === 'snapshot scan done').map((record) => record.deletions), ['rewalked']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('ignored paths in an adopted index are dropped, never reported', async () => {
  const root = mkdtempSync(join(tmpdir(), 'kiln-snapshot-'));
  try {
    buildTree(root);
    const index = await extractedIndex(root, IgnoreList.of([]));
    assert.ok(index.has('/ign/secret'));
    const snap = new Snapshotter({ rootDir: root, ignore: IgnoreList.of(IGNORED), mode: 'redo', threads: 1 });
    await snap.init(index);
    assert.equal(snap.index.has('/ign/secret'), false);
    assert.equal(snap.index.has('/ign'), false);
    rmSync(join(root, 'ign'), { recursive: true });
    const result = await snap.scan();
    assert.deepEqual(result.deleted, []);
    assert.ok(!result.changed.some((path) => path.startsWith('/ign')));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

/** What a brute-force comparison of two full walks says a full-mode scan must report. */
async function bruteForce(root: string, ignore: IgnoreList, before: Map<string, string>): Promise<{ state: Map<string, string>; expected: ChangeSet }> {
  const hasher = await ContentHasher.create();
  const state = new Map<string, string>();
  for (const entry of walk({ rootDir: root, ignore })) {
    const record = recordOfEntry(entry);
    const content = record.kind === 'file' ? hasher.hashFile(entry.fsPath) : '';
    state.set(entry.path, [record.kind, record.mode, record.uid, record.gid, record.linkTarget ?? '', content].join(':'));
  }
  const changed = [...state].filter(([path, key]) => before.get(path) !== key).map(([path]) => path);
  const deleted = [...before.keys()].filter((path) => {
    if (state.has(path)) return false;
    const parent = dirname(path);
    return state.get(parent)?.startsWith('dir:') === true;
  });
  return { state, expected: { changed: changed.sort(), deleted: deleted.sort() } };
}

/** A small deterministic random source, so a failure can be replayed. */
function random(seed: number): () => number {
  let x = seed;
  return () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
}

function randomStep(root: string, next: () => number): void {
  const pick = <T>(items: T[]): T => items[Math.floor(next() * items.length)]!;
  const all = [...walk({ rootDir: root, ignore: IgnoreList.of([]) })].filter((entry) => entry.path.startsWith('/app/') || entry.path.startsWith('/ign/'));
  const files = all.filter((entry) => entry.stats.isFile()).map((entry) => entry.fsPath);
  const dirs = all.filter((entry) => entry.stats.isDirectory()).map((entry) => entry.fsPath);
  for (let op = 0; op < 12; op++) {
    const dir = dirs.length > 0 ? pick(dirs) : join(root, 'app');
    const file = files.length > 0 ? pick(files) : undefined;
    try {
      switch (Math.floor(next() * 9)) {
        case 0:
          writeFileSync(join(dir, `f${Math.floor(next() * 1000)}`), String(next()));
          break;
        case 1:
          if (file) rmSync(file, { force: true });
          break;
        case 2:
          if (dir !== join(root, 'app')) rmSync(dir, { recursive: true, force: true });
          break;
        case 3:
          mkdirSync(join(dir, `d${Math.floor(next() * 1000)}/sub`), { recursive: true });
          writeFileSync(join(dir, `d${Math.floor(next() * 1000)}.txt`), 'x');
          break;
        case 4:
          if (file) appendFileSync(file, '+');
          break;
        case 5:
          if (file) chmodSync(file, pick([0o600, 0o644, 0o755, 0o4755]));
          break;
        case 6:
          if (file) utimesSync(file, new Date(), new Date(Date.now() + Math.floor(next() * 1e6)));
          break;
        case 7:
          if (dir !== join(root, 'app')) {
            rmSync(dir, { recursive: true, force: true });
            writeFileSync(dir, 'was a directory');
          }
          break;
        case 8:
          if (file) {
            rmSync(file, { force: true });
            symlinkSync(pick(['/etc/passwd', '../x', 'f1']), file);
          }
          break;
      }
    } catch {
      // An operation on something an earlier one removed: skip it.
    }
  }
}

for (const threads of [1, 2]) {
  test(`full, ${threads} thread(s): random steps report exactly what a brute-force diff of two walks finds`, async () => {
    const h = await start('full', { threads, parallelFrom: 0 });
    const ignore = IgnoreList.of(IGNORED);
    try {
      for (let pkg = 0; pkg < 8; pkg++) {
        mkdirSync(h.at(`app/p${pkg}/lib`), { recursive: true });
        for (let i = 0; i < 20; i++) writeFileSync(h.at(`app/p${pkg}/lib/f${i}`), `${pkg}.${i}`);
      }
      let { state } = await bruteForce(h.root, ignore, new Map());
      const first = await h.snap.scan();
      h.snap.recordContent(await hashesOf(h.root, first.changed));
      const next = random(42 + threads);
      for (let step = 0; step < 12; step++) {
        await sleep(15);
        randomStep(h.root, next);
        const truth = await bruteForce(h.root, ignore, state);
        state = truth.state;
        const result = await h.snap.scan();
        assert.deepEqual(result, truth.expected, `step ${step}`);
        // As the layer writer does: the content of what went into the layer is now known.
        h.snap.recordContent(await hashesOf(h.root, result.changed));
      }
    } finally {
      await h.done();
    }
  });
}

async function hashesOf(root: string, paths: readonly string[]): Promise<Map<string, string>> {
  const hasher = await ContentHasher.create();
  const hashes = new Map<string, string>();
  for (const path of paths) if (lstatSync(join(root, path)).isFile()) hashes.set(path, hasher.hashFile(join(root, path)));
  return hashes;
}
