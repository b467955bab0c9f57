import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, linkSync, lstatSync, lutimesSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import xxhash from 'xxhash-wasm';
import { MediaType } from '../../src/oci/mediatypes.js';
import { writeLayer, type LayerWriteResult } from '../../src/snapshot/layer-writer.js';
import { FileIndex } from '../../src/snapshot/file-index.js';
import { FileReaders } from '../../src/snapshot/file-readers.js';
import { IgnoreList } from '../../src/snapshot/ignore.js';
import { planLayer } from '../../src/snapshot/tar-plan.js';
import { newTarWriteStats, tarChunks } from '../../src/snapshot/tar-writer.js';
import { walk as walkRoot } from '../../src/snapshot/walk.js';

const LONG_COMPONENT = 'n'.repeat(200);
const SPLIT_PATH = `/deep/${'d'.repeat(60)}/${'e'.repeat(60)}/file.txt`; // > 100 bytes, fits ustar's prefix
const LONG_TARGET = `../${'t'.repeat(150)}`;
const MTIME = 1_700_000_000.75; // fractional: the header keeps whole seconds
const BIG = 3 * 1024 * 1024 + 123; // above the small-file limit: streamed

function sh(script: string, cwd?: string): string {
  return execFileSync('sh', ['-c', script], { cwd, encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, TZ: 'UTC' } });
}

