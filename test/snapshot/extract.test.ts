import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync, existsSync, type Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { pack as tarPack } from 'tar-stream';
import xxhash from 'xxhash-wasm';
import { streamLayer } from '../../src/oci/blob-layer.js';
import { sha256 } from '../../src/oci/digest.js';
import type { Image } from '../../src/oci/image.js';
import type { Layer } from '../../src/oci/layer.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import { isKilnError } from '../../src/util/errors.js';
import { extractImage, extractLayer, type ExtractOptions } from '../../src/snapshot/extract.js';
import { FileIndex, recordFromStats } from '../../src/snapshot/file-index.js';
import { IgnoreList } from '../../src/snapshot/ignore.js';
import { walk } from '../../src/snapshot/walk.js';

/* ---------- building layers ---------- */

type EntryType = 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';

interface Entry {
  name: string;
  type?: EntryType;
  content?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Seconds. */
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string>;
}

const MTIME = 1_600_000_000;

async function tarOf(entries: readonly Entry[]): Promise<Buffer> {
  const archive = tarPack();
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header = {
      name: e.name,
      type,
      mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: new Date((e.mtime ?? MTIME) * 1000),
      ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
      ...(e.devmajor !== undefined ? { devmajor: e.devmajor, devminor: e.devminor ?? 0 } : {}),
      ...(e.pax !== undefined ? { pax: e.pax } : {}),
    };
    if (type === 'file') archive.entry(header, e.content ?? '');
    else archive.entry(header);
  }
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive as unknown as AsyncIterable<Buffer>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

function layerOfTar(tar: Buffer, hooks: { open?: () => Promise<Readable> } = {}): Layer {
  const blob = gzipSync(tar);
  return streamLayer({
    digest: sha256(blob),
    diffId: sha256(tar),
    size: blob.length,
    mediaType: MediaType.ociLayerGzip,
    open: hooks.open ?? (async () => Readable.from([blob])),
  });
}

async function layerOf(entries: readonly Entry[]): Promise<Layer> {
  return layerOfTar(await tarOf(entries));
}

function imageOf(layers: readonly Layer[]): Image {
  // extractImage reads only the layers.
  return { layers } as unknown as Image;
}

/* ---------- the place layers go ---------- */

interface Place {
  base: string;
  root: string;
  /** A directory next to the root that no layer may touch. */
  sentinel: string;
}

function place(t: TestContext): Place {
  const base = mkdtempSync(join(tmpdir(), 'kiln-extract-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const root = join(base, 'root');
  const sentinel = join(base, 'sentinel');
  mkdirSync(root);
  mkdirSync(sentinel);
  writeFileSync(join(sentinel, 'passwd'), 'original\n');
  return { base, root, sentinel };
}

function options(p: Place, extra: Partial<ExtractOptions> = {}): ExtractOptions {
  return { rootDir: p.root, ignore: IgnoreList.of(['/proc', '/dev']), ...extra };
}

async function apply(p: Place, entries: readonly Entry[], extra: Partial<ExtractOptions> = {}) {
  return extractLayer(await layerOf(entries), options(p, extra));
}

/** Nothing but root/ and an untouched sentinel/ next to it. */
function assertNothingOutside(p: Place): void {
  assert.deepEqual(readdirSync(p.base).sort(), ['root', 'sentinel']);
  assert.deepEqual(readdirSync(p.sentinel), ['passwd']);
  assert.equal(readFileSync(join(p.sentinel, 'passwd'), 'utf8'), 'original\n');
  assert.equal(existsSync('/evil'), false);
}

function stat(p: Place, path: string): Stats {
  return lstatSync(join(p.root, path));
}

function read(p: Place, path: string): string {
  return readFileSync(join(p.root, path), 'utf8');
}

function exists(p: Place, path: string): boolean {
  return lstatSync(join(p.root, path), { throwIfNoEntry: false }) !== undefined;
}

async function rejectsUnsafe(promise: Promise<unknown>, ...mentions: string[]): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isKilnError(err, 'INVALID_LAYER'), `expected INVALID_LAYER, got ${String(err)}`);
    for (const mention of mentions) assert.ok((err as Error).message.includes(mention), `"${(err as Error).message}" should mention ${mention}`);
    return true;
  });
}

const isRoot = process.getuid?.() === 0;

/* ---------- entry types and metadata ---------- */

