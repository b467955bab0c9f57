/**
 * kiln's layer extraction checked against umoci's on the same images: the harness's busybox
 * image, and a derived one whose layers umoci wrote itself (whiteouts of files and
 * directories) plus one written by hand with what umoci does not produce (opaque markers in
 * both orders, type replacements, paths through a lower symlink, long names).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack as tarPack } from 'tar-stream';
import { layoutImage } from '../src/oci/layout.js';
import { extractImage } from '../src/snapshot/extract.js';
import { FileIndex, recordFromStats } from '../src/snapshot/file-index.js';
import { IgnoreList } from '../src/snapshot/ignore.js';
import { walk } from '../src/snapshot/walk.js';
import { busyboxLayout, umociUnpack } from './harness/index.js';
import { describeTree, treeDifferences, type TreeNode } from './harness/tree.js';
import { umociRepack } from './harness/umoci.js';

const isRoot = process.getuid?.() === 0;

function hasTool(tool: string): boolean {
  return spawnSync(tool, ['--version'], { stdio: 'ignore' }).error === undefined;
}

function requirements(t: TestContext): boolean {
  if (!isRoot) {
    t.skip('needs root: owners and devices are compared exactly');
    return false;
  }
  if (!hasTool('umoci')) {
    t.skip('umoci not installed');
    return false;
  }
  return true;
}

function workDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-extract-it-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * The shared description of every path (type, mode, owner, size, content, link target,
 * device), plus what extraction must also get right and the snapshot tests leave out: the
 * mtime of everything but directories, and which paths share an inode.
 */
interface Node extends TreeNode {
  mtimeMs?: number;
  /** The first path (in sorted order) sharing this path's inode, for hardlinks. */
  sameAs?: string;
}

function tree(root: string): Map<string, Node> {
  const nodes: Map<string, Node> = describeTree(root);
  const firstByInode = new Map<number, string>();
  // describeTree lists a directory's entries in sorted order, depth first.
  for (const [path, node] of nodes) {
    if (node.type === 'dir') continue;
    const stats = lstatSync(join(root, path));
    node.mtimeMs = stats.mtimeMs;
    if (stats.nlink < 2) continue;
    const first = firstByInode.get(stats.ino);
    if (first === undefined) firstByInode.set(stats.ino, path);
    else node.sameAs = first;
  }
  return nodes;
}

function assertSameTree(kiln: Map<string, Node>, umoci: Map<string, Node>): void {
  assert.deepEqual(treeDifferences(umoci, kiln), [], 'umoci (layer) and kiln (disk) differ');
  const differing: { path: string; field: string; umoci: unknown; kiln: unknown }[] = [];
  for (const [path, node] of kiln) {
    const other = umoci.get(path)!;
    for (const field of ['mtimeMs', 'sameAs'] as const) {
      if (node[field] !== other[field]) differing.push({ path, field, umoci: other[field], kiln: node[field] });
    }
  }
  assert.deepEqual(differing, []);
}

async function compareWithUmoci(layoutDir: string, tag: string, work: string): Promise<Map<string, Node>> {
  const bundle = join(work, 'umoci-bundle');
  await umociUnpack(layoutDir, tag, bundle);
  const root = join(work, 'kiln-root');
  const index = new FileIndex();
  const ignore = IgnoreList.of([]);
  const image = await layoutImage(layoutDir, { refName: tag });
  const stats = await extractImage(image, { rootDir: root, ignore, index, spoolDir: work });
  assert.equal(stats.layers, image.layers.length);
  assert.equal(stats.devicesSkipped, 0);
  // Both leave the root itself out: umoci gives its bundle's root mode 0755 whatever the layers say.
  const kilnTree = tree(root);
  assertSameTree(kilnTree, tree(join(bundle, 'rootfs')));

  // The index describes exactly what a walk finds, and every file has its content hash.
  const walked = new Map<string, unknown>();
  for (const entry of walk({ rootDir: root, ignore })) walked.set(entry.path, recordFromStats(entry.stats, entry.linkTarget));
  const recorded = new Map<string, unknown>();
  for (const [path, record] of index.entries()) {
    const { contentHash, ...rest } = record;
    if (record.kind === 'file') assert.match(contentHash ?? '', /^[0-9a-f]{16}$/, path);
    recorded.set(path, rest);
  }
  // A file whose hardlinked partner a later layer removed keeps a stale link count and ctime.
  for (const [path, record] of walked) {
    const mine = recorded.get(path) as { kind: string; nlink: number } | undefined;
    if (mine?.kind === 'file' && mine.nlink !== (record as { nlink: number }).nlink) recorded.set(path, record);
  }
  assert.deepEqual(recorded, walked);
  return kilnTree;
}

