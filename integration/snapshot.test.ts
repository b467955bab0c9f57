/**
 * kiln's snapshots checked end to end against umoci: a Debian bookworm base extracted by kiln,
 * a scripted build step's changes, one snapshot per mode written as a layer and appended to
 * the base, then `umoci unpack` of the result compared with the directory kiln snapshotted.
 * In full mode the two trees must be equal; redo and time mode may differ only by what the
 * README says each can miss. Also: layers that try to write outside the root are refused or
 * kept inside it.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pack as tarPack } from 'tar-stream';
import { layoutImage, writeLayout } from '../src/oci/layout.js';
import { appendLayers } from '../src/oci/mutate.js';
import { extractImage, extractLayer } from '../src/snapshot/extract.js';
import { FileIndex, type ChangeSet } from '../src/snapshot/file-index.js';
import type { SnapshotMode } from '../src/snapshot/hasher.js';
import { IgnoreList } from '../src/snapshot/ignore.js';
import { writeLayer } from '../src/snapshot/layer-writer.js';
import { Snapshotter } from '../src/snapshot/snapshotter.js';
import { KilnError } from '../src/util/errors.js';
import { debianLayout, umociUnpack } from './harness/index.js';
import { describeTree, treeDifferences, type TreeDifference, type TreeNode } from './harness/tree.js';

const isRoot = process.getuid?.() === 0;

function hasTool(tool: string): boolean {
  return spawnSync(tool, ['--version'], { stdio: 'ignore' }).error === undefined;
}

function requirements(t: TestContext): boolean {
  if (!isRoot) {
    t.skip('needs root: owners and device nodes are part of the scenario (snapshot-userns.test.ts covers rootless)');
    return false;
  }
  for (const tool of ['umoci', 'debootstrap', 'mknod']) {
    if (!hasTool(tool)) {
      t.skip(`${tool} not installed (npm run setup installs it)`);
      return false;
    }
  }
  return true;
}

function workDir(t: TestContext, label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `kiln-snapshot-it-${label}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const sha256 = (bytes: Buffer | string): string => createHash('sha256').update(bytes).digest('hex');

/** Drops what `ignore` covers from umoci's tree: kiln never extracts those paths. */
function withoutIgnored(nodes: Map<string, TreeNode>, ignore: IgnoreList): Map<string, TreeNode> {
  return new Map([...nodes].filter(([path]) => !ignore.isIgnored(path)));
}

const LONG_NAME = 'long-name-'.repeat(20);

/** What the scripted step did that some modes cannot see. */
interface StepFacts {
  editedBefore: string;
  editedAfter: string;
}

/**
 * A RUN step's worth of changes in `root`, made with plain system calls: every kind of entry
 * and every kind of metadata change a layer can carry.
 */
function changeTree(root: string): StepFacts {
  const at = (path: string) => join(root, path);
  // Added: a file in a new directory with another owner, a new pair of hardlinks, a long name.
  mkdirSync(at('opt/app'), { mode: 0o750 });
  chownSync(at('opt/app'), 1000, 1000);
  writeFileSync(at('opt/app/added.txt'), 'added by the step\n');
  writeFileSync(at('opt/app/data'), 'shared by two names\n');
  linkSync(at('opt/app/data'), at('opt/app/data-link'));
  writeFileSync(at(`opt/app/${LONG_NAME}`), 'a 200-character name\n');
  symlinkSync('added.txt', at('opt/app/added-symlink'));
  mkdirSync(at('opt/app/empty-dir'));
  // A hardlink to a file of the base image.
  linkSync(at('etc/profile'), at('etc/profile-hardlink'));
  // A device node outside /dev, a fifo, setuid and setgid files.
  execFileSync('mknod', [at('opt/null'), 'c', '1', '3']);
  execFileSync('mkfifo', [at('opt/fifo')]);
  writeFileSync(at('usr/local/bin/kiln-setuid'), '#!/bin/sh\necho setuid\n');
  chmodSync(at('usr/local/bin/kiln-setuid'), 0o4755);
  writeFileSync(at('usr/local/bin/kiln-setgid'), '#!/bin/sh\necho setgid\n');
  chownSync(at('usr/local/bin/kiln-setgid'), 1000, 50);
  chmodSync(at('usr/local/bin/kiln-setgid'), 0o2750);

  // Modified in place with the same size, then its times put back: only ctime tells.
  const edited = at('etc/debian_version');
  const before = readFileSync(edited);
  const times = statSync(edited);
  const after = Buffer.from('x'.repeat(before.length - 1) + '\n');
  assert.notDeepEqual(after, before);
  writeFileSync(edited, after);
  utimesSync(edited, times.atime, times.mtime);
  assert.equal(statSync(edited).mtimeMs, times.mtimeMs);

  // Metadata only.
  chmodSync(at('etc/motd'), 0o600);
  chownSync(at('etc/issue'), 1234, 5678);

  // Deleted: a file and a directory tree.
  unlinkSync(at('etc/host.conf'));
  rmSync(at('usr/share/doc/bash'), { recursive: true });

  // Replaced: a directory by a file, a file by a symlink.
  rmSync(at('usr/share/doc/dpkg'), { recursive: true });
  writeFileSync(at('usr/share/doc/dpkg'), 'was a directory\n');
  unlinkSync(at('etc/issue.net'));
  symlinkSync('issue', at('etc/issue.net'));
  return { editedBefore: sha256(before), editedAfter: sha256(after) };
}

