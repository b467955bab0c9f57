/**
 * kiln's extraction and full-mode snapshot run rootless: as an unprivileged user (nobody)
 * that is "root" inside a user namespace mapping only its own uid and gid, which is how kiln
 * runs in a pod without privileges. The test spawns this same file as that child; the child
 * extracts the Debian base, makes a build step's changes, snapshots them and writes base +
 * layer as an OCI layout; the test then unpacks the layout with umoci (as real root) and
 * compares it with the child's tree.
 *
 * What degrades there, as in other rootless builders: the namespace maps no other ids, so
 * files the image gives to another owner (Debian's shadow, mail, staff, utmp groups) are
 * extracted owned by the user kiln runs as, with one warning; their modes (setgid included)
 * are kept. The step itself cannot chown or mknod either, so its changes leave those out.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
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
import { fileURLToPath } from 'node:url';
import { layoutImage, writeLayout } from '../src/oci/layout.js';
import { appendLayers } from '../src/oci/mutate.js';
import { extractImage, type ExtractStats } from '../src/snapshot/extract.js';
import { FileIndex, type ChangeSet } from '../src/snapshot/file-index.js';
import { IgnoreList } from '../src/snapshot/ignore.js';
import { writeLayer } from '../src/snapshot/layer-writer.js';
import { Snapshotter } from '../src/snapshot/snapshotter.js';
import { createLogger } from '../src/util/log.js';
import { debianLayout, umociUnpack } from './harness/index.js';
import { describeTree, treeDifferences, type TreeDifference } from './harness/tree.js';

/** The unprivileged user the child runs as: Debian's nobody/nogroup. */
const OUTER_ID = 65534;
const CHILD_ENV = 'KILN_SNAPSHOT_USERNS_CHILD';
const LONG_NAME = 'long-name-'.repeat(20);

/** What the child reports on its last line of stdout. */
interface ChildReport {
  uidMap: number[];
  gidMap: number[];
  uid: number;
  extracted: ExtractStats;
  warnings: string[];
  chownError: string;
  mknodError: string;
  changes: ChangeSet;
  layer: string;
}

/* ---------- the child: kiln's work, inside the user namespace ---------- */

/** The build step, without what an unprivileged user cannot do (chown, mknod). */
function changeTree(root: string): void {
  const at = (path: string) => join(root, path);
  mkdirSync(at('opt/app'), { mode: 0o750 });
  writeFileSync(at('opt/app/added.txt'), 'added by the step\n');
  writeFileSync(at('opt/app/data'), 'shared by two names\n');
  linkSync(at('opt/app/data'), at('opt/app/data-link'));
  writeFileSync(at(`opt/app/${LONG_NAME}`), 'a 200-character name\n');
  execFileSync('mkfifo', [at('opt/fifo')]);
  writeFileSync(at('usr/local/bin/kiln-setuid'), '#!/bin/sh\necho setuid\n');
  chmodSync(at('usr/local/bin/kiln-setuid'), 0o4755);
  const edited = at('etc/debian_version');
  const before = readFileSync(edited);
  const times = statSync(edited);
  writeFileSync(edited, 'x'.repeat(before.length - 1) + '\n');
  utimesSync(edited, times.atime, times.mtime);
  chmodSync(at('etc/motd'), 0o600);
  unlinkSync(at('etc/host.conf'));
  rmSync(at('usr/share/doc/bash'), { recursive: true });
  rmSync(at('usr/share/doc/dpkg'), { recursive: true });
  writeFileSync(at('usr/share/doc/dpkg'), 'was a directory\n');
  unlinkSync(at('etc/issue.net'));
  symlinkSync('issue', at('etc/issue.net'));
}