test('every entry type is extracted with owner, mode and times', { skip: !isRoot && 'needs root for chown and mknod' }, async (t) => {
  const p = place(t);
  const stats = await apply(p, [
    { name: 'etc/', type: 'directory', mode: 0o750, uid: 12, gid: 34, mtime: 1_500_000_000 },
    { name: 'etc/conf', content: 'hello\n', mode: 0o640, uid: 1000, gid: 1001, mtime: 1_400_000_000 },
    { name: 'etc/empty', content: '', mode: 0o600 },
    { name: 'etc/link', type: 'symlink', linkname: 'conf', uid: 7, gid: 8, mtime: 1_300_000_000 },
    { name: 'etc/hard', type: 'link', linkname: 'etc/conf' },
    { name: 'opt/', type: 'directory' },
    { name: 'opt/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666, uid: 5, gid: 6 },
    { name: 'opt/loop9', type: 'block-device', devmajor: 7, devminor: 9, mode: 0o660 },
    { name: 'opt/pipe', type: 'fifo', mode: 0o620, mtime: 1_200_000_000 },
    { name: 'usr/bin/su', content: '#!/bin/sh\n', mode: 0o4755, uid: 0, gid: 0 },
    { name: 'usr/bin/wall', content: '#!/bin/sh\n', mode: 0o2755, uid: 1000, gid: 5 },
    { name: 'tmp/', type: 'directory', mode: 0o1777 },
    { name: 'srv/', type: 'directory', mode: 0o2775, uid: 1000, gid: 1000 },
  ]);
  assert.deepEqual(stats, { layers: 1, entries: 13, bytes: 6 + 10 + 10, skippedIgnored: 0, devicesSkipped: 0 });

  const etc = stat(p, 'etc');
  assert.ok(etc.isDirectory());
  assert.equal(etc.mode & 0o7777, 0o750);
  assert.deepEqual([etc.uid, etc.gid], [12, 34]);
  // Set after its files were written into it.
  assert.equal(etc.mtimeMs, 1_500_000_000_000);

  const conf = stat(p, 'etc/conf');
  assert.ok(conf.isFile());
  assert.equal(read(p, 'etc/conf'), 'hello\n');
  assert.equal(conf.mode & 0o7777, 0o640);
  assert.deepEqual([conf.uid, conf.gid], [1000, 1001]);
  assert.equal(conf.mtimeMs, 1_400_000_000_000);
  assert.equal(stat(p, 'etc/empty').size, 0);
  assert.equal(stat(p, 'etc/empty').mode & 0o7777, 0o600);

  const link = stat(p, 'etc/link');
  assert.ok(link.isSymbolicLink());
  assert.equal(readlinkSync(join(p.root, 'etc/link')), 'conf');
  assert.deepEqual([link.uid, link.gid], [7, 8]);
  assert.equal(link.mtimeMs, 1_300_000_000_000);

  const hard = stat(p, 'etc/hard');
  assert.equal(hard.ino, stat(p, 'etc/conf').ino);
  assert.equal(hard.nlink, 2);

  const nul = stat(p, 'opt/null');
  assert.ok(nul.isCharacterDevice());
  assert.equal(nul.rdev, (1 << 8) | 3);
  assert.equal(nul.mode & 0o7777, 0o666);
  assert.deepEqual([nul.uid, nul.gid], [5, 6]);
  const loop = stat(p, 'opt/loop9');
  assert.ok(loop.isBlockDevice());
  assert.equal(loop.rdev, (7 << 8) | 9);
  const pipe = stat(p, 'opt/pipe');
  assert.ok(pipe.isFIFO());
  assert.equal(pipe.mode & 0o7777, 0o620);
  assert.equal(pipe.mtimeMs, 1_200_000_000_000);

  // chown clears setuid and setgid, so the mode must survive it.
  assert.equal(stat(p, 'usr/bin/su').mode & 0o7777, 0o4755);
  const wall = stat(p, 'usr/bin/wall');
  assert.equal(wall.mode & 0o7777, 0o2755);
  assert.deepEqual([wall.uid, wall.gid], [1000, 5]);
  assert.equal(stat(p, 'tmp').mode & 0o7777, 0o1777);
  assert.equal(stat(p, 'srv').mode & 0o7777, 0o2775);
  // Parents a layer does not list are made 0755.
  assert.equal(stat(p, 'usr/bin').mode & 0o7777, 0o755);
  assertNothingOutside(p);
});

test('files with modes the umask would cut and group-writable modes keep their exact mode', async (t) => {
  const p = place(t);
  await apply(p, [
    { name: 'a', content: 'a', mode: 0o666 },
    { name: 'b', content: 'b', mode: 0o777 },
    { name: 'c', content: 'c', mode: 0o400 },
    { name: 'd', content: 'd', mode: 0o1644 },
  ]);
  assert.equal(stat(p, 'a').mode & 0o7777, 0o666);
  assert.equal(stat(p, 'b').mode & 0o7777, 0o777);
  assert.equal(stat(p, 'c').mode & 0o7777, 0o400);
  assert.equal(stat(p, 'd').mode & 0o7777, 0o1644);
});

test('a file in a setgid directory gets the group the layer says, not the directory\'s', { skip: !isRoot && 'needs root for chown' }, async (t) => {
  const p = place(t);
  await apply(p, [{ name: 'shared/', type: 'directory', mode: 0o2775, gid: 50 }]);
  await apply(p, [
    { name: 'shared/root-file', content: 'x', uid: 0, gid: 0 },
    { name: 'shared/sub/', type: 'directory', uid: 0, gid: 0 },
    { name: 'shared/link', type: 'symlink', linkname: 'root-file', uid: 0, gid: 0 },
  ]);
  assert.equal(stat(p, 'shared/root-file').gid, 0);
  assert.equal(stat(p, 'shared/sub').gid, 0);
  assert.equal(stat(p, 'shared/link').gid, 0);
});

test('a directory\'s times are set after the files written into it, even when they come later in the tar', async (t) => {
  const p = place(t);
  await apply(p, [
    { name: 'd/', type: 'directory', mtime: 1_000_000_000 },
    { name: 'd/e/', type: 'directory', mtime: 1_000_000_001 },
    { name: 'd/e/f', content: 'f' },
    { name: 'd/g', content: 'g' },
  ]);
  assert.equal(stat(p, 'd').mtimeMs, 1_000_000_000_000);
  assert.equal(stat(p, 'd/e').mtimeMs, 1_000_000_001_000);
});

test('pax times keep their fraction, and atime is taken from pax when present', async (t) => {
  const p = place(t);
  await apply(p, [{ name: 'precise', content: 'x', pax: { mtime: '1600000000.25', atime: '1500000000.5' } }]);
  const stats = stat(p, 'precise');
  assert.equal(stats.mtimeMs, 1_600_000_000_250);
  assert.equal(stats.atimeMs, 1_500_000_000_500);
});

test('large files stream through and keep their content', async (t) => {
  const p = place(t);
  const big = Buffer.alloc(5 * 1024 * 1024 + 123);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7919) & 0xff;
  const stats = await apply(p, [{ name: 'big.bin', content: big }]);
  assert.equal(stats.bytes, big.length);
  assert.ok(readFileSync(join(p.root, 'big.bin')).equals(big));
});