/** The README's "what it can miss", for this scenario. */
function documentedMisses(mode: SnapshotMode, facts: StepFacts): TreeDifference[] {
  const edit: TreeDifference = { path: '/etc/debian_version', field: 'sha256', layer: facts.editedBefore, disk: facts.editedAfter };
  switch (mode) {
    case 'full':
      return [];
    case 'redo':
      // An edit that keeps size and mtime.
      return [edit];
    case 'time':
      // chmod, chown, and edits that restore the mtime.
      return [
        edit,
        { path: '/etc/issue', field: 'uid', layer: 0, disk: 1234 },
        { path: '/etc/issue', field: 'gid', layer: 0, disk: 5678 },
        { path: '/etc/motd', field: 'mode', layer: 0o644, disk: 0o600 },
      ];
  }
}

/** Full mode reports exactly what the step changed: nothing it left alone, nothing below a deleted path. */
const FULL_CHANGES: ChangeSet = {
  changed: [
    '/etc/debian_version',
    '/etc/issue',
    '/etc/issue.net',
    '/etc/motd',
    '/etc/profile-hardlink',
    '/opt/app',
    '/opt/app/added-symlink',
    '/opt/app/added.txt',
    '/opt/app/data',
    '/opt/app/data-link',
    '/opt/app/empty-dir',
    `/opt/app/${LONG_NAME}`,
    '/opt/fifo',
    '/opt/null',
    '/usr/local/bin/kiln-setgid',
    '/usr/local/bin/kiln-setuid',
    '/usr/share/doc/dpkg',
  ],
  deleted: ['/etc/host.conf', '/usr/share/doc/bash'],
};

let debian: ReturnType<typeof debianLayout> | undefined;

