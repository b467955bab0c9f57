import { lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { posix } from 'node:path';
import { Worker } from 'node:worker_threads';
import { KilnError, describeError } from '../util/errors.js';
import type { FileIndex, StatFields } from './file-index.js';
import type { IgnoreList } from './ignore.js';

/** The lstat fields kiln keeps of an entry; `fs.Stats` has them all. */
/** The lstat fields a walk reports: all of `fs.Stats` from `walk()`, just these from walker threads. */
export type EntryStat = StatFields;

/**
 * One path of the root filesystem as a walk found it. `walk()` gives the full `fs.Stats`;
 * entries from walker threads carry only the `EntryStat` fields.
 */
export interface WalkEntry<S extends EntryStat = Stats> {
  /** Absolute inside the image (`/etc/passwd`). */
  readonly path: string;
  /** Where the entry really is on this machine (`<rootDir>/etc/passwd`). */
  readonly fsPath: string;
  /** lstat of the entry: symlinks are never followed. */
  readonly stats: S;
  /** The target of a symlink, as stored in it. */
  readonly linkTarget?: string | undefined;
}

/**
 * What a walk passed over without yielding, besides ignored paths (which are skipped
 * silently). None of these stops the walk.
 * - `other-filesystem`: a directory on another device than the root, i.e. something the
 *   pod or a `RUN --mount` mounted in; neither it nor anything below it is part of the image.
 * - `vanished`: the entry disappeared between listing its directory and looking at it.
 * - `undecodable-name`: the name is not valid UTF-8, so it cannot be looked up through a
 *   JavaScript string; the entry is left out of the snapshot.
 */
export type WalkSkip = 'other-filesystem' | 'vanished' | 'undecodable-name';

/** How a walk treats directories on another device than the build root. */
export type MountPolicy =
  /** Leave them out: they are volumes, secrets, caches mounted into the build, not image content. */
  | 'skip'
  /** Walk into them as if they were part of the root (a root assembled from several mounts). */
  | 'include';

export interface WalkOptions {
  /** The directory holding the image's root filesystem (`/` for kaniko's model). */
  rootDir: string;
  ignore: IgnoreList;
  /** Image path where the walk starts (default `/`); its ancestors are not looked at. */
  from?: string;
  mounts?: MountPolicy;
  /** Paths (with their subtrees) that someone else walks: passed over without a look. */
  exclude?: ReadonlySet<string>;
  /** Told about every entry passed over for a reason other than the ignore list or `exclude`. */
  onSkip?: (path: string, reason: WalkSkip) => void;
  /**
   * Asked about each directory below `from` (with nothing ignored below it); true when
   * someone else walks it: the walk then neither yields it nor enters it.
   */
  handOff?: (path: string, stats: Stats) => boolean;
}

/**
 * Every entry at and below `from`, parents before their children, in directory order.
 * Synchronous on purpose: per-entry promises cost more than the syscalls themselves, and
 * a snapshot runs while the build waits for it anyway. Ignored subtrees are never entered,
 * symlinks never followed, other filesystems left out unless `mounts: 'include'`.
 */
export function* walk(options: WalkOptions): Generator<WalkEntry, void, undefined> {
  const rootDir = normalizeRootDir(options.rootDir);
  // For `/`, image paths are machine paths: skip one string concatenation per entry.
  const prefix = rootDir === '/' ? '' : rootDir;
  const from = posix.resolve('/', options.from ?? '/');
  const { ignore, onSkip, handOff } = options;
  const rootDev = rootDeviceOf(rootDir, options.mounts);
  const exclude = options.exclude ?? new Set<string>();
  const excludeParents = parentsOf(exclude);

  if (ignore.isIgnored(from) || exclude.has(from)) return;
  const fromFsPath = from === '/' ? rootDir : prefix + from;
  const fromStats = lstatEntry(fromFsPath, from);
  if (fromStats === undefined) return;
  if (fromStats.isDirectory() && rootDev !== ANY_DEVICE && fromStats.dev !== rootDev) {
    onSkip?.(from, 'other-filesystem');
    return;
  }
  yield entryOf(from, fromFsPath, fromStats);
  if (!fromStats.isDirectory()) return;

  // An explicit stack of directories still to list; each knows whether anything below it
  // is on the ignore list, so the (costly) ignore check runs only where it can match.
  const stack: PendingDir[] = [{ path: from, fsPath: fromFsPath, checkIgnore: ignore.hasIgnoredBelow(from) }];
  for (let dir = stack.pop(); dir !== undefined; dir = stack.pop()) {
    const names = listDir(dir.fsPath, dir.path);
    if (names === undefined) continue;
    const childBase = dir.path === '/' ? '/' : dir.path + '/';
    const childFsBase = prefix + childBase;
    const checkExclude = excludeParents.has(dir.path);
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!;
      const path = childBase + name;
      if (dir.checkIgnore && ignore.isIgnored(path)) continue;
      if (checkExclude && exclude.has(path)) continue;
      const fsPath = childFsBase + name;
      const stats = lstatEntry(fsPath, path);
      if (stats === undefined) {
        onSkip?.(path, skipOfMissing(name));
        continue;
      }
      if (stats.isDirectory()) {
        if (rootDev !== ANY_DEVICE && stats.dev !== rootDev) {
          onSkip?.(path, 'other-filesystem');
          continue;
        }
        const checkIgnore = dir.checkIgnore && ignore.hasIgnoredBelow(path);
        if (!checkIgnore && handOff?.(path, stats) === true) continue;
        yield { path, fsPath, stats };
        stack.push({ path, fsPath, checkIgnore });
      } else if (stats.isSymbolicLink()) {
        const linkTarget = readLink(fsPath);
        if (linkTarget === undefined) onSkip?.(path, 'vanished');
        else yield { path, fsPath, stats, linkTarget };
      } else {
        yield { path, fsPath, stats };
      }
    }
  }
}