async function child(): Promise<void> {
  const work = process.env.KILN_USERNS_WORK!;
  const warnings: string[] = [];
  const destination = { write: (line: string) => warnings.push(String((JSON.parse(line) as { msg: unknown }).msg)) };
  const logger = createLogger({ level: 'warn', format: 'json', destination: destination as unknown as NodeJS.WritableStream });
  const root = join(work, 'root');
  const ignore = await IgnoreList.create({ rootDir: root });
  const index = new FileIndex();
  const base = await layoutImage(process.env.KILN_USERNS_LAYOUT!, { refName: process.env.KILN_USERNS_TAG! });
  const extracted = await extractImage(base, { rootDir: root, ignore, index, spoolDir: work, logger });

  // Evidence that this is rootless: the namespace refuses other owners and device nodes.
  let chownError = 'none';
  try { chownSync(join(root, 'etc/issue'), 1234, 5678); } catch (err) { chownError = String((err as NodeJS.ErrnoException).code); }
  const mknod = spawnSync('mknod', [join(work, 'null'), 'c', '1', '3'], { encoding: 'utf8' });
  const mknodError = mknod.status === 0 ? 'none' : mknod.stderr.trim();

  const snapshotter = new Snapshotter({ rootDir: root, ignore, mode: 'full', logger });
  await snapshotter.init(index);
  changeTree(root);
  const changes = await snapshotter.scan();
  const written = await writeLayer({ rootDir: root, changes, index: snapshotter.index }, { compression: 'gzip', flavor: 'oci', tmpDir: join(work, 'layers'), logger });
  if (written.kind === 'layer') {
    snapshotter.recordContent(written.contentHashes);
    const image = appendLayers(base, [{ layer: written.layer, history: { created_by: 'kiln rootless snapshot test' } }]);
    await writeLayout(join(work, 'layout'), [{ image, refName: 'snapshot' }]);
  }
  await snapshotter.close();
  const idMap = (file: string) => readFileSync(file, 'utf8').trim().split(/\s+/).map(Number);
  const report: ChildReport = {
    uidMap: idMap('/proc/self/uid_map'),
    gidMap: idMap('/proc/self/gid_map'),
    uid: process.getuid!(),
    extracted,
    warnings,
    chownError,
    mknodError,
    changes,
    layer: written.kind,
  };
  process.stdout.write('\n' + JSON.stringify(report) + '\n');
}

/* ---------- the test: sets up, runs the child, checks with umoci ---------- */

function hasTool(tool: string, args = ['--version']): boolean {
  return spawnSync(tool, args, { stdio: 'ignore' }).error === undefined;
}