async function snapshotScenario(t: TestContext, mode: SnapshotMode): Promise<void> {
  // Shared by the three modes: debootstrap runs once, or fails each test with its reason.
  const layout = await (debian ??= debianLayout());
  const work = workDir(t, mode);
  const root = join(work, 'root');
  const ignore = await IgnoreList.create({ rootDir: root });
  const index = new FileIndex();
  const base = await layoutImage(layout.dir, { refName: layout.tag });
  const extracted = await extractImage(base, { rootDir: root, ignore, index, spoolDir: work });
  assert.equal(extracted.layers, 1);
  assert.ok(extracted.skippedIgnored > 0, 'the Debian layer has entries under /dev and /run, which are ignored');
  assert.equal(extracted.devicesSkipped, 0);
  for (const path of ['/dev', '/proc', '/sys', '/var/run']) assert.equal(existsSync(join(root, path)), false, `${path} is ignored and must not be extracted`);
  // kaniko's --ignore-var-run leaves /run to the image (Debian's /var/run points there).
  assert.ok(existsSync(join(root, 'run')), '/run belongs to the image');

  const snapshotter = new Snapshotter({ rootDir: root, ignore, mode });
  await snapshotter.init(index);
  const facts = changeTree(root);
  const changes = await snapshotter.scan();
  t.diagnostic(`${mode}: changed ${JSON.stringify(changes.changed)} deleted ${JSON.stringify(changes.deleted)}`);
  if (mode === 'full') assert.deepEqual(changes, FULL_CHANGES);
  // Whatever else a mode adds, it never reports the untouched base.
  assert.ok(!changes.changed.includes('/usr/bin/dpkg') && changes.changed.length < 100, `${changes.changed.length} paths changed`);

  const written = await writeLayer({ rootDir: root, changes, index: snapshotter.index }, { compression: 'gzip', reproducible: false, flavor: 'oci', tmpDir: join(work, 'layers') });
  assert.equal(written.kind, 'layer');
  if (written.kind !== 'layer') return;
  snapshotter.recordContent(written.contentHashes);
  await snapshotter.close();

  const image = appendLayers(base, [{ layer: written.layer, history: { created_by: `kiln snapshot test (${mode})` } }]);
  const out = join(work, 'layout');
  await writeLayout(out, [{ image, refName: 'snapshot' }]);
  const bundle = join(work, 'bundle');
  await umociUnpack(out, 'snapshot', bundle);
  const unpacked = join(bundle, 'rootfs');

  const layers = describeTree(unpacked);
  // Device nodes of the base are under /dev, which kiln leaves out: check they were there.
  assert.equal(layers.get('/dev/null')?.type, 'char');
  assert.equal(layers.get('/var/run')?.link, '/run');
  const found = treeDifferences(withoutIgnored(layers, ignore), describeTree(root));
  assert.deepEqual(found, documentedMisses(mode, facts));

  // What the comparison cannot show: the new hardlink pair is still one file.
  assert.equal(lstatSync(join(unpacked, 'opt/app/data-link')).ino, lstatSync(join(unpacked, 'opt/app/data')).ino);
  // A new name for an unchanged base file brings the base name into the layer: still one file.
  assert.equal(lstatSync(join(unpacked, 'etc/profile-hardlink')).ino, lstatSync(join(unpacked, 'etc/profile')).ino, '/etc/profile-hardlink is a hardlink of /etc/profile');
  assert.equal(layers.get('/opt/null')?.rdev, lstatSync('/dev/null').rdev);
  assert.equal(layers.get('/usr/local/bin/kiln-setuid')?.mode, 0o4755);
  assert.equal(layers.get('/usr/local/bin/kiln-setgid')?.mode, 0o2750);
  assert.equal(layers.get(`/opt/app/${LONG_NAME}`)?.type, 'file');
  assert.equal(layers.has('/usr/share/doc/bash'), false);
}

for (const mode of ['full', 'redo', 'time'] as const) {
  test(`${mode} mode: base + snapshot layer unpacked by umoci ${mode === 'full' ? 'equals the snapshotted tree' : "differs only by the mode's documented misses"}`, async (t) => {
    if (!requirements(t)) return;
    await snapshotScenario(t, mode);
  });
}

/* ---------- layers that try to leave the root ---------- */

type Header = Parameters<ReturnType<typeof tarPack>['entry']>[0];

async function tarOf(entries: Array<[Header, string?]>): Promise<Buffer> {
  const archive = tarPack();
  for (const [header, content] of entries) {
    const full = { mtime: new Date(1_700_000_000_000), uid: 0, gid: 0, mode: 0o644, ...header };
    if (content !== undefined) archive.entry(full, content);
    else archive.entry(full);
  }
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive as unknown as AsyncIterable<Buffer>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** Every path below `dir`, relative, sorted. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const visit = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const path = rel === '' ? name : `${rel}/${name}`;
      out.push(path);
      if (lstatSync(join(dir, path)).isDirectory()) visit(path);
    }
  };
  visit('');
  return out;
}

/**
 * A work directory with `root` (where the layer goes) and `outside` (a directory and a file
 * the layer aims at), applies `layer`, and returns what extractLayer threw plus what is then
 * below the work directory outside the root.
 */
