import { lstatSync, type Stats } from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { KilnError, describeError } from '../util/errors.js';
import { recordFromStats, type ChangeSet, type FileIndex, type FileRecord } from './file-index.js';

/** One entry a layer will hold, in the order it is written. Paths are absolute in the image. */
export type PlannedEntry =
  | { kind: 'whiteout'; path: string }
  | {
      kind: 'node';
      path: string;
      /**
       * The metadata read from disk while planning; when absent, the entry is written with
       * the snapshot index's record of the path, which the scan that found the change made.
       */
      record?: FileRecord;
      /** Set for the second and later paths of one inode: the path it is a hard link to. */
      linkTo?: string;
    };

export interface LayerPlan {
  entries: PlannedEntry[];
  /** Paths left out: gone since the scan, sockets (which tar cannot hold), or under a path that is no longer a directory. */
  skipped: { path: string; reason: 'vanished' | 'socket' | 'not under a directory' }[];
}

/**
 * Why a path is in the plan: it changed; it is the parent directory of one that did; it is
 * the whiteout of a deleted path; or it is another name of a changed file's inode (see
 * `planLayer`).
 */
type Role = 'changed' | 'parent' | 'whiteout' | 'partner';
type State = 'dir' | 'other' | 'gone';

// Tens of thousands of lstat calls take a while; other work (a push) runs in between.
const YIELD_EVERY = 2048;

/**
 * Decides what a layer holds and in which order: every changed path, its parent
 * directories (so an extractor recreates them with the right owner and mode), and a
 * whiteout for every deleted path. The order is byte order of the path, which puts a
 * directory before its contents and makes two writes of the same tree identical.
 *
 * Metadata of files, symlinks and devices comes from `index` when it knows the path: the
 * scan that reported the change has just looked at it, and looking again would double the
 * cost of a large layer. Directories are always looked at again (there are few of them):
 * one that is no longer a directory must not be written into or read through, since it
 * may now be a symlink leading out of the root. Without an index, every path is looked at.
 *
 * Hard links: the paths of one inode in the layer are one regular file and hard links to it
 * (OCI: a link's target must be in the same layer). A changed file whose other names did
 * not change (`ln /usr/bin/tool /opt/tool` adds one name to a base file) brings them into
 * the layer when the index knows them, so the names stay one file, as they do when Docker
 * builds on overlayfs; the content is written once either way. Without an index such a
 * file is written on its own, as kaniko writes it.
 */
export async function planLayer(rootDir: string, changes: ChangeSet, index?: FileIndex): Promise<LayerPlan> {
  const roles = new Map<string, Role>();
  for (const path of changes.changed) {
    checkPath(path);
    if (path === '/') continue;
    roles.set(path, 'changed');
    addParents(roles, path);
  }
  for (const path of changes.deleted) {
    checkPath(path);
    if (path === '/') continue;
    const slash = path.lastIndexOf('/');
    const whiteout = `${path.slice(0, slash + 1)}.wh.${path.slice(slash + 1)}`;
    if (!roles.has(whiteout)) roles.set(whiteout, 'whiteout');
    addParents(roles, path);
  }
  const first = await planRoles(rootDir, roles, index, new Set());
  if (index === undefined || first.linksOutside.size === 0) return first.plan;
  // Rare (a new name for an existing file): plan again with the other names in.
  const candidates: string[] = [];
  index.forEach((path, record) => {
    if (record.kind === 'file' && record.nlink > 1 && !roles.has(path) && first.linksOutside.has(inodeKey(record))) candidates.push(path);
  });
  let added = 0;
  for (const path of candidates) {
    // The index can be behind on paths the last scan did not look at (after a COPY): only
    // names that still are that file come in.
    const stats = lstatOrUndefined(rootDir + path);
    if (stats === undefined || !stats.isFile() || !first.linksOutside.has(`${stats.dev}:${stats.ino}`)) continue;
    roles.set(path, 'partner');
    addParents(roles, path);
    added++;
  }
  return added === 0 ? first.plan : (await planRoles(rootDir, roles, index, first.linksOutside)).plan;
}

interface RolePlan {
  plan: LayerPlan;
  /** Inodes (`inodeKey`) of files in the plan with more names than the plan holds. */
  linksOutside: Set<string>;
}