test('directories a layer does not list are made 0755 whatever the umask', async (t) => {
  const p = place(t);
  const previous = process.umask(0o077);
  t.after(() => process.umask(previous));
  await apply(p, [
    { name: 'implicit/parents/file', content: 'f', mode: 0o644 },
    { name: 'listed/', type: 'directory', mode: 0o751 },
    { name: 'listed/x', content: 'x', mode: 0o664 },
  ]);
  assert.equal(stat(p, 'implicit').mode & 0o7777, 0o755);
  assert.equal(stat(p, 'implicit/parents').mode & 0o7777, 0o755);
  assert.equal(stat(p, 'implicit/parents/file').mode & 0o7777, 0o644);
  assert.equal(stat(p, 'listed').mode & 0o7777, 0o751);
  assert.equal(stat(p, 'listed/x').mode & 0o7777, 0o664);
});

test('a root directory reached through a symlink gets the metadata of the layer\'s ./ entry', async (t) => {
  const p = place(t);
  const alias = join(p.base, 'root-alias');
  symlinkSync('root', alias);
  t.after(() => rmSync(alias, { force: true }));
  await extractLayer(await layerOf([{ name: './', type: 'directory', mode: 0o711 }, { name: 'x', content: 'x' }]), options(p, { rootDir: alias }));
  assert.equal(lstatSync(p.root).mode & 0o7777, 0o711);
  assert.equal(read(p, 'x'), 'x');
  assert.ok(lstatSync(alias).isSymbolicLink());
});

test('a tar stream from tar-stream itself (not a Node stream) is accepted', async (t) => {
  const p = place(t);
  const archive = tarPack();
  archive.entry({ name: 'from-pack', mtime: new Date(MTIME * 1000) }, 'packed');
  archive.finalize();
  const stats = await extractLayer(archive as unknown as Readable, options(p, { name: 'a packed stream' }));
  assert.equal(stats.entries, 1);
  assert.equal(read(p, 'from-pack'), 'packed');
});

/* ---------- names ---------- */

test('entries named ./x, x and /x all land at x inside the root', async (t) => {
  const p = place(t);
  await apply(p, [
    { name: './dot', content: 'dot' },
    { name: 'plain', content: 'plain' },
    { name: '/abs', content: 'abs' },
    { name: './', type: 'directory', mode: 0o755 },
    { name: '/nested//deep/./file', content: 'nested' },
    { name: 'x/../cleaned', content: 'cleaned' },
  ]);
  assert.equal(read(p, 'dot'), 'dot');
  assert.equal(read(p, 'plain'), 'plain');
  assert.equal(read(p, 'abs'), 'abs');
  assert.equal(read(p, 'nested/deep/file'), 'nested');
  assert.equal(read(p, 'cleaned'), 'cleaned');
  assertNothingOutside(p);
});

test('names longer than 100 bytes: ustar prefix, pax path and GNU long names', async (t) => {
  const p = place(t);
  const dirs = 'd'.repeat(60) + '/' + 'e'.repeat(60) + '/' + 'f'.repeat(60);
  const deep = dirs + '/file-with-prefix';
  const single = 's'.repeat(200);
  const target = 't'.repeat(150);
  await apply(p, [
    { name: deep, content: 'prefix' },
    { name: single, content: 'pax' },
    { name: target, content: 'target' },
    { name: 'l'.repeat(120), type: 'symlink', linkname: target },
    { name: 'h'.repeat(120), type: 'link', linkname: target },
  ]);
  assert.equal(read(p, deep), 'prefix');
  assert.equal(read(p, single), 'pax');
  assert.equal(readlinkSync(join(p.root, 'l'.repeat(120))), target);
  assert.equal(stat(p, 'h'.repeat(120)).ino, stat(p, target).ino);

  // GNU tar writes 'L' and 'K' records for long names and link names.
  const gnuName = 'g'.repeat(210);
  const gnuLink = 'k'.repeat(180);
  const tar = Buffer.concat([
    ...gnuLong('L', gnuName),
    rawHeader({ name: gnuName.slice(0, 99), typeflag: '0', size: 3 }),
    pad(Buffer.from('gnu')),
    ...gnuLong('K', gnuName),
    ...gnuLong('L', gnuLink),
    rawHeader({ name: 'short', typeflag: '2', linkname: 'short' }),
    Buffer.alloc(1024),
  ]);
  await extractLayer(Readable.from([tar]), options(p));
  assert.equal(read(p, gnuName), 'gnu');
  assert.equal(readlinkSync(join(p.root, gnuLink)), gnuName);
  assertNothingOutside(p);
});

/** A GNU-format header block with a checksum; enough for tests. */
function rawHeader(h: { name: string; typeflag: string; size?: number; linkname?: string; mode?: number }): Buffer {
  const block = Buffer.alloc(512);
  block.write(h.name, 0, 100, 'utf8');
  block.write((h.mode ?? 0o644).toString(8).padStart(7, '0') + '\0', 100, 'latin1');
  block.write('0000000\0', 108, 'latin1');
  block.write('0000000\0', 116, 'latin1');
  block.write((h.size ?? 0).toString(8).padStart(11, '0') + '\0', 124, 'latin1');
  block.write(MTIME.toString(8).padStart(11, '0') + '\0', 136, 'latin1');
  block.write(h.typeflag, 156, 'latin1');
  if (h.linkname !== undefined) block.write(h.linkname, 157, 100, 'utf8');
  block.write('ustar  \0', 257, 'latin1');
  block.write('        ', 148, 'latin1');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return block;
}