async function applyHostile(t: TestContext, label: string, layer: (outside: string) => Array<[Header, string?]>): Promise<{ error: unknown; root: string; outside: string; outsideNow: string[]; outsideBefore: string[] }> {
  const work = workDir(t, `hostile-${label}`);
  const root = join(work, 'root');
  const outside = join(work, 'outside');
  mkdirSync(root);
  mkdirSync(outside);
  writeFileSync(join(outside, 'precious'), 'precious\n');
  const outsideOfRoot = () => listing(work).filter((p) => p !== 'root' && !p.startsWith('root/'));
  const outsideBefore = outsideOfRoot();
  let error: unknown;
  try {
    await extractLayer(Readable.from(await tarOf(layer(outside))), { rootDir: root, ignore: IgnoreList.of([]), name: `hostile layer ${label}` });
  } catch (err) {
    error = err;
  }
  assert.equal(readFileSync(join(outside, 'precious'), 'utf8'), 'precious\n');
  return { error, root, outside, outsideNow: outsideOfRoot(), outsideBefore };
}

function assertRefused(error: unknown, pattern: RegExp): void {
  assert.ok(error instanceof KilnError, `expected a KilnError, got ${String(error)}`);
  assert.equal(error.code, 'INVALID_LAYER');
  assert.match(error.message, pattern);
}

test('a layer entry named ../evil is refused and nothing is written outside the root', async (t) => {
  const result = await applyHostile(t, 'dotdot', () => [
    [{ name: 'fine', type: 'file' }, 'fine\n'],
    [{ name: '../evil', type: 'file' }, 'evil\n'],
    [{ name: 'sub/../../evil2', type: 'file' }, 'evil\n'],
  ]);
  assertRefused(result.error, /outside the root filesystem/);
  assert.deepEqual(result.outsideNow, result.outsideBefore);
});

test('a hardlink to ../../etc/passwd is refused and nothing is linked', async (t) => {
  const result = await applyHostile(t, 'hardlink', () => [[{ name: 'passwd', type: 'link', linkname: '../../etc/passwd' }]]);
  assertRefused(result.error, /hardlink \/passwd points at "\.\.\/\.\.\/etc\/passwd", outside the root filesystem/);
  assert.deepEqual(listing(result.root), []);
  assert.deepEqual(result.outsideNow, result.outsideBefore);
});

test('a hardlink through a symlink to / is refused', async (t) => {
  const result = await applyHostile(t, 'hardlink-symlink', () => [
    [{ name: 'link', type: 'symlink', linkname: '/' }],
    [{ name: 'passwd', type: 'link', linkname: 'link/etc/passwd' }],
  ]);
  assertRefused(result.error, /through a symlink/);
  assert.deepEqual(listing(result.root), ['link']);
  assert.deepEqual(result.outsideNow, result.outsideBefore);
});

test('entries below a symlink to / or to a host directory stay inside the root, as under chroot', async (t) => {
  // kiln resolves a layer's symlinks as a chroot would (an absolute target starts at the
  // root, `..` stops there): link/evil is the root's own /evil, not the host's.
  const result = await applyHostile(t, 'symlink', (outside) => [
    [{ name: 'link', type: 'symlink', linkname: '/' }],
    [{ name: 'link/evil', type: 'file' }, 'evil\n'],
    [{ name: 'up', type: 'symlink', linkname: '../../../..' }],
    [{ name: 'up/evil-up', type: 'file' }, 'evil\n'],
    [{ name: 'host', type: 'symlink', linkname: outside }],
    [{ name: 'host/evil-host', type: 'file' }, 'evil\n'],
    // A file entry over a symlink replaces the symlink; it never writes through it.
    [{ name: 'precious', type: 'symlink', linkname: join(outside, 'precious') }],
    [{ name: 'precious', type: 'file' }, 'replaced\n'],
  ]);
  assert.equal(result.error, undefined);
  assert.deepEqual(result.outsideNow, result.outsideBefore);
  assert.equal(readFileSync(join(result.root, 'evil'), 'utf8'), 'evil\n');
  assert.equal(readFileSync(join(result.root, 'evil-up'), 'utf8'), 'evil\n');
  assert.equal(readFileSync(join(result.root, result.outside.slice(1), 'evil-host'), 'utf8'), 'evil\n');
  assert.equal(lstatSync(join(result.root, 'precious')).isFile(), true);
  assert.equal(readFileSync(join(result.root, 'precious'), 'utf8'), 'replaced\n');
});