/** The plan of `roles`; partners are taken only when they are still a name of an inode in `inodes`. */
async function planRoles(rootDir: string, roles: ReadonlyMap<string, Role>, index: FileIndex | undefined, inodes: ReadonlySet<string>): Promise<RolePlan> {
  const plan: LayerPlan = { entries: [], skipped: [] };
  const states = new Map<string, State>();
  const firstLink = new Map<string, string>();
  // Per inode with several names: [names it has, names in the plan].
  const linkCounts = new Map<string, [number, number]>();
  let count = 0;
  for (const path of sortByBytes([...roles.keys()])) {
    if (++count % YIELD_EVERY === 0) await nextTurn();
    const parent = parentOf(path);
    // Parents sort before their children, so the parent's state is always known here; only
    // directories and gone paths are remembered (a plan of 100k files has few of those).
    const parentState = parent === '/' ? 'dir' : states.get(parent) ?? 'other';
    const role = roles.get(path)!;
    if (role === 'whiteout') {
      // A whiteout under a path that is now a file or symlink is moot: that entry replaces
      // the whole lower directory. Under a vanished parent it still hides the lower path.
      if (parentState === 'other') plan.skipped.push({ path, reason: 'not under a directory' });
      else plan.entries.push({ kind: 'whiteout', path });
      continue;
    }
    if (parentState !== 'dir') {
      // Never look through a path that became a symlink: it could point outside the root.
      states.set(path, 'gone');
      if (role === 'changed') plan.skipped.push({ path, reason: parentState === 'gone' ? 'vanished' : 'not under a directory' });
      continue;
    }
    // The index's record is read in place (nothing is kept of it but the path); a record read
    // from disk goes with the entry.
    let record = role === 'changed' ? index?.view(path) : undefined;
    let fromDisk: FileRecord | undefined;
    if (record === undefined || record.kind === 'dir') {
      const stats = lstatOrUndefined(rootDir + path);
      if (stats === undefined) {
        states.set(path, 'gone');
        if (role === 'changed') plan.skipped.push({ path, reason: 'vanished' });
        continue;
      }
      record = fromDisk = recordFromStats(stats);
    }
    const isDir = record.kind === 'dir';
    if (isDir) states.set(path, 'dir');
    if (role === 'parent' && !isDir) continue;
    if (record.kind === 'socket') {
      plan.skipped.push({ path, reason: 'socket' });
      continue;
    }
    let linkTo: string | undefined;
    if (!isDir && record.nlink > 1) {
      const key = inodeKey(record);
      // A partner that is something else by now is left out.
      if (role === 'partner' && (record.kind !== 'file' || !inodes.has(key))) continue;
      const counts = linkCounts.get(key);
      if (counts === undefined) linkCounts.set(key, [record.nlink, 1]);
      else counts[1]++;
      linkTo = firstLink.get(key);
      if (linkTo === undefined) firstLink.set(key, path);
    } else if (role === 'partner') {
      continue;
    }
    const entry: PlannedEntry = fromDisk === undefined ? { kind: 'node', path } : { kind: 'node', path, record: fromDisk };
    if (linkTo !== undefined) entry.linkTo = linkTo;
    plan.entries.push(entry);
  }
  const linksOutside = new Set<string>();
  for (const [key, [names, planned]] of linkCounts) if (planned < names) linksOutside.add(key);
  return { plan, linksOutside };
}

/** Device and inode: what the names of one file share. */
function inodeKey(record: FileRecord): string {
  return `${record.dev}:${record.ino}`;
}

function addParents(roles: Map<string, Role>, path: string): void {
  // Stops at the first known parent: whoever added it added its parents too.
  for (let dir = parentOf(path); dir !== '/' && !roles.has(dir); dir = parentOf(dir)) roles.set(dir, 'parent');
}

function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash <= 0 ? '/' : path.slice(0, slash);
}

const UNSAFE_SEGMENT = /\/\.{0,2}(\/|$)/;

/** Change sets come from kiln's own walk; a path that could leave the root is a bug upstream. */
function checkPath(path: string): void {
  if (path === '/') return;
  if (path[0] !== '/' || UNSAFE_SEGMENT.test(path) || path.includes('\0')) {
    throw new KilnError('INTERNAL', `The change set holds "${path}", which is not a normalised absolute path inside the image.`);
  }
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path, { throwIfNoEntry: false });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw new KilnError('IO', `Cannot read the metadata of ${path} for the layer: ${describeError(err)}.`, { cause: err });
  }
}

/**
 * Sorts by the UTF-8 bytes of each path (Go's sort.Strings order). JavaScript's default
 * order compares UTF-16 units, which agrees with byte order except for characters beyond
 * U+D7FF, so the slower byte comparison is used only when such a character occurs.
 */
export function sortByBytes(paths: string[]): string[] {
  if (!paths.some((path) => /[\uD800-\uFFFF]/.test(path))) return paths.sort();
  const keyed = paths.map((path) => ({ path, bytes: Buffer.from(path, 'utf8') }));
  keyed.sort((a, b) => Buffer.compare(a.bytes, b.bytes));
  return keyed.map((k) => k.path);
}