function pad(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

function gnuLong(typeflag: 'L' | 'K', name: string): Buffer[] {
  const data = Buffer.from(name + '\0');
  return [rawHeader({ name: '././@LongLink', typeflag, size: data.length }), pad(data)];
}

/* ---------- whiteouts and replacement ---------- */

test('a whiteout removes the lower file or directory tree', async (t) => {
  const p = place(t);
  await apply(p, [
    { name: 'etc/keep', content: 'k' },
    { name: 'etc/gone', content: 'g' },
    { name: 'var/cache/a/b', content: 'b' },
  ]);
  const stats = await apply(p, [
    { name: 'etc/.wh.gone', content: '' },
    { name: 'var/.wh.cache', content: '' },
    { name: 'var/.wh.never-existed', content: '' },
    { name: 'missing/dir/.wh.x', content: '' },
  ]);
  assert.equal(stats.entries, 4);
  assert.equal(exists(p, 'etc/gone'), false);
  assert.equal(exists(p, 'etc/.wh.gone'), false);
  assert.equal(exists(p, 'etc/keep'), true);
  assert.equal(exists(p, 'var/cache'), false);
  assert.equal(exists(p, 'var'), true);
  assert.equal(exists(p, 'missing'), false);
});

test('with whiteouts off, .wh. entries are ordinary files (ADD of a local archive)', async (t) => {
  const p = place(t);
  await apply(p, [{ name: 'etc/keep', content: 'k' }]);
  await apply(p, [
    { name: 'etc/.wh.keep', content: 'literal' },
    { name: 'etc/.wh..wh..opq', content: '' },
  ], { whiteouts: false });
  assert.equal(read(p, 'etc/keep'), 'k');
  assert.equal(read(p, 'etc/.wh.keep'), 'literal');
  assert.equal(exists(p, 'etc/.wh..wh..opq'), true);
});

for (const order of ['marker first', 'marker last'] as const) {
  test(`an opaque directory hides lower content but keeps this layer's (${order})`, async (t) => {
    const p = place(t);
    await apply(p, [
      { name: 'd/old', content: 'old' },
      { name: 'd/sub/old2', content: 'old2' },
      { name: 'd/lowerdir/x', content: 'x' },
      { name: 'other/stay', content: 'stay' },
    ]);
    const marker: Entry = { name: 'd/.wh..wh..opq', content: '' };
    const upper: Entry[] = [
      { name: 'd/', type: 'directory', mode: 0o700 },
      { name: 'd/new', content: 'new' },
      { name: 'd/sub/', type: 'directory' },
      { name: 'd/sub/new2', content: 'new2' },
      // No directory entry: the lower directory stays, holding only this layer's file.
      { name: 'd/lowerdir/y', content: 'y' },
    ];
    await apply(p, order === 'marker first' ? [upper[0]!, marker, ...upper.slice(1)] : [...upper, marker]);
    assert.deepEqual(readdirSync(join(p.root, 'd')).sort(), ['lowerdir', 'new', 'sub']);
    assert.deepEqual(readdirSync(join(p.root, 'd/sub')), ['new2']);
    assert.deepEqual(readdirSync(join(p.root, 'd/lowerdir')), ['y']);
    assert.equal(read(p, 'd/new'), 'new');
    assert.equal(stat(p, 'd').mode & 0o7777, 0o700);
    assert.equal(read(p, 'other/stay'), 'stay');
  });
}

test('an entry of another type replaces what is there; a directory over a directory only changes metadata', async (t) => {
  const p = place(t);
  await apply(p, [
    { name: 'dir-to-file/child/grandchild', content: 'x' },
    { name: 'file-to-dir', content: 'f' },
    { name: 'link-to-dir', type: 'symlink', linkname: 'elsewhere' },
    { name: 'file-to-link', content: 'f' },
    { name: 'dir-to-link/child', content: 'c' },
    { name: 'keepdir/', type: 'directory', mode: 0o755 },
    { name: 'keepdir/child', content: 'kept' },
    { name: 'fifo-to-file', type: 'fifo' },
  ]);
  await apply(p, [
    { name: 'dir-to-file', content: 'now a file' },
    { name: 'file-to-dir/', type: 'directory' },
    { name: 'file-to-dir/inside', content: 'in' },
    { name: 'link-to-dir/', type: 'directory' },
    { name: 'file-to-link', type: 'symlink', linkname: '/etc/passwd' },
    { name: 'dir-to-link', type: 'symlink', linkname: 'keepdir' },
    { name: 'keepdir/', type: 'directory', mode: 0o700, uid: 0 },
    { name: 'fifo-to-file', content: 'file' },
  ]);
  assert.equal(read(p, 'dir-to-file'), 'now a file');
  assert.equal(read(p, 'file-to-dir/inside'), 'in');
  assert.ok(stat(p, 'link-to-dir').isDirectory());
  assert.equal(readlinkSync(join(p.root, 'file-to-link')), '/etc/passwd');
  assert.equal(readlinkSync(join(p.root, 'dir-to-link')), 'keepdir');
  assert.equal(stat(p, 'keepdir').mode & 0o7777, 0o700);
  assert.equal(read(p, 'keepdir/child'), 'kept');
  assert.equal(read(p, 'fifo-to-file'), 'file');
  assertNothingOutside(p);
});

test('a file written over one name of a hardlinked pair leaves the other name alone', async (t) => {
  const p = place(t);
  await apply(p, [
    { name: 'a', content: 'shared' },
    { name: 'b', type: 'link', linkname: 'a' },
  ]);
  assert.equal(stat(p, 'a').ino, stat(p, 'b').ino);
  await apply(p, [{ name: 'b', content: 'changed' }]);
  assert.equal(read(p, 'a'), 'shared');
  assert.equal(read(p, 'b'), 'changed');
  // A hardlink over an existing file replaces it; the same link again is a no-op.
  await apply(p, [
    { name: 'b', type: 'link', linkname: 'a' },
    { name: 'b', type: 'link', linkname: 'a' },
  ]);
  assert.equal(stat(p, 'a').ino, stat(p, 'b').ino);
});

test('a layer path through a lower symlink lands where the symlink points, inside the root', async (t) => {
  const p = place(t);
  await apply(p, [
    { name: 'usr/lib/', type: 'directory' },
    { name: 'lib', type: 'symlink', linkname: 'usr/lib' },
    { name: 'abs', type: 'symlink', linkname: '/usr/lib' },
  ]);
  await apply(p, [
    { name: 'lib/x', content: 'x' },
    { name: 'abs/y', content: 'y' },
    { name: 'lib/sub/z', content: 'z' },
  ]);
  assert.equal(read(p, 'usr/lib/x'), 'x');
  assert.equal(read(p, 'usr/lib/y'), 'y');
  assert.equal(read(p, 'usr/lib/sub/z'), 'z');
  assert.ok(stat(p, 'lib').isSymbolicLink());
  // A whiteout through the symlink removes the real path.
  await apply(p, [{ name: 'lib/.wh.x', content: '' }]);
  assert.equal(exists(p, 'usr/lib/x'), false);
  assertNothingOutside(p);
});

/* ---------- malicious layers ---------- */

test('entries that climb out of the root with .. are refused and nothing is written outside', async (t) => {
  const p = place(t);
  for (const name of ['../sentinel/evil', 'a/../../sentinel/evil', '/../sentinel/evil', './../evil', '..', 'a/b/../../../evil']) {
    const layer = await layerOf([{ name: 'fine', content: 'ok' }, { name, content: 'evil' }]);
    await rejectsUnsafe(extractLayer(layer, options(p)), layer.digest, JSON.stringify(name));
    assertNothingOutside(p);
  }
  for (const name of ['../.wh.sentinel', 'x/../../sentinel/.wh.passwd', '../sentinel/.wh..wh..opq', '.wh...']) {
    const layer = await layerOf([{ name, content: '' }]);
    await rejectsUnsafe(extractLayer(layer, options(p)), layer.digest);
    assertNothingOutside(p);
  }
  await rejectsUnsafe(apply(p, [{ name: '../sentinel/dir/', type: 'directory' }]));
  await rejectsUnsafe(apply(p, [{ name: '../sentinel/s', type: 'symlink', linkname: 'x' }]));
  assertNothingOutside(p);
});

test('symlinks in parent directories resolve inside the root, never outside it', async (t) => {
  const p = place(t);
  await apply(p, [
    { name: 'to-root', type: 'symlink', linkname: '/' },
    { name: 'up', type: 'symlink', linkname: '../..' },
    { name: 'up-sentinel', type: 'symlink', linkname: '../sentinel' },
    { name: 'abs-sentinel', type: 'symlink', linkname: p.sentinel },
    { name: 'chain', type: 'symlink', linkname: 'up/up/up' },
  ]);
  await apply(p, [
    { name: 'to-root/evil1', content: '1' },
    { name: 'up/evil2', content: '2' },
    { name: 'up-sentinel/passwd', content: 'overwritten' },
    { name: 'abs-sentinel/passwd', content: 'overwritten' },
    { name: 'chain/evil3', content: '3' },
  ]);
  assertNothingOutside(p);
  // Like a chroot: "/" and ".." stop at the root, an absolute target starts from it.
  assert.equal(read(p, 'evil1'), '1');
  assert.equal(read(p, 'evil2'), '2');
  assert.equal(read(p, 'sentinel/passwd'), 'overwritten');
  assert.equal(read(p, p.sentinel.slice(1) + '/passwd'), 'overwritten');
  assert.equal(read(p, 'evil3'), '3');
  // The symlinks themselves were never replaced or followed as the last component.
  assert.equal(readlinkSync(join(p.root, 'up-sentinel')), '../sentinel');
});

test('a symlink entry and then a file through it in the same layer stay inside the root', async (t) => {
  const p = place(t);
  await apply(p, [
    { name: 'a', type: 'symlink', linkname: '../sentinel' },
    { name: 'a/passwd', content: 'overwritten' },
    { name: 'b', type: 'symlink', linkname: p.sentinel + '/passwd' },
    { name: 'b', content: 'replaces the symlink, not its target' },
  ]);
  assertNothingOutside(p);
  assert.equal(read(p, 'sentinel/passwd'), 'overwritten');
  assert.equal(read(p, 'b'), 'replaces the symlink, not its target');
});

test('a symlink loop in a parent path is refused', async (t) => {
  const p = place(t);
  await apply(p, [
    { name: 'loop1', type: 'symlink', linkname: 'loop2' },
    { name: 'loop2', type: 'symlink', linkname: 'loop1' },
  ]);
  await rejectsUnsafe(apply(p, [{ name: 'loop1/x', content: 'x' }]), 'symlinks');
});

test('hardlinks to paths outside the root or through a symlink are refused', async (t) => {
  const p = place(t);
  await apply(p, [
    { name: 'etc/passwd', content: 'inside' },
    { name: 'etc-link', type: 'symlink', linkname: '/etc' },
    { name: 'out', type: 'symlink', linkname: p.sentinel },
  ]);
  for (const linkname of ['../../etc/passwd', '../sentinel/passwd', '/../sentinel/passwd', 'etc/../../sentinel/passwd']) {
    const layer = await layerOf([{ name: 'stolen', type: 'link', linkname }]);
    await rejectsUnsafe(extractLayer(layer, options(p)), layer.digest, '/stolen');
    assertNothingOutside(p);
  }
  for (const linkname of ['etc-link/passwd', 'out/passwd']) {
    const layer = await layerOf([{ name: 'stolen', type: 'link', linkname }]);
    await rejectsUnsafe(extractLayer(layer, options(p)), layer.digest, 'through a symlink');
  }
  assert.equal(exists(p, 'stolen'), false);
  assert.equal(lstatSync(join(p.sentinel, 'passwd')).nlink, 1);
  // A hardlink to a symlink links the symlink itself, never what it points at.
  await apply(p, [{ name: 'same-link', type: 'link', linkname: 'out' }]);
  assert.ok(stat(p, 'same-link').isSymbolicLink());
  assert.equal(stat(p, 'same-link').ino, stat(p, 'out').ino);
  assertNothingOutside(p);
});

test('a hardlink to a missing path or a directory is refused', async (t) => {
  const p = place(t);
  await apply(p, [{ name: 'dir/', type: 'directory' }]);
  await rejectsUnsafe(apply(p, [{ name: 'x', type: 'link', linkname: 'nope' }]), 'does not exist');
  await rejectsUnsafe(apply(p, [{ name: 'x', type: 'link', linkname: 'dir' }]), 'directory');
});

test('a damaged or truncated layer is refused', async (t) => {
  const p = place(t);
  const tar = await tarOf([{ name: 'a', content: 'x'.repeat(2000) }]);
  const corrupt = Buffer.from(tar);
  corrupt[10] = 0x41;
  await rejectsUnsafe(extractLayer(Readable.from([corrupt]), options(p, { name: 'the test layer' })), 'the test layer', 'corrupt header');
  await rejectsUnsafe(extractLayer(Readable.from([tar.subarray(0, 1200)]), options(p)), 'truncated');
  const badGzip = streamLayer({ digest: sha256('x'), diffId: sha256('y'), size: 10, mediaType: MediaType.ociLayerGzip, open: async () => Readable.from([Buffer.from('not gzip at all')]) });
  await rejectsUnsafe(extractLayer(badGzip, options(p)), badGzip.digest, 'decompressed');
});

test('when the tar stream fails, extraction stops and writes nothing afterwards', async (t) => {
  const p = place(t);
  const entries: Entry[] = [];
  for (let i = 0; i < 3000; i++) entries.push({ name: `many/f${i}`, content: 'x'.repeat(100) });
  const tar = await tarOf(entries);
  const source = Readable.from(
    (async function* () {
      yield tar.subarray(0, tar.length - 1024);
      throw new Error('the registry went away');
    })(),
  );
  await assert.rejects(extractLayer(source, options(p, { name: 'the failing stream' })), (err: unknown) => {
    assert.ok(isKilnError(err, 'IO'));
    assert.match((err as Error).message, /^Extracting the failing stream failed: the registry went away/);
    return true;
  });
  const count = () => (exists(p, 'many') ? readdirSync(join(p.root, 'many')).length : 0);
  const afterFailure = count();
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(count(), afterFailure);
  assert.ok(afterFailure < 3000);
});

/* ---------- ignored paths ---------- */

test('ignored paths are never written or deleted, by entries, whiteouts or opaque markers', async (t) => {
  const p = place(t);
  mkdirSync(join(p.root, 'ign/sub'), { recursive: true });
  writeFileSync(join(p.root, 'ign/keep'), 'keep');
  writeFileSync(join(p.root, 'ign/sub/keep'), 'keep');
  mkdirSync(join(p.root, 'var/run'), { recursive: true });
  writeFileSync(join(p.root, 'var/run/pid'), '1');
  writeFileSync(join(p.root, 'var/other'), 'other');
  symlinkSync('ign', join(p.root, 'alias'));
  const ignore = IgnoreList.of(['/ign', '/var/run']);
  const stats = await apply(
    p,
    [
      { name: 'ign/new', content: 'no' },
      { name: 'ign/keep', content: 'overwrite' },
      { name: 'ign/', type: 'directory', mode: 0o700 },
      { name: 'ign/.wh.keep', content: '' },
      { name: 'ign/sub/.wh..wh..opq', content: '' },
      { name: '.wh.ign', content: '' },
      { name: 'alias/new', content: 'no' },
      { name: 'var/.wh..wh..opq', content: '' },
      { name: 'var/new', content: 'yes' },
      { name: 'var/run/x', type: 'symlink', linkname: '/' },
      { name: 'hard', type: 'link', linkname: 'ign/keep' },
      { name: 'ign', type: 'symlink', linkname: '/tmp' },
      { name: './.wh..wh..opq', content: '' },
      { name: 'top', content: 'top' },
    ],
    { ignore },
  );
  assert.equal(stats.skippedIgnored, 10);
  assert.deepEqual(readdirSync(join(p.root, 'ign')).sort(), ['keep', 'sub']);
  assert.equal(read(p, 'ign/keep'), 'keep');
  assert.equal(read(p, 'ign/sub/keep'), 'keep');
  assert.notEqual(stat(p, 'ign').mode & 0o7777, 0o700);
  assert.equal(read(p, 'var/run/pid'), '1');
  assert.equal(exists(p, 'var/other'), false);
  assert.equal(read(p, 'var/new'), 'yes');
  assert.equal(exists(p, 'hard'), false);
  // The root's opaque marker removed lower content, except what is ignored.
  assert.equal(exists(p, 'alias'), false);
  assert.deepEqual(readdirSync(p.root).sort(), ['ign', 'top', 'var']);
});

test('a directory holding an ignored path is not replaced by another type', async (t) => {
  const p = place(t);
  mkdirSync(join(p.root, 'var/run'), { recursive: true });
  writeFileSync(join(p.root, 'var/run/pid'), '1');
  const stats = await apply(p, [{ name: 'var', type: 'symlink', linkname: '/tmp' }], { ignore: IgnoreList.of(['/var/run']) });
  assert.equal(stats.skippedIgnored, 1);
  assert.equal(read(p, 'var/run/pid'), '1');
});

test('devices are created where allowed, and /dev is ignored by default lists', { skip: !isRoot && 'needs root for mknod' }, async (t) => {
  const p = place(t);
  const stats = await apply(p, [
    { name: 'dev/', type: 'directory' },
    { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 },
  ]);
  assert.equal(stats.skippedIgnored, 2);
  assert.equal(exists(p, 'dev'), false);
});

test('without the privilege for mknod, devices are skipped with a warning and counted', async (t) => {
  const probe = spawnSync('unshare', ['--user', '--map-root-user', 'true'], { stdio: 'ignore' });
  if (probe.status !== 0) {
    t.skip('unshare --user is not available here');
    return;
  }
  const p = place(t);
  const tar = await tarOf([
    { name: 'opt/null', type: 'character-device', devmajor: 1, devminor: 3 },
    { name: 'opt/pipe', type: 'fifo' },
    { name: 'opt/file', content: 'f' },
  ]);
  const tarPath = join(p.base, 'layer.tar');
  writeFileSync(tarPath, tar);
  // Run from the TypeScript sources (through tsx) or from the compiled tree, like this test.
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  const module = (path: string) => JSON.stringify(new URL(`../../src/${path}${ext}`, import.meta.url).href);
  const script = `
    import { createReadStream } from 'node:fs';
    import { Writable } from 'node:stream';
    import { extractLayer } from ${module('snapshot/extract')};
    import { IgnoreList } from ${module('snapshot/ignore')};
    import { createLogger } from ${module('util/log')};
    const lines = [];
    const logger = createLogger({ format: 'json', destination: new Writable({ write(c, _e, cb) { lines.push(JSON.parse(String(c))); cb(); } }) });
    const stats = await extractLayer(createReadStream(${JSON.stringify(tarPath)}), { rootDir: ${JSON.stringify(p.root)}, ignore: IgnoreList.of([]), logger });
    console.log(JSON.stringify({ stats, warnings: lines.filter((l) => l.level === 40).map((l) => l.msg) }));
  `;
  const scriptPath = join(p.base, 'script.mjs');
  writeFileSync(scriptPath, script);
  const loader = ext === '.ts' ? ['--import', new URL('../../node_modules/tsx/dist/loader.mjs', import.meta.url).href] : [];
  const result = spawnSync('unshare', ['--user', '--map-root-user', process.execPath, ...loader, scriptPath], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  const { stats, warnings } = JSON.parse(result.stdout.trim().split('\n').pop()!) as { stats: { devicesSkipped: number }; warnings: string[] };
  assert.equal(stats.devicesSkipped, 1);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /1 device nodes or fifos of the layer could not be created here and were skipped \(\/opt\/null: .*Operation not permitted/);
  assert.ok(stat(p, 'opt/pipe').isFIFO());
  assert.equal(read(p, 'opt/file'), 'f');
});

/* ---------- the index ---------- */

async function xxh64(data: string | Buffer): Promise<string> {
  const api = await xxhash();
  return api.h64Raw(Buffer.from(data)).toString(16).padStart(16, '0');
}

/** The index a walk of the root gives, without content hashes. */
function walkedIndex(root: string, ignore: IgnoreList): Map<string, unknown> {
  const records = new Map<string, unknown>();
  for (const entry of walk({ rootDir: root, ignore })) records.set(entry.path, recordFromStats(entry.stats, entry.linkTarget));
  return records;
}

function withoutHashes(index: FileIndex): Map<string, unknown> {
  const records = new Map<string, unknown>();
  for (const [path, record] of index.entries()) {
    const { contentHash: _hash, ...rest } = record;
    records.set(path, rest);
  }
  return records;
}

test('the index records every path with content hashes, matching a walk of the root after each layer', async (t) => {
  const p = place(t);
  const ignore = IgnoreList.of(['/proc', '/dev']);
  const index = new FileIndex();
  const big = Buffer.alloc(3 << 20, 'b');
  await apply(
    p,
    [
      { name: './', type: 'directory', mode: 0o755 },
      { name: 'etc/', type: 'directory' },
      { name: 'etc/passwd', content: 'root:x:0:0\n' },
      { name: 'etc/empty', content: '' },
      { name: 'etc/hard', type: 'link', linkname: 'etc/passwd' },
      { name: 'etc/hard2', type: 'link', linkname: 'etc/passwd' },
      { name: 'bin/sh', content: 'shell', mode: 0o755 },
      { name: 'bin/ln', type: 'symlink', linkname: 'sh' },
      { name: 'big', content: big },
      { name: 'fifo', type: 'fifo' },
      { name: 'var/lib/deep/file', content: 'deep' },
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 },
    ],
    { index, ignore },
  );
  assert.deepEqual(withoutHashes(index), walkedIndex(p.root, ignore));
  assert.equal(index.get('/etc/passwd')?.contentHash, await xxh64('root:x:0:0\n'));
  assert.equal(index.get('/etc/hard')?.contentHash, await xxh64('root:x:0:0\n'));
  assert.equal(index.get('/etc/empty')?.contentHash, await xxh64(''));
  assert.equal(index.get('/big')?.contentHash, await xxh64(big));
  assert.equal(index.get('/bin/ln')?.linkTarget, 'sh');
  assert.equal(index.get('/bin/ln')?.contentHash, undefined);
  assert.equal(index.get('/etc/passwd')?.nlink, 3);
  assert.equal(index.has('/dev'), false);

  await apply(
    p,
    [
      { name: 'etc/.wh.hard2', content: '' },
      { name: 'var/.wh.lib', content: '' },
      { name: 'bin/.wh..wh..opq', content: '' },
      { name: 'bin/busybox', content: 'bb' },
      { name: 'etc/passwd', content: 'changed\n' },
      { name: 'new/dir/file', content: 'n' },
    ],
    { index, ignore },
  );
  assert.equal(index.has('/var/lib'), false);
  assert.equal(index.has('/var/lib/deep/file'), false);
  assert.equal(index.has('/bin/sh'), false);
  assert.equal(index.has('/etc/hard2'), false);
  assert.equal(index.get('/etc/passwd')?.contentHash, await xxh64('changed\n'));
  assert.equal(index.get('/etc/hard')?.contentHash, await xxh64('root:x:0:0\n'));
  // The old inode lost two names; its surviving name is stale only in nlink and ctime.
  const expected = walkedIndex(p.root, ignore);
  const actual = withoutHashes(index);
  const hard = expected.get('/etc/hard') as { nlink: number };
  assert.equal(hard.nlink, 1);
  expected.delete('/etc/hard');
  actual.delete('/etc/hard');
  assert.deepEqual(actual, expected);
});

/* ---------- images ---------- */

test('extractImage applies layers in order and counts them', async (t) => {
  const p = place(t);
  const layers = [
    await layerOf([{ name: 'a', content: '1' }, { name: 'b', content: '1' }]),
    await layerOf([{ name: 'a', content: '2' }, { name: '.wh.b', content: '' }]),
    await layerOf([{ name: 'c/', type: 'directory' }, { name: 'c/d', content: '3' }]),
  ];
  const stats = await extractImage(imageOf(layers), options(p, { spoolDir: p.base }));
  assert.deepEqual(stats, { layers: 3, entries: 6, bytes: 4, skippedIgnored: 0, devicesSkipped: 0 });
  assert.equal(read(p, 'a'), '2');
  assert.equal(exists(p, 'b'), false);
  assert.equal(read(p, 'c/d'), '3');
  assertNothingOutside(p);
});

test('extractImage downloads the next layer while the current one extracts, one layer ahead', async (t) => {
  const p = place(t);
  const opened: number[] = [];
  let releaseFirst!: () => void;
  const secondOpened = new Promise<void>((resolve) => (releaseFirst = resolve));
  const tar1 = await tarOf([{ name: 'one', content: '1' }]);
  const blob1 = gzipSync(tar1);
  // The first layer's stream only ends once the second layer's download started.
  let waited = '';
  const first = layerOfTar(tar1, {
    open: async () => {
      opened.push(1);
      return Readable.from(
        (async function* () {
          yield blob1.subarray(0, 10);
          const timeout = new Promise<string>((resolve) => setTimeout(() => resolve('timed out'), 5000).unref());
          waited = await Promise.race([secondOpened.then(() => 'second layer opened'), timeout]);
          yield blob1.subarray(10);
        })(),
      );
    },
  });
  const tar2 = await tarOf([{ name: 'two', content: '2' }]);
  const second = layerOfTar(tar2, {
    open: async () => {
      opened.push(2);
      releaseFirst();
      return Readable.from([gzipSync(tar2)]);
    },
  });
  const tar3 = await tarOf([{ name: 'three', content: '3' }]);
  let firstDoneWhenThirdOpened = false;
  const third = layerOfTar(tar3, {
    open: async () => {
      opened.push(3);
      firstDoneWhenThirdOpened = exists(p, 'one');
      return Readable.from([gzipSync(tar3)]);
    },
  });
  await extractImage(imageOf([first, second, third]), options(p, { spoolDir: p.sentinel }));
  assert.deepEqual(opened, [1, 2, 3]);
  assert.equal(waited, 'second layer opened');
  // Never more than one layer ahead: the third starts once the first is applied.
  assert.equal(firstDoneWhenThirdOpened, true);
  assert.equal(read(p, 'one') + read(p, 'two') + read(p, 'three'), '123');
  // The spool files were unlinked at once.
  assert.deepEqual(readdirSync(p.sentinel), ['passwd']);
});

test('a spooled layer is extracted while its download is still running', async (t) => {
  const p = place(t);
  const first = await layerOf([{ name: 'first', content: '1' }]);
  const content = Buffer.alloc(3 << 20);
  for (let i = 0; i < content.length; i++) content[i] = (i * 2654435761) >>> 24;
  const tar = await tarOf([{ name: 'big', content }, { name: 'after', content: 'after' }]);
  const blob = gzipSync(tar, { level: 0 });
  let chunksSent = 0;
  let firstAppliedMidDownload = false;
  const slow = layerOfTar(tar, {
    open: async () =>
      Readable.from(
        (async function* () {
          for (let at = 0; at < blob.length; at += 64 << 10) {
            await new Promise((resolve) => setTimeout(resolve, 1));
            chunksSent++;
            if (at + (64 << 10) >= blob.length) firstAppliedMidDownload = exists(p, 'first');
            yield blob.subarray(at, at + (64 << 10));
          }
        })(),
      ),
  });
  // layerOfTar compressed with its own settings; serve the level-0 blob under matching metadata.
  const layer = { ...slow, digest: sha256(blob), size: blob.length } as Layer;
  await extractImage(imageOf([first, layer]), options(p, { spoolDir: p.sentinel }));
  assert.ok(chunksSent > 40);
  // So the second layer's extraction began on a partly written spool file.
  assert.equal(firstAppliedMidDownload, true);
  assert.ok(readFileSync(join(p.root, 'big')).equals(content));
  assert.equal(read(p, 'after'), 'after');
  assert.deepEqual(readdirSync(p.sentinel), ['passwd']);
});

test('a failing download of a later layer fails extractImage after the layers before it', async (t) => {
  const p = place(t);
  const good = await layerOf([{ name: 'good', content: 'g' }]);
  const tar = await tarOf([{ name: 'bad', content: 'b'.repeat(100_000) }]);
  const blob = gzipSync(tar);
  const bad = layerOfTar(tar, {
    open: async () =>
      Readable.from(
        (async function* () {
          yield blob.subarray(0, 100);
          throw new Error('connection reset by the registry');
        })(),
      ),
  });
  const never = await layerOf([{ name: 'never', content: 'n' }]);
  await assert.rejects(extractImage(imageOf([good, bad, never]), options(p, { spoolDir: p.sentinel })), /connection reset by the registry/);
  assert.equal(read(p, 'good'), 'g');
  assert.equal(exists(p, 'never'), false);
  assert.deepEqual(readdirSync(p.sentinel), ['passwd']);
});

test('without a usable spool directory, extractImage fetches layers one after the other', async (t) => {
  const p = place(t);
  const layers = [await layerOf([{ name: 'x', content: 'x' }]), await layerOf([{ name: 'y', content: 'y' }])];
  await extractImage(imageOf(layers), options(p, { spoolDir: join(p.base, 'does-not-exist') }));
  assert.equal(read(p, 'x') + read(p, 'y'), 'xy');
});