interface PendingDir {
  path: string;
  fsPath: string;
  checkIgnore: boolean;
}

/** `st_dev` a walk stays on, or ANY_DEVICE when mounts are walked into. */
const ANY_DEVICE = -1;

function rootDeviceOf(rootDir: string, mounts: MountPolicy | undefined): number {
  if (mounts === 'include') return ANY_DEVICE;
  const stats = lstatEntry(rootDir, '/');
  if (stats === undefined || !stats.isDirectory()) throw new KilnError('IO', `the root directory ${rootDir} does not exist or is not a directory`);
  return stats.dev;
}

/** An entry for one path the caller already has an lstat of (a symlink's target is read here). */
export function entryOf(path: string, fsPath: string, stats: Stats): WalkEntry {
  if (!stats.isSymbolicLink()) return { path, fsPath, stats };
  const linkTarget = readLink(fsPath);
  return linkTarget === undefined ? { path, fsPath, stats } : { path, fsPath, stats, linkTarget };
}

/** Where an image path of the root at `rootDir` is on this machine. */
export function fsPathOf(rootDir: string, path: string): string {
  const root = normalizeRootDir(rootDir);
  if (root === '/') return path;
  return path === '/' ? root : root + path;
}

/** lstat, or undefined when the entry is gone (or a parent was replaced by a non-directory). */
export function lstatEntry(fsPath: string, path: string): Stats | undefined {
  try {
    return lstatSync(fsPath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new KilnError('IO', `cannot look at ${path} in the root filesystem: ${describeError(err)}`, { cause: err });
  }
}

// Plain names, not Dirents: every entry needs an lstat anyway, and Dirent objects cost time.
function listDir(fsPath: string, path: string): string[] | undefined {
  try {
    return readdirSync(fsPath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Gone or replaced since its lstat: there is nothing below it to report.
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new KilnError('IO', `cannot list ${path} in the root filesystem: ${describeError(err)}`, { cause: err });
  }
}

function readLink(fsPath: string): string | undefined {
  try {
    return readlinkSync(fsPath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EINVAL') return undefined;
    throw new KilnError('IO', `cannot read the symlink ${fsPath}: ${describeError(err)}`, { cause: err });
  }
}

/** A name readdir gave that lstat cannot find: gone, or mangled by UTF-8 decoding. */
function skipOfMissing(name: string): WalkSkip {
  return name.includes('\uFFFD') ? 'undecodable-name' : 'vanished';
}

function normalizeRootDir(rootDir: string): string {
  const resolved = posix.resolve(rootDir);
  return resolved.length > 1 && resolved.endsWith('/') ? resolved.slice(0, -1) : resolved;
}

function parentsOf(paths: Iterable<string>): Set<string> {
  const parents = new Set<string>();
  for (const path of paths) parents.add(posix.dirname(path));
  return parents;
}

// ---------------------------------------------------------------------------------------
// Walking on several threads. A walk is mostly lstat syscalls (2–3 µs each on a small VM),
// so one thread cannot get through 100k entries in well under half a second; split across
// worker threads, it can. The main thread keeps the index and does the comparing.

/**
 * How a parallel walk is split. Each task is a list of roots, each root walked with its
 * subtree except for other tasks' roots (`assigned`), which whoever lists their parent
 * passes over. The main thread walks what no task covers: the directories with ignored
 * paths below them (`/`, `/var` …), so workers never need the ignore list.
 */
export interface WalkPlan {
  readonly tasks: readonly (readonly string[])[];
  readonly assigned: ReadonlySet<string>;
  /** Index size the plan was made for; a plan only goes stale in balance, never in correctness. */
  readonly plannedFor: number;
}

/**
 * Splits the tree the index describes into tasks of roughly equal entry counts, about
 * `tasksPerThread` per thread, so a thread that finishes early takes another one.
 */
export function planWalk(index: FileIndex, ignore: IgnoreList, threads: number, tasksPerThread = 8): WalkPlan {
  const direct = new Map<string, number>();
  const subdirs = new Map<string, string[]>();
  // Walks and extraction put a directory's entries next to each other in the index, so most
  // entries share the previous one's parent: counted in runs, without a lookup per entry.
  let parent = '';
  let prefix = '\0';
  let run = 0;
  index.forEach((path, record) => {
    if (path === '/') return;
    if (!path.startsWith(prefix) || path.indexOf('/', prefix.length) !== -1) {
      if (run > 0) direct.set(parent, (direct.get(parent) ?? 0) + run);
      const cut = path.lastIndexOf('/');
      parent = cut === 0 ? '/' : path.slice(0, cut);
      prefix = path.slice(0, cut + 1);
      run = 0;
    }
    run++;
    if (record.kind === 'dir') {
      const list = subdirs.get(parent);
      if (list === undefined) subdirs.set(parent, [path]);
      else list.push(path);
    }
  });
  if (run > 0) direct.set(parent, (direct.get(parent) ?? 0) + run);
  const sizes = subtreeSizes(direct, subdirs);
  const target = Math.max(1000, Math.ceil(index.size / Math.max(1, threads * tasksPerThread)));
  const tasks: { roots: string[]; weight: number }[] = [];
  const assigned = new Set<string>();
  let group: { roots: string[]; weight: number } = { roots: [], weight: 0 };
  const addRoot = (root: string, weight: number) => {
    assigned.add(root);
    group.roots.push(root);
    group.weight += weight;
    if (group.weight >= target) {
      tasks.push(group);
      group = { roots: [], weight: 0 };
    }
  };
  // Directories with something ignored below stay with the main thread; below them, a
  // subtree small enough is one root, a bigger one contributes its own listing as a root
  // and is split further.
  const upper = ['/'];
  const split: string[] = [];
  for (let dir = upper.pop(); dir !== undefined; dir = upper.pop()) {
    for (const sub of subdirs.get(dir) ?? []) {
      if (ignore.isIgnored(sub)) continue;
      if (ignore.hasIgnoredBelow(sub)) upper.push(sub);
      else split.push(sub);
    }
  }
  for (let dir = split.pop(); dir !== undefined; dir = split.pop()) {
    const size = sizes.get(dir) ?? 0;
    if (size <= target) {
      addRoot(dir, size + 1);
    } else {
      addRoot(dir, (direct.get(dir) ?? 0) + 1);
      split.push(...(subdirs.get(dir) ?? []));
    }
  }
  if (group.roots.length > 0) tasks.push(group);
  // Biggest first: the last tasks to finish are then small ones.
  tasks.sort((a, b) => b.weight - a.weight);
  return { tasks: tasks.map((task) => task.roots), assigned, plannedFor: index.size };
}

/** Entries below each directory, from the count of direct entries and the directory tree. */
function subtreeSizes(direct: Map<string, number>, subdirs: Map<string, string[]>): Map<string, number> {
  const sizes = new Map<string, number>();
  const order: string[] = [];
  const stack = ['/'];
  for (let dir = stack.pop(); dir !== undefined; dir = stack.pop()) {
    order.push(dir);
    for (const sub of subdirs.get(dir) ?? []) stack.push(sub);
  }
  for (let i = order.length - 1; i >= 0; i--) {
    const dir = order[i]!;
    let size = direct.get(dir) ?? 0;
    for (const sub of subdirs.get(dir) ?? []) size += sizes.get(sub) ?? 0;
    sizes.set(dir, size);
  }
  return sizes;
}

/**
 * A batch of entries from a worker: their names in runs by directory (a directory's listing
 * comes whole), their lstat fields packed, STAT_FIELDS numbers each.
 */
export interface EntryBatch {
  /** `dirs[i]` (an image path) holds the next `counts[i]` entries of `names`. */
  readonly dirs: readonly string[];
  readonly counts: readonly number[];
  readonly names: readonly string[];
  readonly stats: Float64Array;
  /** [index in `names`, target] for the symlinks of the batch. */
  readonly links: readonly (readonly [number, string])[];
  readonly skips: readonly (readonly [string, WalkSkip])[];
}

/** An entry of a batch: a walk entry that also says its directory and name apart. */
export interface BatchEntry extends WalkEntry<EntryStat> {
  readonly dir: string;
  readonly name: string;
}

const STAT_FIELDS = 10;
/**
 * Entries a walker sends at a time. Small batches keep the walker's names from living long
 * enough to be promoted out of its (small) young generation into the old one.
 */
const BATCH = 1024;

/** The entries of a batch as `WalkEntry`s of the root at `rootDir`, each its own copy. */
export function entriesOf(batch: EntryBatch, rootDir: string): WalkEntry<EntryStat>[] {
  const entries: WalkEntry<EntryStat>[] = [];
  forEachEntry(batch, rootDir, (entry) => {
    const s = entry.stats;
    const stats: EntryStat = {
      mode: s.mode,
      uid: s.uid,
      gid: s.gid,
      size: s.size,
      mtimeMs: s.mtimeMs,
      ctimeMs: s.ctimeMs,
      ino: s.ino,
      dev: s.dev,
      nlink: s.nlink,
      rdev: s.rdev,
    };
    entries.push({ path: entry.path, fsPath: entry.fsPath, stats, linkTarget: entry.linkTarget });
  });
  return entries;
}

/**
 * Calls `visit` with each entry of a batch: the hot loop of a parallel scan. The entry
 * handed to `visit` is one cursor moved along the batch, valid only during the call: copy
 * what must outlive it (as `recordOfEntry` does).
 */
export function forEachEntry(batch: EntryBatch, rootDir: string, visit: (entry: BatchEntry) => void): void {
  const root = normalizeRootDir(rootDir);
  const cursor = new BatchCursor(batch.stats, root === '/' ? '' : root);
  const { dirs, counts, names, links } = batch;
  let nextLink = 0;
  let i = 0;
  for (let run = 0; run < dirs.length; run++) {
    cursor.dir = dirs[run]!;
    for (const end = i + counts[run]!; i < end; i++) {
      cursor.moveTo(names[i]!, i * STAT_FIELDS);
      if (nextLink < links.length && links[nextLink]![0] === i) cursor.linkTarget = links[nextLink++]![1];
      else cursor.linkTarget = undefined;
      visit(cursor);
    }
  }
}

/** A view of one entry of a batch: its lstat fields read in place from the packed numbers. */
class BatchCursor implements BatchEntry, EntryStat {
  dir = '';
  name = '';
  offset = 0;
  linkTarget: string | undefined = undefined;
  private joined: string | undefined;

  constructor(
    private readonly data: Float64Array,
    private readonly prefix: string,
  ) {}

  moveTo(name: string, offset: number): void {
    this.name = name;
    this.offset = offset;
    this.joined = undefined;
  }

  // Most entries of a scan are looked up by directory and name and never need their path.
  get path(): string {
    return (this.joined ??= this.dir === '/' ? '/' + this.name : this.dir + '/' + this.name);
  }
  get stats(): EntryStat {
    return this;
  }
  get fsPath(): string {
    return this.prefix + this.path;
  }
  get mode(): number {
    return this.data[this.offset]!;
  }
  get uid(): number {
    return this.data[this.offset + 1]!;
  }
  get gid(): number {
    return this.data[this.offset + 2]!;
  }
  get size(): number {
    return this.data[this.offset + 3]!;
  }
  get mtimeMs(): number {
    return this.data[this.offset + 4]!;
  }
  get ctimeMs(): number {
    return this.data[this.offset + 5]!;
  }
  get ino(): number {
    return this.data[this.offset + 6]!;
  }
  get dev(): number {
    return this.data[this.offset + 7]!;
  }
  get nlink(): number {
    return this.data[this.offset + 8]!;
  }
  get rdev(): number {
    return this.data[this.offset + 9]!;
  }
}

/**
 * The worker's program, as plain JavaScript: it must run the same from the TypeScript
 * sources and from the compiled ones, without a module loader. It mirrors `walk()` without
 * the ignore list (the plan keeps ignored paths away from workers), and checks that the
 * ancestors of each root are still directories of this root before looking below them, so
 * that a directory replaced by a symlink is never followed out of the root.
 */
const WORKER_SOURCE = `
'use strict';
const { parentPort } = require('node:worker_threads');
const { lstatSync, readdirSync, readlinkSync } = require('node:fs');
const FIELDS = ${STAT_FIELDS};
const BATCH = ${BATCH};
const ANY_DEVICE = ${ANY_DEVICE};

class WalkFailure extends Error {
  constructor(path, cause) { super(cause.message); this.path = path; this.code = cause.code; }
}
function lstatOf(fsPath, path) {
  try { return lstatSync(fsPath); } catch (err) {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
    throw new WalkFailure(path, err);
  }
}
function list(fsPath, path) {
  try { return readdirSync(fsPath); } catch (err) {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
    throw new WalkFailure(path, err);
  }
}
function readLink(fsPath, path) {
  try { return readlinkSync(fsPath); } catch (err) {
    if (err.code === 'ENOENT' || err.code === 'EINVAL') return undefined;
    throw new WalkFailure(path, err);
  }
}

function run(task) {
  const { runId, prefix, rootDev, roots } = task;
  const assigned = new Set(task.assigned);
  const assignedParents = new Set(task.assigned.map((p) => p.slice(0, Math.max(1, p.lastIndexOf('/')))));
  let dirs = [], counts = [], names = [], links = [], skips = [], stats = new Float64Array(FIELDS * BATCH), n = 0, lastDir;
  const flush = (done) => {
    const packed = stats.slice(0, n * FIELDS);
    parentPort.postMessage({ type: 'batch', runId, done, dirs, counts, names, stats: packed, links, skips }, [packed.buffer]);
    dirs = []; counts = []; names = []; links = []; skips = []; n = 0; lastDir = undefined;
  };
  const add = (dir, name, st, linkTarget) => {
    const o = n * FIELDS;
    stats[o] = st.mode; stats[o + 1] = st.uid; stats[o + 2] = st.gid; stats[o + 3] = st.size;
    stats[o + 4] = st.mtimeMs; stats[o + 5] = st.ctimeMs; stats[o + 6] = st.ino; stats[o + 7] = st.dev;
    stats[o + 8] = st.nlink; stats[o + 9] = st.rdev;
    if (linkTarget !== undefined) links.push([n, linkTarget]);
    if (dir !== lastDir) { dirs.push(dir); counts.push(0); lastDir = dir; }
    counts[counts.length - 1]++;
    names.push(name);
    if (++n === BATCH) flush(false);
  };
  const foreign = (st) => rootDev !== ANY_DEVICE && st.dev !== rootDev;
  // One entry (name in directory dir); true when it is a directory to list in turn.
  const visit = (dir, name, path, fsPath) => {
    const st = lstatOf(fsPath, path);
    if (st === undefined) { skips.push([path, name.includes('\\uFFFD') ? 'undecodable-name' : 'vanished']); return false; }
    if (st.isDirectory()) {
      if (foreign(st)) { skips.push([path, 'other-filesystem']); return false; }
      add(dir, name, st);
      return true;
    }
    if (st.isSymbolicLink()) {
      const target = readLink(fsPath, path);
      if (target === undefined) skips.push([path, 'vanished']); else add(dir, name, st, target);
      return false;
    }
    add(dir, name, st);
    return false;
  };
  const insideRoot = (root) => {
    for (let cut = root.indexOf('/', 1); cut !== -1; cut = root.indexOf('/', cut + 1)) {
      const st = lstatOf(prefix + root.slice(0, cut), root.slice(0, cut));
      if (st === undefined || !st.isDirectory() || foreign(st)) return false;
    }
    return true;
  };
  for (const root of roots) {
    // A root that is gone is simply not reported: the sweep finds it deleted.
    if (!insideRoot(root) || lstatOf(prefix + root, root) === undefined) continue;
    const cut = root.lastIndexOf('/');
    if (!visit(cut === 0 ? '/' : root.slice(0, cut), root.slice(cut + 1), root, prefix + root)) continue;
    const stack = [root];
    for (let dir = stack.pop(); dir !== undefined; dir = stack.pop()) {
      const listed = list(prefix + dir, dir);
      if (listed === undefined) continue;
      const base = dir + '/';
      const checkAssigned = assignedParents.has(dir);
      for (let i = 0; i < listed.length; i++) {
        const path = base + listed[i];
        if (checkAssigned && assigned.has(path)) continue;
        if (visit(dir, listed[i], path, prefix + path)) stack.push(path);
      }
    }
  }
  flush(true);
}

parentPort.on('message', (task) => {
  try {
    run(task);
  } catch (err) {
    parentPort.postMessage({ type: 'error', runId: task.runId, path: err.path, code: err.code, message: String(err.message) });
  }
});
`;

type WorkerMessage =
  | ({ type: 'batch'; runId: number; done: boolean } & EntryBatch)
  | { type: 'error'; runId: number; path?: string; code?: string; message: string };

/**
 * A walker allocates a few hundred bytes per entry (Node's Stats) and keeps none of it: a
 * young generation this small is swept often and cheaply, where V8's default lets each
 * thread grow by tens of MB.
 */
const WORKER_YOUNG_GENERATION_MB = 4;

/** A parallel walk under way: see `WalkerPool.start`. */
export interface ParallelWalk {
  /** One more task: roots to walk with their subtrees. */
  add(roots: readonly string[]): void;
  /** No more tasks; resolves when every task is done, rejects on the first failure. */
  finish(): Promise<void>;
}

/**
 * A few worker threads that walk parts of a root filesystem. Idle workers do not keep the
 * process alive; `close()` ends them.
 */
export class WalkerPool {
  private readonly workers: Worker[];
  private runs = 0;
  private busy = false;

  constructor(readonly threads: number) {
    this.workers = Array.from({ length: threads }, () => {
      const worker = new Worker(WORKER_SOURCE, { eval: true, resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB } });
      worker.unref();
      return worker;
    });
  }

  /**
   * Runs the plan's tasks; `onBatch` gets every batch on the main thread as it arrives.
   * Resolves when all tasks are done; rejects with an IO error on the first failure.
   */
  run(plan: WalkPlan, options: { rootDir: string; mounts?: MountPolicy }, onBatch: (batch: EntryBatch) => void): Promise<void> {
    let walk: ParallelWalk;
    try {
      walk = this.start({ ...options, assigned: plan.assigned }, onBatch);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    for (const task of plan.tasks) walk.add(task);
    return walk.finish();
  }

  /**
   * Starts a walk whose tasks come as they are found (`add`); `finish` says no more will,
   * and resolves once all are done. `assigned`: roots no task walks into (see `WalkPlan`).
   */
  start(options: { rootDir: string; mounts?: MountPolicy; assigned: ReadonlySet<string> }, onBatch: (batch: EntryBatch) => void): ParallelWalk {
    if (this.busy) throw new KilnError('INTERNAL', 'a parallel walk is already running');
    const rootDir = normalizeRootDir(options.rootDir);
    const base = {
      runId: ++this.runs,
      prefix: rootDir === '/' ? '' : rootDir,
      rootDev: rootDeviceOf(rootDir, options.mounts),
      assigned: [...options.assigned],
    };
    this.busy = true;
    const queue: string[][] = [];
    const idle: Worker[] = [...this.workers];
    let outstanding = 0;
    let finishing = false;
    let settled = false;
    let resolveDone!: () => void;
    let rejectDone!: (err: Error) => void;
    const done = new Promise<void>((resolve, reject) => {
      resolveDone = resolve;
      rejectDone = reject;
    });
    // A failure before `finish` is awaited must not count as unhandled meanwhile.
    done.catch(() => undefined);
    const end = (err?: Error) => {
      if (settled) return;
      settled = true;
      for (const worker of this.workers) {
        worker.removeAllListeners('message');
        worker.removeAllListeners('error');
        worker.unref();
      }
      this.busy = false;
      if (err === undefined) resolveDone();
      else rejectDone(err);
    };
    const dispatch = (worker: Worker) => {
      const roots = queue.shift();
      if (roots === undefined) idle.push(worker);
      else worker.postMessage({ ...base, roots });
    };
    for (const worker of this.workers) {
      worker.ref();
      worker.on('message', (message: WorkerMessage) => {
        if (settled || message.runId !== base.runId) return;
        if (message.type === 'error') {
          const where = message.path ?? 'the root filesystem';
          end(new KilnError('IO', `cannot walk ${where}: ${message.message}${message.code ? ` (${message.code})` : ''}`));
          return;
        }
        try {
          onBatch(message);
        } catch (err) {
          end(err as Error);
          return;
        }
        if (!message.done) return;
        outstanding--;
        if (finishing && outstanding === 0) end();
        else dispatch(worker);
      });
      worker.on('error', (err) => end(new KilnError('INTERNAL', `a walker thread failed: ${describeError(err)}`, { cause: err })));
    }
    return {
      add: (roots) => {
        if (settled || roots.length === 0) return;
        outstanding++;
        queue.push([...roots]);
        const worker = idle.pop();
        if (worker !== undefined) dispatch(worker);
      },
      finish: () => {
        finishing = true;
        if (outstanding === 0) end();
        return done;
      },
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.terminate()));
  }
}