/** Runs this file as the child: nobody, then a user namespace where nobody is root. */
function runChild(work: string, layout: { dir: string; tag: string }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const self = fileURLToPath(import.meta.url);
  const node = self.endsWith('.ts') ? [process.execPath, '--import', 'tsx', self] : [process.execPath, self];
  const args = ['--reuid', String(OUTER_ID), '--regid', String(OUTER_ID), '--clear-groups', '--', 'unshare', '--user', '--map-root-user', '--', ...node];
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: work,
    // tsx and kiln keep temporary files here; the user's own directory, not root's.
    TMPDIR: work,
    [CHILD_ENV]: '1',
    KILN_USERNS_WORK: work,
    KILN_USERNS_LAYOUT: layout.dir,
    KILN_USERNS_TAG: layout.tag,
  };
  return new Promise((resolve, reject) => {
    const proc = spawn('setpriv', args, { cwd: process.cwd(), env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
    proc.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    proc.on('error', reject);
    proc.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const EXPECTED_CHANGES: ChangeSet = {
  changed: [
    '/etc/debian_version',
    '/etc/issue.net',
    '/etc/motd',
    '/opt/app',
    '/opt/app/added.txt',
    '/opt/app/data',
    '/opt/app/data-link',
    `/opt/app/${LONG_NAME}`,
    '/opt/fifo',
    '/usr/local/bin/kiln-setuid',
    '/usr/share/doc/dpkg',
  ],
  deleted: ['/etc/host.conf', '/usr/share/doc/bash'],
};

function requirements(t: TestContext): boolean {
  if (process.getuid?.() !== 0) {
    t.skip('needs root to build the Debian image and to switch to an unprivileged user');
    return false;
  }
  for (const tool of ['umoci', 'unshare', 'setpriv', 'debootstrap']) {
    if (!hasTool(tool)) {
      t.skip(`${tool} not installed (npm run setup installs it)`);
      return false;
    }
  }
  return true;
}

if (process.env[CHILD_ENV] === '1') {
  await child();
} else {
  test('rootless in a user namespace: extraction, a step and a full snapshot give what umoci unpacks, owners aside', async (t) => {
    if (!requirements(t)) return;
    const layout = await debianLayout();
    const probe = spawnSync('setpriv', ['--reuid', String(OUTER_ID), '--regid', String(OUTER_ID), '--clear-groups', '--', 'unshare', '--user', '--map-root-user', '--', 'true'], { encoding: 'utf8' });
    assert.equal(probe.status, 0, `this machine does not let an unprivileged user create a user namespace: ${probe.stderr.trim()}`);

    const work = mkdtempSync(join(tmpdir(), 'kiln-snapshot-userns-'));
    t.after(() => rmSync(work, { recursive: true, force: true }));
    chownSync(work, OUTER_ID, OUTER_ID);
    const result = await runChild(work, layout);
    assert.equal(result.code, 0, `the rootless child failed:\n${result.stderr}`);
    const report = JSON.parse(result.stdout.trim().split('\n').pop()!) as ChildReport;
    t.diagnostic(`child: ${JSON.stringify({ ...report, changes: undefined })}`);

    // The child was root only inside its namespace, mapped to nobody outside.
    assert.equal(report.uid, 0);
    assert.deepEqual(report.uidMap, [0, OUTER_ID, 1]);
    assert.deepEqual(report.gidMap, [0, OUTER_ID, 1]);
    assert.equal(report.chownError, 'EINVAL');
    assert.match(report.mknodError, /Operation not permitted/);
    // Debian's device nodes are all under /dev, which is ignored: none had to be skipped.
    assert.equal(report.extracted.layers, 1);
    assert.equal(report.extracted.devicesSkipped, 0);
    // One warning for all the owners kiln could not set.
    assert.equal(report.warnings.length, 1, report.warnings.join('\n'));
    assert.match(report.warnings[0]!, /^kiln may not set file owners here \(EINVAL on \/[^)]+\); files of this extraction keep the user kiln runs as\.$/);
    assert.deepEqual(report.changes, EXPECTED_CHANGES);
    assert.equal(report.layer, 'layer');

    // Every path kiln made belongs to the user it ran as.
    const root = join(work, 'root');
    const outer = describeTree(root);
    const foreign = [...outer].filter(([, node]) => node.uid !== OUTER_ID || node.gid !== OUTER_ID).map(([path]) => path);
    assert.deepEqual(foreign, []);

    const bundle = join(work, 'bundle');
    await umociUnpack(join(work, 'layout'), 'snapshot', bundle);
    const ignore = await IgnoreList.create({ rootDir: root });
    const layers = new Map([...describeTree(join(bundle, 'rootfs'))].filter(([path]) => !ignore.isIgnored(path)));
    // Seen from inside the namespace, kiln's files are root's: compare them that way.
    const disk = describeTree(root, (id) => (id === OUTER_ID ? 0 : id));
    // Exactly the owners the base image gives to others than root differ; nothing else.
    const expected: TreeDifference[] = [];
    for (const [path, node] of layers) {
      if (node.uid !== 0) expected.push({ path, field: 'uid', layer: node.uid, disk: 0 });
      if (node.gid !== 0) expected.push({ path, field: 'gid', layer: node.gid, disk: 0 });
    }
    t.diagnostic(`owners kiln could not set: ${expected.map((d) => `${d.path} ${d.field} ${String(d.layer)}`).join(', ')}`);
    assert.ok(expected.some((d) => d.path === '/etc/shadow' && d.field === 'gid' && d.layer === 42), 'the Debian base has /etc/shadow in group shadow');
    assert.deepEqual(treeDifferences(layers, disk), expected);
    // Special modes survive even where the owner could not.
    assert.equal(disk.get('/usr/bin/chage')?.mode, 0o2755);
    assert.equal(disk.get('/usr/bin/passwd')?.mode, 0o4755);
    assert.equal(layers.get('/usr/local/bin/kiln-setuid')?.mode, 0o4755);
    assert.equal(layers.get('/opt/fifo')?.type, 'fifo');
    assert.equal(lstatSync(join(bundle, 'rootfs/opt/app/data-link')).ino, lstatSync(join(bundle, 'rootfs/opt/app/data')).ino);
  });
}