function tempDir(t: { after: (fn: () => void) => void }, label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `kiln-lw-${label}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface Tree {
  root: string;
  changed: string[];
  deleted: string[];
  hasDevice: boolean;
}

/** A root with every entry type; `changed` lists what a snapshot would report. */
function buildTree(root: string): Tree {
  const file = (path: string, content: string | Buffer, mode = 0o644) => {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), content);
    chmodSync(join(root, path), mode);
  };
  file('/etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n');
  file('/etc/shadow', 'root:*:19000::::::\n', 0o640);
  chownSync(join(root, '/etc/shadow'), 1234, 5678);
  file('/usr/bin/tool', '#!/bin/sh\necho tool\n', 0o4755);
  file('/usr/bin/group-tool', '#!/bin/sh\n', 0o2755);
  file('/usr/bin/a', 'same inode\n', 0o755);
  linkSync(join(root, '/usr/bin/a'), join(root, '/usr/bin/b'));
  file('/srv/outside', 'linked from a path not in the layer\n');
  linkSync(join(root, '/srv/outside'), join(root, '/srv/inside'));
  file('/usr/lib/libx.so.1', 'ELF');
  symlinkSync('libx.so.1', join(root, '/usr/lib/libx.so'));
  symlinkSync(LONG_TARGET, join(root, '/usr/lib/long-link'));
  mkdirSync(join(root, '/scratch'), { mode: 0o755 });
  chmodSync(join(root, '/scratch'), 0o1777);
  sh(`mkfifo ${join(root, '/scratch/pipe')}`);
  mkdirSync(join(root, '/devices'));
  const hasDevice = spawnSync('mknod', [join(root, '/devices/null'), 'c', '1', '3']).status === 0;
  if (hasDevice) {
    spawnSync('mknod', [join(root, '/devices/sda'), 'b', '8', '0']);
    spawnSync('mknod', [join(root, '/devices/big'), 'c', '259', '70000']); // minor needs the extended dev_t bits
  }
  file(`/long/${LONG_COMPONENT}`, 'long name\n');
  file(SPLIT_PATH, 'split name\n');
  file('/a/b/c/d/leaf', 'deep\n');
  file('/data/not-in-layer', 'children of a changed directory are not implied\n');
  file('/unicode/caf\u00e9', 'accent\n');
  file('/unicode/\u{1F600}', 'emoji\n');
  file('/unicode/\uFB01', 'ligature\n'); // U+FB01 sorts after the emoji in UTF-16, before it in UTF-8
  file('/big.bin', Buffer.alloc(BIG, 'kiln-layer-writer '));
  file('/empty', '');
  mkdirSync(join(root, '/var/cache'), { recursive: true });
  for (const path of walk(root)) lutimesSync(join(root, path), MTIME, MTIME);

  const changed = [
    '/etc/passwd',
    '/etc/shadow',
    '/etc/vanished', // not on disk: removed after the scan
    '/usr/bin/tool',
    '/usr/bin/group-tool',
    '/usr/bin/a',
    '/usr/bin/b',
    '/srv/inside',
    '/usr/lib/libx.so',
    '/usr/lib/libx.so.1',
    '/usr/lib/long-link',
    '/scratch',
    '/scratch/pipe',
    `/long/${LONG_COMPONENT}`,
    SPLIT_PATH,
    '/a/b/c/d/leaf',
    '/data',
    '/unicode/caf\u00e9',
    '/unicode/\u{1F600}',
    '/unicode/\uFB01',
    '/big.bin',
    '/empty',
  ];
  if (hasDevice) changed.push('/devices/null', '/devices/sda', '/devices/big');
  return { root, changed: changed.sort(), deleted: ['/etc/old.conf', '/var/cache/gone', '/nolonger/x'], hasDevice };
}

function walk(root: string, dir = ''): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    out.push(path);
    if (entry.isDirectory()) out.push(...walk(root, path));
  }
  return out;
}

function expectedNames(tree: Tree): string[] {
  const names = [
    'a/', 'a/b/', 'a/b/c/', 'a/b/c/d/', 'a/b/c/d/leaf',
    'big.bin',
    'data/',
    'deep/', `deep/${'d'.repeat(60)}/`, `deep/${'d'.repeat(60)}/${'e'.repeat(60)}/`, SPLIT_PATH.slice(1),
    'empty',
    'etc/', 'etc/.wh.old.conf', 'etc/passwd', 'etc/shadow',
    'long/', `long/${LONG_COMPONENT}`,
    'nolonger/.wh.x',
    'scratch/', 'scratch/pipe',
    'srv/', 'srv/inside',
    'unicode/', 'unicode/caf\u00e9', 'unicode/\uFB01', 'unicode/\u{1F600}',
    'usr/', 'usr/bin/', 'usr/bin/a', 'usr/bin/b', 'usr/bin/group-tool', 'usr/bin/tool',
    'usr/lib/', 'usr/lib/libx.so', 'usr/lib/libx.so.1', 'usr/lib/long-link',
    'var/', 'var/cache/', 'var/cache/.wh.gone',
  ];
  if (tree.hasDevice) names.push('devices/', 'devices/big', 'devices/null', 'devices/sda');
  return names.sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
}

async function write(tree: Tree, tmpDir: string, options: Partial<Parameters<typeof writeLayer>[1]> = {}) {
  const result = await writeLayer(
    { rootDir: tree.root, changes: { changed: tree.changed, deleted: tree.deleted } },
    { compression: 'gzip', flavor: 'oci', tmpDir, ...options },
  );
  assert.equal(result.kind, 'layer');
  return result as Extract<LayerWriteResult, { kind: 'layer' }>;
}

function listNames(tarCommand: string): string[] {
  // -tv shows "h... link to" etc.; plain -t with --quoting-style=literal gives the names.
  return sh(`${tarCommand} --quoting-style=literal`).split('\n').filter(Boolean);
}

test('a layer holds every changed path, its parents and the whiteouts, in byte order, readable by GNU tar', async (t) => {
  const tree = buildTree(tempDir(t, 'root'));
  const out = tempDir(t, 'out');
  const result = await write(tree, out);

  assert.deepEqual(listNames(`tar -tzf ${result.path}`), expectedNames(tree));
  assert.equal(result.entries, expectedNames(tree).length);
  assert.equal(result.layer.mediaType, MediaType.ociLayerGzip);
  assert.equal(result.path, join(out, `${result.layer.digest.slice('sha256:'.length)}.layer`));

  // Extract as GNU tar would for an image and compare with the source tree.
  const dest = tempDir(t, 'extract');
  sh(`tar --numeric-owner -xpzf ${result.path} -C ${dest}`);
  const verbose = sh(`tar --numeric-owner --full-time -tvzf ${result.path}`);

  const same = (path: string) => {
    const src = lstatSync(join(tree.root, path));
    const got = lstatSync(join(dest, path));
    assert.equal(got.mode, src.mode, `mode of ${path}`);
    assert.equal(got.uid, src.uid, `uid of ${path}`);
    assert.equal(got.gid, src.gid, `gid of ${path}`);
    if (!src.isSymbolicLink() && !src.isDirectory()) assert.equal(Math.floor(got.mtimeMs / 1000), Math.floor(MTIME), `mtime of ${path}`);
    if (src.isFile()) assert.deepEqual(readFileSync(join(dest, path)), readFileSync(join(tree.root, path)), `content of ${path}`);
    if (src.isSymbolicLink()) assert.equal(readlinkSync(join(dest, path)), readlinkSync(join(tree.root, path)));
    if (src.isCharacterDevice() || src.isBlockDevice()) assert.equal(got.rdev, src.rdev, `device numbers of ${path}`);
    return got;
  };
  for (const path of tree.changed.filter((p) => p !== '/etc/vanished')) same(path);
  for (const parent of ['/a', '/a/b/c/d', '/usr', '/usr/bin', '/etc', '/var/cache']) same(parent);

  assert.equal(lstatSync(join(dest, '/usr/bin/tool')).mode & 0o7777, 0o4755);
  assert.equal(lstatSync(join(dest, '/usr/bin/group-tool')).mode & 0o7777, 0o2755);
  assert.equal(lstatSync(join(dest, '/scratch')).mode & 0o7777, 0o1777);
  assert.ok(lstatSync(join(dest, '/scratch/pipe')).isFIFO());
  assert.equal(readlinkSync(join(dest, '/usr/lib/long-link')), LONG_TARGET);
  assert.equal(lstatSync(join(dest, '/usr/bin/a')).ino, lstatSync(join(dest, '/usr/bin/b')).ino, 'hard link pair stays one inode');
  assert.match(verbose, /^h\S+ 0\/0 +0 [^\n]* usr\/bin\/b link to usr\/bin\/a$/m);
  assert.match(verbose, /^-rw-r--r-- 0\/0 +\d+ [^\n]* srv\/inside$/m, 'a link whose partner is not in the layer is a plain file');
  assert.match(verbose, /^-rw-r----- 1234\/5678 /m);
  assert.match(verbose, new RegExp(`^-\\S+ 0/0 +${BIG} \\S+ \\S+ big\\.bin$`, 'm'));
  assert.match(verbose, / 2023-11-14 22:13:20 etc\/passwd$/m, 'whole seconds, truncated');
  assert.equal(readdirSync(join(dest, '/data')).length, 0, 'a changed directory brings only itself');
  assert.ok(!readdirSync(join(dest, '/etc')).includes('vanished'));
  if (tree.hasDevice) {
    assert.match(verbose, /^c\S+ 0\/0 +1,3 [^\n]* devices\/null$/m);
    assert.match(verbose, /^b\S+ 0\/0 +8,0 [^\n]* devices\/sda$/m);
    assert.match(verbose, /^c\S+ 0\/0 +259,70000 [^\n]* devices\/big$/m);
  }

  for (const whiteout of ['etc/.wh.old.conf', 'var/cache/.wh.gone', 'nolonger/.wh.x']) {
    const stats = lstatSync(join(dest, whiteout));
    assert.ok(stats.isFile() && stats.size === 0, whiteout);
    assert.equal(stats.mode & 0o7777, 0, `${whiteout} has mode 0`);
    assert.equal(stats.uid, 0);
  }
});

test('digest, diffId, sizes and content hashes match what independent tools compute', async (t) => {
  const tree = buildTree(tempDir(t, 'root'));
  const result = await write(tree, tempDir(t, 'out'));
  const hex = (digest: string) => digest.slice('sha256:'.length);

  assert.equal(sh(`sha256sum < ${result.path}`).split(' ')[0], hex(result.layer.digest));
  assert.equal(sh(`gzip -dc ${result.path} | sha256sum`).split(' ')[0], hex(result.layer.diffId));
  assert.equal(result.layer.size, lstatSync(result.path).size);
  assert.equal(result.uncompressedSize, Number(sh(`gzip -dc ${result.path} | wc -c`).trim()));
  assert.equal(sh(`gzip -t ${result.path} && echo ok`).trim(), 'ok');

  // The Layer reads back through its own verification.
  const uncompressed = createHash('sha256');
  for await (const chunk of (await result.layer.uncompressed()) as Readable) uncompressed.update(chunk as Buffer);
  assert.equal(`sha256:${uncompressed.digest('hex')}`, result.layer.diffId);

  const { h64Raw } = await xxhash();
  const regular = tree.changed.filter((p) => p !== '/etc/vanished' && lstatSync(join(tree.root, p)).isFile());
  assert.deepEqual([...result.contentHashes.keys()].sort(), regular.sort());
  for (const path of regular) {
    assert.equal(result.contentHashes.get(path), h64Raw(readFileSync(join(tree.root, path))).toString(16).padStart(16, '0'), path);
  }
});

test('reproducible layers have the same digest whatever the times on disk, and all times are 0', async (t) => {
  const tree = buildTree(tempDir(t, 'root'));
  const first = await write(tree, tempDir(t, 'out1'), { reproducible: true });
  for (const path of ['/etc/passwd', '/usr/bin', '/big.bin']) utimesSync(join(tree.root, path), 1_800_000_000, 1_800_000_000);
  const second = await write(tree, tempDir(t, 'out2'), { reproducible: true });
  assert.equal(second.layer.digest, first.layer.digest);
  assert.equal(second.layer.diffId, first.layer.diffId);
  const verbose = sh(`tar --numeric-owner --full-time -tvzf ${first.path}`).split('\n').filter(Boolean);
  assert.equal(verbose.length, first.entries);
  for (const line of verbose) assert.match(line, / 1970-01-01 00:00:00 /, line);
  // No PAX atime/ctime records: the only extended headers are for long names.
  const tar = gunzipSync(readFileSync(first.path));
  assert.ok(!tar.includes('atime='), 'no atime records');
  assert.ok(!tar.includes('ctime='), 'no ctime records');

  const normal = await write(tree, tempDir(t, 'out3'));
  assert.notEqual(normal.layer.digest, first.layer.digest);
});

test('a new name of an unchanged file brings its other names in: the layer keeps them one file', async (t) => {
  const root = tempDir(t, 'root');
  mkdirSync(join(root, 'usr/bin'), { recursive: true });
  writeFileSync(join(root, 'usr/bin/tool'), 'tool\n');
  linkSync(join(root, 'usr/bin/tool'), join(root, 'usr/bin/tool-alias'));
  writeFileSync(join(root, 'usr/bin/stale'), 'stale\n');
  linkSync(join(root, 'usr/bin/stale'), join(root, 'usr/bin/stale-alias'));
  // The step: one more name for each, in a directory of its own.
  mkdirSync(join(root, 'opt'));
  linkSync(join(root, 'usr/bin/tool'), join(root, 'opt/tool'));
  linkSync(join(root, 'usr/bin/stale'), join(root, 'opt/stale'));
  const index = new FileIndex();
  for (const entry of walkRoot({ rootDir: root, ignore: IgnoreList.of([]) })) index.setStats(entry.path, entry.stats, entry.linkTarget);
  // A record the index has not caught up with: that name is another file by now.
  rmSync(join(root, 'usr/bin/stale-alias'));
  writeFileSync(join(root, 'usr/bin/stale-alias'), 'another file\n');
  const changes = { changed: ['/opt', '/opt/stale', '/opt/tool'], deleted: [] };

  const result = await writeLayer({ rootDir: root, changes, index }, { compression: 'none', flavor: 'oci', tmpDir: tempDir(t, 'out') });
  assert.equal(result.kind, 'layer');
  if (result.kind !== 'layer') return;
  const verbose = sh(`tar --numeric-owner -tvf ${result.path}`);
  assert.deepEqual(listNames(`tar -tf ${result.path}`), ['opt/', 'opt/stale', 'opt/tool', 'usr/', 'usr/bin/', 'usr/bin/stale', 'usr/bin/tool', 'usr/bin/tool-alias']);
  assert.match(verbose, /^-\S+ 0\/0 +6 [^\n]* opt\/stale$/m);
  assert.match(verbose, /^-\S+ 0\/0 +5 [^\n]* opt\/tool$/m);
  assert.match(verbose, /usr\/bin\/stale link to opt\/stale$/m);
  assert.match(verbose, /usr\/bin\/tool link to opt\/tool$/m);
  assert.match(verbose, /usr\/bin\/tool-alias link to opt\/tool$/m);
  const dest = tempDir(t, 'extract');
  sh(`tar -xpf ${result.path} -C ${dest}`);
  const ino = (path: string) => lstatSync(join(dest, path)).ino;
  assert.equal(ino('usr/bin/tool'), ino('opt/tool'));
  assert.equal(ino('usr/bin/tool-alias'), ino('opt/tool'));
  assert.equal(readFileSync(join(dest, 'usr/bin/tool-alias'), 'utf8'), 'tool\n');
  assert.equal(result.contentHashes.get('/usr/bin/tool-alias'), result.contentHashes.get('/opt/tool'));

  // Without the index there is nothing to find the other names by: the new name is a file of its own.
  const alone = await writeLayer({ rootDir: root, changes }, { compression: 'none', flavor: 'oci', tmpDir: tempDir(t, 'out-alone') });
  assert.equal(alone.kind, 'layer');
  if (alone.kind !== 'layer') return;
  assert.deepEqual(listNames(`tar -tf ${alone.path}`), ['opt/', 'opt/stale', 'opt/tool']);
});

test('an empty change set writes nothing, and so does one whose paths all vanished', async (t) => {
  const out = tempDir(t, 'out');
  const root = tempDir(t, 'root');
  const empty = await writeLayer({ rootDir: root, changes: { changed: [], deleted: [] } }, { compression: 'gzip', flavor: 'oci', tmpDir: join(out, 'never-created') });
  assert.deepEqual(empty, { kind: 'empty' });
  const vanished = await writeLayer({ rootDir: root, changes: { changed: ['/gone/a', '/gone/b'], deleted: [] } }, { compression: 'gzip', flavor: 'oci', tmpDir: out });
  assert.deepEqual(vanished, { kind: 'empty' });
  assert.deepEqual(readdirSync(out), []);
});

test('a deletion alone gives a layer with just the whiteout and its existing parents', async (t) => {
  const root = tempDir(t, 'root');
  mkdirSync(join(root, 'etc/apt'), { recursive: true });
  const result = await writeLayer({ rootDir: root, changes: { changed: [], deleted: ['/etc/apt/sources.list', '/top'] } }, { compression: 'gzip', flavor: 'docker', tmpDir: tempDir(t, 'out') });
  assert.equal(result.kind, 'layer');
  if (result.kind !== 'layer') return;
  assert.deepEqual(listNames(`tar -tzf ${result.path}`), ['.wh.top', 'etc/', 'etc/apt/', 'etc/apt/.wh.sources.list']);
  assert.equal(result.layer.mediaType, MediaType.dockerLayerGzip);
  assert.equal(result.contentHashes.size, 0);
});

test('zstd and uncompressed layers', async (t) => {
  const tree = buildTree(tempDir(t, 'root'));
  const zstd = await write(tree, tempDir(t, 'zstd'), { compression: 'zstd', flavor: 'docker' });
  assert.equal(zstd.layer.mediaType, MediaType.dockerLayerZstd);
  assert.equal(sh(`zstd -dc ${zstd.path} | sha256sum`).split(' ')[0], zstd.layer.diffId.slice(7));
  assert.equal(sh(`sha256sum < ${zstd.path}`).split(' ')[0], zstd.layer.digest.slice(7));
  assert.deepEqual(listNames(`zstd -dc ${zstd.path} | tar -tf -`), expectedNames(tree));

  const none = await write(tree, tempDir(t, 'none'), { compression: 'none' });
  assert.equal(none.layer.mediaType, MediaType.ociLayer);
  assert.equal(none.layer.digest, none.layer.diffId);
  assert.equal(none.layer.size, none.uncompressedSize);
  assert.equal(none.layer.diffId, zstd.layer.diffId, 'the tar stream does not depend on compression');
  assert.deepEqual(listNames(`tar -tf ${none.path}`), expectedNames(tree));
});

test('gzip levels are honoured and checked', async (t) => {
  const tree = buildTree(tempDir(t, 'root'));
  const fast = await write(tree, tempDir(t, 'l1'), { level: 1 });
  const best = await write(tree, tempDir(t, 'l9'), { level: 9 });
  assert.equal(best.layer.diffId, fast.layer.diffId);
  assert.ok(best.layer.size < fast.layer.size);
  await assert.rejects(write(tree, tempDir(t, 'bad'), { level: 11 }), { code: 'USAGE' });
});

test('paths that could leave the root are refused', async (t) => {
  const root = tempDir(t, 'root');
  for (const bad of ['/etc/../../host', 'relative', '/etc//x', '/etc/']) {
    await assert.rejects(writeLayer({ rootDir: root, changes: { changed: [bad], deleted: [] } }, { compression: 'none', flavor: 'oci', tmpDir: root }), { code: 'INTERNAL' }, bad);
  }
});

test('a parent replaced by a symlink is not followed out of the root', async (t) => {
  const root = tempDir(t, 'root');
  const outside = tempDir(t, 'outside');
  writeFileSync(join(outside, 'secret'), 'host file');
  symlinkSync(outside, join(root, 'etc'));
  const result = await writeLayer({ rootDir: root, changes: { changed: ['/etc/secret', '/ok'], deleted: ['/etc/old'] } }, { compression: 'none', flavor: 'oci', tmpDir: tempDir(t, 'out') });
  assert.deepEqual(result, { kind: 'empty' });
});

test('umoci unpacks a base layer and a diff layer with whiteouts written by kiln', async (t) => {
  if (spawnSync('umoci', ['--version']).status !== 0) {
    t.skip('umoci is not installed');
    return;
  }
  const tree = buildTree(tempDir(t, 'root'));
  const base = tempDir(t, 'base');
  mkdirSync(join(base, 'etc'));
  writeFileSync(join(base, 'etc/old.conf'), 'deleted by the next layer');
  writeFileSync(join(base, 'etc/kept'), 'stays');
  const baseLayer = await writeLayer({ rootDir: base, changes: { changed: ['/etc/kept', '/etc/old.conf'], deleted: [] } }, { compression: 'none', flavor: 'oci', tmpDir: tempDir(t, 'out-base') });
  const diff = await write(tree, tempDir(t, 'out-diff'), { compression: 'none' });
  assert.equal(baseLayer.kind, 'layer');
  if (baseLayer.kind !== 'layer') return;

  const work = tempDir(t, 'umoci');
  const layout = join(work, 'layout');
  sh(`umoci init --layout ${layout} && umoci new --image ${layout}:t`);
  sh(`umoci raw add-layer --image ${layout}:t ${baseLayer.path}`);
  sh(`umoci raw add-layer --image ${layout}:t ${diff.path}`);
  const bundle = join(work, 'bundle');
  sh(`umoci unpack --image ${layout}:t ${bundle}`);
  const rootfs = join(bundle, 'rootfs');
  assert.ok(!readdirSync(join(rootfs, 'etc')).includes('old.conf'), 'whiteout applied');
  assert.equal(readFileSync(join(rootfs, 'etc/kept'), 'utf8'), 'stays');
  assert.equal(readFileSync(join(rootfs, `long/${LONG_COMPONENT}`), 'utf8'), 'long name\n');
  assert.equal(readFileSync(join(rootfs, SPLIT_PATH), 'utf8'), 'split name\n');
  assert.equal(readlinkSync(join(rootfs, 'usr/lib/long-link')), LONG_TARGET);
  assert.equal(lstatSync(join(rootfs, 'usr/bin/a')).ino, lstatSync(join(rootfs, 'usr/bin/b')).ino);
  assert.equal(lstatSync(join(rootfs, 'usr/bin/tool')).mode & 0o7777, 0o4755);
  assert.equal(lstatSync(join(rootfs, 'etc/shadow')).uid, 1234);
  assert.equal(readFileSync(join(rootfs, 'unicode/\u{1F600}'), 'utf8'), 'emoji\n');
  assert.equal(lstatSync(join(rootfs, 'big.bin')).size, BIG);
});

test('thousands of entries cross chunk boundaries intact, around the streaming threshold too', async (t) => {
  const root = tempDir(t, 'root');
  const changed: string[] = [];
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  for (let i = 0; i < 3000; i++) {
    const path = `/m/d${i % 17}/f${i}`;
    mkdirSync(join(root, `/m/d${i % 17}`), { recursive: true });
    writeFileSync(join(root, path), Buffer.alloc(next() % 5000, `${i}:`));
    changed.push(path);
  }
  for (const size of [(1 << 20) - 1, 1 << 20, (1 << 20) + 1, 5 << 20]) {
    writeFileSync(join(root, `/edge-${size}`), Buffer.alloc(size, `${size}`));
    changed.push(`/edge-${size}`);
  }
  linkSync(join(root, `/edge-${5 << 20}`), join(root, '/edge-link-1'));
  linkSync(join(root, `/edge-${5 << 20}`), join(root, '/edge-link-2'));
  changed.push('/edge-link-1', '/edge-link-2');
  const result = await writeLayer({ rootDir: root, changes: { changed: changed.sort(), deleted: [] } }, { compression: 'gzip', flavor: 'oci', tmpDir: tempDir(t, 'out') });
  assert.equal(result.kind, 'layer');
  if (result.kind !== 'layer') return;
  const dest = tempDir(t, 'extract');
  sh(`tar -xpzf ${result.path} -C ${dest}`);
  for (const path of changed) assert.deepEqual(readFileSync(join(dest, path)), readFileSync(join(root, path)), path);
  const verbose = sh(`tar -tvzf ${result.path}`);
  assert.match(verbose, /edge-link-1 link to edge-5242880$/m);
  assert.match(verbose, /edge-link-2 link to edge-5242880$/m);
  assert.equal(result.contentHashes.get('/edge-link-2'), result.contentHashes.get(`/edge-${5 << 20}`));
  assert.equal(result.entries, 3000 + 17 + 1 + 4 + 2);
});

for (const [how, readers] of [['here', undefined], ['on reader threads', new FileReaders(2)]] as const) {
  test(`files that change between planning and reading still give a valid archive (read ${how})`, async (t) => {
    const root = tempDir(t, 'root');
    writeFileSync(join(root, 'shrinks'), 'a'.repeat(1000));
    writeFileSync(join(root, 'grows'), 'b'.repeat(10));
    writeFileSync(join(root, 'goes'), 'c');
    writeFileSync(join(root, 'becomes-link'), 'e');
    writeFileSync(join(root, 'becomes-dir'), 'f');
    const plan = await planLayer(root, { changed: ['/becomes-dir', '/becomes-link', '/goes', '/grows', '/shrinks'], deleted: [] });
    writeFileSync(join(root, 'shrinks'), 'a'.repeat(10));
    writeFileSync(join(root, 'grows'), 'b'.repeat(1000));
    rmSync(join(root, 'goes'));
    rmSync(join(root, 'becomes-link'));
    symlinkSync('/etc/passwd', join(root, 'becomes-link')); // must not be followed out of the root
    rmSync(join(root, 'becomes-dir'));
    mkdirSync(join(root, 'becomes-dir'));
    const stats = newTarWriteStats();
    const chunks: Buffer[] = [];
    for await (const chunk of tarChunks(plan.entries, { rootDir: root, reproducible: false, xxhash: await xxhash(), readers }, stats)) chunks.push(chunk);
    const out = tempDir(t, 'out');
    writeFileSync(join(out, 'l.tar'), Buffer.concat(chunks));
    sh(`tar -xf ${join(out, 'l.tar')} -C ${out}`);
    assert.equal(readFileSync(join(out, 'shrinks'), 'utf8'), 'a'.repeat(10));
    assert.equal(readFileSync(join(out, 'grows'), 'utf8'), 'b'.repeat(10), 'cut at the scanned size');
    assert.deepEqual(stats.vanished, ['/becomes-dir', '/becomes-link', '/goes']);
    assert.equal(stats.entries, 2);
  });
}

test('reader threads give the very bytes and content hashes the writing thread gives', async (t) => {
  const root = tempDir(t, 'root');
  const changed = ['/d'];
  mkdirSync(join(root, 'd'));
  for (let i = 0; i < 1500; i++) {
    // Sizes from empty to just under the small-file limit, and one hard link.
    const size = i === 7 ? (1 << 20) - 1 : i % 5 === 0 ? 0 : (i * 37) % 3000;
    writeFileSync(join(root, 'd', `f${String(i).padStart(4, '0')}`), Buffer.alloc(size, i % 251));
    changed.push(`/d/f${String(i).padStart(4, '0')}`);
  }
  linkSync(join(root, 'd', 'f0001'), join(root, 'd', 'g-link'));
  changed.push('/d/g-link');
  const plan = await planLayer(root, { changed: changed.sort(), deleted: [] });
  const write = async (readers?: FileReaders) => {
    const stats = newTarWriteStats();
    const chunks: Buffer[] = [];
    for await (const chunk of tarChunks(plan.entries, { rootDir: root, reproducible: false, xxhash: await xxhash(), readers }, stats)) chunks.push(Buffer.from(chunk));
    return { tar: Buffer.concat(chunks), stats };
  };
  const readers = new FileReaders(2);
  t.after(() => readers.close());
  const here = await write();
  const threaded = await write(readers);
  assert.equal(here.stats.entries, 1502);
  assert.ok(threaded.tar.equals(here.tar), 'same archive');
  assert.deepEqual([...threaded.stats.contentHashes].sort(), [...here.stats.contentHashes].sort());
});

test('a large file that shrinks after its header went out fails the layer', async (t) => {
  const root = tempDir(t, 'root');
  writeFileSync(join(root, 'large'), Buffer.alloc(2 << 20, 'd'));
  // The header of a large file goes out before its content; after that a shrink cannot be mended.
  const largePlan = await planLayer(root, { changed: ['/large'], deleted: [] });
  const generator = tarChunks(largePlan.entries, { rootDir: root, reproducible: false, xxhash: await xxhash() }, newTarWriteStats());
  await assert.rejects(
    (async () => {
      let first = true;
      for await (const _chunk of generator) {
        if (first) truncateSync(join(root, 'large'), 100);
        first = false;
      }
    })(),
    { code: 'IO' },
  );
});