test('the busybox image extracts exactly as umoci unpacks it', async (t) => {
  if (!requirements(t)) return;
  const layout = await busyboxLayout();
  const work = workDir(t);
  const kilnTree = await compareWithUmoci(layout.dir, layout.tag, work);
  assert.ok(kilnTree.size > 250, `only ${kilnTree.size} paths`);
  assert.equal(kilnTree.get('/bin/sh')?.link, '/bin/busybox');
  assert.equal(kilnTree.get('/tmp')?.mode, 0o1777);
  assert.equal(kilnTree.get('/root')?.mode, 0o700);
});

async function handMadeLayer(): Promise<Buffer> {
  const archive = tarPack();
  const mtime = new Date(1_650_000_000_000);
  const add = (header: Record<string, unknown>, content?: string) => {
    const full = { mtime, uid: 0, gid: 0, ...header };
    if (content !== undefined) archive.entry(full as never, content);
    else archive.entry(full as never);
  };
  // Opaque marker before the directory's new content, and after it.
  add({ name: 'opt/first/', type: 'directory', mode: 0o755 });
  add({ name: 'opt/first/.wh..wh..opq', type: 'file', mode: 0o644 }, '');
  add({ name: 'opt/first/new', type: 'file', mode: 0o644 }, 'first new\n');
  add({ name: 'opt/second/', type: 'directory', mode: 0o750, uid: 1000, gid: 1000 });
  add({ name: 'opt/second/new', type: 'file', mode: 0o644 }, 'second new\n');
  add({ name: 'opt/second/kept-dir/', type: 'directory', mode: 0o755 });
  add({ name: 'opt/second/kept-dir/fresh', type: 'file', mode: 0o644 }, 'fresh\n');
  add({ name: 'opt/second/lower-dir/only-child', type: 'file', mode: 0o644 }, 'no directory entry above me\n');
  add({ name: 'opt/second/.wh..wh..opq', type: 'file', mode: 0o644 }, '');
  // Type replacements in both directions.
  add({ name: 'opt/was-dir', type: 'file', mode: 0o600 }, 'now a file\n');
  add({ name: 'opt/was-file/', type: 'directory', mode: 0o711 });
  add({ name: 'opt/was-file/inside', type: 'file', mode: 0o644 }, 'inside\n');
  // A path through the lower layer's symlink lands at its target.
  add({ name: 'lib/through-symlink', type: 'file', mode: 0o644 }, 'via lib\n');
  // Whiteouts of a file and of a whole directory.
  add({ name: 'etc/.wh.group', type: 'file', mode: 0o644 }, '');
  add({ name: 'opt/.wh.doomed', type: 'file', mode: 0o644 }, '');
  // A long name (pax) and a hardlink to a file of a lower layer.
  add({ name: 'opt/' + 'long-'.repeat(40) + 'name', type: 'file', mode: 0o644 }, 'long\n');
  add({ name: 'opt/hard-to-lower', type: 'link', linkname: 'opt/app/data' });
  add({ name: './opt/dot-slash', type: 'file', mode: 0o4711, uid: 0, gid: 0 }, 'setuid\n');
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive as unknown as AsyncIterable<Buffer>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

test('a derived image with umoci-made whiteouts and a hand-made layer extracts as umoci unpacks it', async (t) => {
  if (!requirements(t)) return;
  const layout = await busyboxLayout();
  const work = workDir(t);
  const layoutDir = join(work, 'layout');
  // The cached layout is shared: work on a copy.
  execFileSync('cp', ['-a', layout.dir, layoutDir]);
  const bundle = join(work, 'edit-bundle');
  await umociUnpack(layoutDir, layout.tag, bundle);
  const rootfs = join(bundle, 'rootfs');

  // Layer 2, written by umoci: owners, special modes, hardlinks, devices, deletions.
  mkdirSync(join(rootfs, 'opt/app/sub'), { recursive: true });
  writeFileSync(join(rootfs, 'opt/app/data'), 'data\n');
  writeFileSync(join(rootfs, 'opt/app/owned'), 'owned\n');
  chownSync(join(rootfs, 'opt/app/owned'), 1000, 1001);
  linkSync(join(rootfs, 'opt/app/data'), join(rootfs, 'opt/app/data-link'));
  writeFileSync(join(rootfs, 'opt/app/sub/setuid'), '#!/bin/sh\n');
  chownSync(join(rootfs, 'opt/app/sub/setuid'), 1000, 1000);
  chmodSync(join(rootfs, 'opt/app/sub/setuid'), 0o4755);
  chownSync(join(rootfs, 'opt/app'), 1234, 5678);
  chmodSync(join(rootfs, 'opt/app'), 0o2770);
  execFileSync('mknod', [join(rootfs, 'opt/null'), 'c', '1', '3']);
  execFileSync('mkfifo', [join(rootfs, 'opt/fifo')]);
  for (const dir of ['first', 'second']) {
    mkdirSync(join(rootfs, `opt/${dir}/lower-dir`), { recursive: true });
    writeFileSync(join(rootfs, `opt/${dir}/old`), 'old\n');
    writeFileSync(join(rootfs, `opt/${dir}/lower-dir/old`), 'old\n');
  }
  mkdirSync(join(rootfs, 'opt/second/kept-dir'));
  writeFileSync(join(rootfs, 'opt/second/kept-dir/stale'), 'stale\n');
  mkdirSync(join(rootfs, 'opt/was-dir/child'), { recursive: true });
  writeFileSync(join(rootfs, 'opt/was-dir/child/x'), 'x');
  writeFileSync(join(rootfs, 'opt/was-file'), 'file');
  mkdirSync(join(rootfs, 'opt/doomed/deep'), { recursive: true });
  writeFileSync(join(rootfs, 'opt/doomed/deep/file'), 'doomed');
  mkdirSync(join(rootfs, 'usr/lib'), { recursive: true });
  symlinkSync('usr/lib', join(rootfs, 'lib'));
  unlinkSync(join(rootfs, 'bin/ls'));
  rmSync(join(rootfs, 'root'), { recursive: true });
  await umociRepack(layoutDir, layout.tag, bundle, 'kiln extract test: layer 2');

  // Layer 3, removing some of layer 2 again through umoci's own whiteouts.
  unlinkSync(join(rootfs, 'opt/app/data-link'));
  rmSync(join(rootfs, 'opt/app/sub'), { recursive: true });
  await umociRepack(layoutDir, layout.tag, bundle, 'kiln extract test: layer 3');

  // Layer 4, by hand.
  const tarPath = join(work, 'layer4.tar');
  writeFileSync(tarPath, await handMadeLayer());
  execFileSync('umoci', ['raw', 'add-layer', '--image', `${layoutDir}:${layout.tag}`, tarPath]);

  const compare = join(work, 'compare');
  mkdirSync(compare);
  const kilnTree = await compareWithUmoci(layoutDir, layout.tag, compare);
  // The comparison is only as good as what the layers hold: check they held it.
  assert.equal(kilnTree.get('/opt/app')?.mode, 0o2770);
  assert.deepEqual([kilnTree.get('/opt/app')?.uid, kilnTree.get('/opt/app')?.gid], [1234, 5678]);
  assert.equal(kilnTree.get('/opt/null')?.type, 'char');
  assert.equal(kilnTree.get('/opt/fifo')?.type, 'fifo');
  assert.equal(kilnTree.get('/opt/dot-slash')?.mode, 0o4711);
  assert.deepEqual([kilnTree.get('/opt/app/owned')?.uid, kilnTree.get('/opt/app/owned')?.gid], [1000, 1001]);
  assert.equal(kilnTree.get('/opt/hard-to-lower')?.sameAs, '/opt/app/data');
  assert.equal(kilnTree.has('/opt/app/data-link'), false);
  assert.equal(kilnTree.has('/opt/app/sub'), false);
  assert.equal(kilnTree.has('/bin/ls'), false);
  assert.equal(kilnTree.has('/root'), false);
  assert.equal(kilnTree.has('/etc/group'), false);
  assert.equal(kilnTree.has('/opt/doomed'), false);
  assert.deepEqual([...kilnTree.keys()].filter((p) => p.startsWith('/opt/first/')), ['/opt/first/new']);
  assert.deepEqual(
    [...kilnTree.keys()].filter((p) => p.startsWith('/opt/second/')),
    ['/opt/second/kept-dir', '/opt/second/kept-dir/fresh', '/opt/second/lower-dir', '/opt/second/lower-dir/only-child', '/opt/second/new'],
  );
  assert.equal(kilnTree.get('/opt/was-dir')?.type, 'file');
  assert.equal(kilnTree.get('/opt/was-file')?.type, 'dir');
  assert.equal(kilnTree.get('/lib')?.type, 'symlink');
  assert.equal(kilnTree.get('/usr/lib/through-symlink')?.type, 'file');
});
