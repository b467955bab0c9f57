import { lstatSync, type Stats } from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { KilnError, describeError } from '../util/errors.js';
import { recordFromStats, type ChangeSet, type FileRecord } from './file-index.js';

/** One entry a layer will hold, in the order it is written. Paths are absolute in the image. */
export type PlannedEntry =
  | { kind: 'whiteout'; path: string }
  | {
      kind: 'node';
      path: string;
      /** Metadata read while planning, kept compact: a Node Stats object costs several times more. */
      record: FileRecord;
      /** Set for the second and later paths of one inode: the path it is a hard link to. */
      linkTo?: string;
    };

export interface LayerPlan {
  entries: PlannedEntry[];
  /** Paths left out: gone since the scan, sockets (which tar cannot hold), or under a path that is no longer a directory. */
  skipped: { path: string; reason: 'vanished' | 'socket' | 'not under a directory' }[];
}

type Role = 'changed' | 'parent' | 'whiteout';
type State = 'dir' | 'other' | 'gone';

// Tens of thousands of lstat calls take a while; other work (a push) runs in between.
const YIELD_EVERY = 2048;

/**
 * Decides what a layer holds and in which order, reading metadata from disk: every changed
 * path, its parent directories (so an extractor recreates them with the right owner and
 * mode), and a whiteout for every deleted path. The order is byte order of the path, which
 * puts a directory before its contents and makes two writes of the same tree identical.
 */
export async function planLayer(rootDir: string, changes: ChangeSet): Promise<LayerPlan> {
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

  const plan: LayerPlan = { entries: [], skipped: [] };
  const states = new Map<string, State>();
  const firstLink = new Map<string, string>();
  let count = 0;
  for (const path of sortByBytes([...roles.keys()])) {
    if (++count % YIELD_EVERY === 0) await nextTurn();
    const parent = parentOf(path);
    // Parents sort before their children, so the parent's state is always known here.
    const parentState = parent === '/' ? 'dir' : states.get(parent)!;
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
    const stats = lstatOrUndefined(rootDir + path);
    if (stats === undefined) {
      states.set(path, 'gone');
      if (role === 'changed') plan.skipped.push({ path, reason: 'vanished' });
      continue;
    }
    const isDir = stats.isDirectory();
    states.set(path, isDir ? 'dir' : 'other');
    if (role === 'parent' && !isDir) continue;
    if (stats.isSocket()) {
      plan.skipped.push({ path, reason: 'socket' });
      continue;
    }
    const entry: PlannedEntry = { kind: 'node', path, record: recordFromStats(stats) };
    if (!isDir && stats.nlink > 1) {
      const key = `${stats.dev}:${stats.ino}`;
      const first = firstLink.get(key);
      if (first === undefined) firstLink.set(key, path);
      else entry.linkTo = first;
    }
    plan.entries.push(entry);
  }
  return plan;
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
