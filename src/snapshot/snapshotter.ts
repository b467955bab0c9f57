import { readdirSync, type Stats } from 'node:fs';
import { availableParallelism } from 'node:os';
import { posix } from 'node:path';
import { performance } from 'node:perf_hooks';
import { silentLogger, type Logger } from '../util/log.js';
import { KilnError, describeError } from '../util/errors.js';
import { FileIndex, type ChangeSet, type FileRecord } from './file-index.js';
import { createChangeDetector, formatXxh64, kindOfMode, RACY_WINDOW_MS, type ChangeDetector, type SnapshotMode, type StatTrust } from './hasher.js';
import type { IgnoreList } from './ignore.js';
import {
  entryOf,
  forEachEntry,
  fsPathOf,
  lstatEntry,
  planWalk,
  walk,
  WalkerPool,
  type BatchEntry,
  type ParallelWalk,
  type EntryStat,
  type MountPolicy,
  type WalkEntry,
  type WalkOptions,
  type WalkPlan,
  type WalkSkip,
} from './walk.js';

export interface SnapshotterOptions {
  /** The directory holding the image's root filesystem (`/` in kaniko's model). */
  rootDir: string;
  ignore: IgnoreList;
  mode: SnapshotMode;
  /** Directories on another device than the root: left out by default (see `MountPolicy`). */
  mounts?: MountPolicy;
  logger?: Logger;
  /** Threads that walk the root in a full scan (default: the machine's parallelism, at most 8; 1: no worker threads). */
  threads?: number;
  /** Roots with fewer entries than this are walked on the main thread: threads would cost more than they save. */
  parallelFrom?: number;
}

const DEFAULT_PARALLEL_FROM = 20_000;
const MAX_THREADS = 8;

/**
 * Finds what a build step changed in the root filesystem, against an index of what the
 * previous step left. One snapshotter follows one stage from its base image to its last
 * instruction: `init` once, then `scan` after a RUN (unknown paths) or `scanPaths` after
 * COPY/ADD (known paths), `recordContent` once the layer writer has read the files, and
 * `close` at the end (idle walker threads do not keep the process alive either way).
 */
export class Snapshotter {
  private readonly rootDir: string;
  private readonly ignore: IgnoreList;
  private readonly mode: SnapshotMode;
  private readonly mounts: MountPolicy;
  private readonly logger: Logger;
  private readonly threads: number;
  private readonly parallelFrom: number;
  private detector: ChangeDetector | undefined;
  private fileIndex = new FileIndex();
  /** Paths whose record was taken within RACY_WINDOW_MS of their ctime (see `StatTrust`). */
  private racy = new Set<string>();
  private pool: WalkerPool | undefined;
  private plan: WalkPlan | undefined;
  private closed = false;

  constructor(options: SnapshotterOptions) {
    this.rootDir = posix.resolve(options.rootDir);
    this.ignore = options.ignore;
    this.mode = options.mode;
    this.mounts = options.mounts ?? 'skip';
    this.logger = options.logger ?? silentLogger();
    this.threads = Math.max(1, Math.min(MAX_THREADS, options.threads ?? availableParallelism()));
    this.parallelFrom = options.parallelFrom ?? DEFAULT_PARALLEL_FROM;
  }

  /**
   * Whether walking the whole root costs enough to be avoided when a step can say what it
   * changed: the same size from which walker threads help (`parallelFrom`).
   */
  rootIsLarge(): boolean {
    return this.fileIndex.size >= this.parallelFrom;
  }

  /** The index as of the last scan; the layer writer reads records (kind, link target, inode) from it. */
  get index(): FileIndex {
    return this.fileIndex;
  }

  /**
   * Adopts the index the extractor produced (records with content hashes, so full mode can
   * tell a `touch` from an edit), or builds one by walking the root (metadata only).
   * Ignored paths are dropped from an adopted index: kiln never reports them.
   */
  async init(index?: FileIndex): Promise<void> {
    const started = performance.now();
    this.detector = await createChangeDetector(this.mode);
    const racyBefore = Date.now() - RACY_WINDOW_MS;
    this.racy = new Set();
    this.plan = undefined;
    if (index !== undefined) {
      this.fileIndex = index;
      const ignored = underAny(this.ignore.entries());
      index.forEach((path, record) => {
        if (ignored(path)) index.delete(path);
        else if (record.ctimeMs >= racyBefore) this.racy.add(path);
      });
    } else {
      this.fileIndex = new FileIndex();
      const onSkip = (path: string, reason: WalkSkip) => {
        if (reason === 'undecodable-name') this.logger.warn({ path }, 'a name in the root filesystem is not valid UTF-8; it is left out of the snapshot');
      };
      for (const entry of walk(this.walkOptions('/', onSkip))) {
        this.fileIndex.setStats(entry.path, entry.stats, entry.linkTarget);
        if (entry.stats.ctimeMs >= racyBefore) this.racy.add(entry.path);
      }
    }
    this.prepareParallel();
    this.logger.debug(
      { mode: this.mode, entries: this.fileIndex.size, adopted: index !== undefined, ms: Math.round(performance.now() - started) },
      'snapshot index ready',
    );
  }

  /**
   * Records every path of the root that the index lacks, as it is now. In the executor's own
   * `/` the files that were there before the base image (the executor image's own, outside
   * the ignore list) are where the first step starts, not changes it made.
   */
  adoptUntracked(): void {
    const racyBefore = Date.now() - RACY_WINDOW_MS;
    for (const entry of walk(this.walkOptions('/', () => {}))) {
      if (this.fileIndex.has(entry.path)) continue;
      this.fileIndex.setStats(entry.path, entry.stats, entry.linkTarget);
      if (entry.stats.ctimeMs >= racyBefore) this.racy.add(entry.path);
    }
  }

  /** Walks the whole root: everything added, changed (per mode) or deleted since the last scan. */
  async scan(): Promise<ChangeSet> {
    const detector = this.ready();
    const started = performance.now();
    const readsBefore = detector.filesRead;
    const sizeBefore = this.fileIndex.size;
    const scan = new Scan(this.fileIndex, detector, this.racy, Date.now() - RACY_WINDOW_MS, 'moved-dirs');
    let threads = 1;
    if (!this.closed && this.threads > 1) threads = await this.walkInParallel(scan);
    else for (const entry of walk(this.walkOptions('/', scan.onSkip))) scan.visit(entry);
    const deletions = this.findDeletions(scan, sizeBefore);
    this.racy = scan.racyNow;
    const result = this.finish(scan, started, { scope: 'root', threads, deletions, filesRead: detector.filesRead - readsBefore });
    this.prepareParallel();
    return result;
  }

  /**
   * Looks only at `paths` (image paths), their subtrees and their ancestors — what COPY and
   * ADD wrote — without walking the rest of the root. A change elsewhere stays unseen until
   * the next `scan`. Ancestors are looked at so that directories COPY created enter the
   * index, and so that a path behind a symlinked ancestor is never looked up outside the root.
   * `entries` are looked at alone, without their subtrees: directories a RUN on an overlay
   * changed something in, where only the overlay's own entries below them moved.
   */
  async scanPaths(paths: readonly string[], entries: readonly string[] = []): Promise<ChangeSet> {
    const detector = this.ready();
    const started = performance.now();
    const readsBefore = detector.filesRead;
    const wanted = (list: readonly string[]) => list.map((path) => posix.resolve('/', path)).filter((path) => !this.ignore.isIgnored(path));
    const roots = topMost(wanted(paths));
    if (roots.length === 1 && roots[0] === '/') return this.scan();
    const insideRoot = underAny(roots);
    const alone = [...new Set(wanted(entries))].filter((path) => !insideRoot(path)).sort();
    const scan = new Scan(this.fileIndex, detector, this.racy, Date.now() - RACY_WINDOW_MS, 'every-path');
    const swept: string[] = [];
    let threads = 1;
    for (const path of alone) {
      const scope = this.visitAncestors(path, scan);
      if (scope.kind === 'nothing') continue;
      if (scope.kind === 'sweep-only') {
        swept.push(scope.root);
        continue;
      }
      const fsPath = fsPathOf(this.rootDir, path);
      const stats = lstatEntry(fsPath, path);
      if (stats !== undefined) scan.visit(entryOf(path, fsPath, stats));
      else swept.push(path);
    }
    for (const root of roots) {
      const scope = this.visitAncestors(root, scan);
      if (scope.kind === 'nothing') continue;
      swept.push(scope.root);
      if (scope.kind !== 'walk') continue;
      if (!this.closed && this.threads > 1) threads = Math.max(threads, await this.walkInParallel(scan, root));
      else for (const entry of walk(this.walkOptions(root, scan.onSkip))) scan.visit(entry);
    }
    if (swept.length > 0) this.sweep(scan, swept);
    for (const path of scan.seen!) if (!scan.racyNow.has(path)) this.racy.delete(path);
    for (const path of scan.racyNow) this.racy.add(path);
    const result = this.finish(scan, started, { scope: 'paths', threads, deletions: 'swept', filesRead: detector.filesRead - readsBefore });
    this.prepareParallel();
    return result;
  }

  /** Stores content hashes the layer writer computed (xxh64, hex or raw) for files it wrote. */
  recordContent(hashes: ReadonlyMap<string, string | bigint>): void {
    for (const [path, hash] of hashes) this.fileIndex.setContentHash(path, typeof hash === 'bigint' ? formatXxh64(hash) : hash);
  }

  /** Ends the walker threads. The snapshotter can still scan afterwards, on the main thread. */
  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    this.closed = true;
    await pool?.close();
  }

  private ready(): ChangeDetector {
    if (this.detector === undefined) throw new KilnError('INTERNAL', 'the snapshotter was used before init()');
    return this.detector;
  }

  private parallel(): boolean {
    return !this.closed && this.threads > 1 && this.fileIndex.size >= this.parallelFrom;
  }

  /**
   * Starts the walker threads and splits the tree as soon as the index is big enough for
   * them, rather than in the scan that first needs them: the threads then boot while the
   * layer is written and the next step runs, and that scan only walks.
   */
  private prepareParallel(): void {
    if (!this.parallel()) return;
    this.pool ??= new WalkerPool(this.threads);
    if (this.planIsStale()) this.plan = planWalk(this.fileIndex, this.ignore, this.threads);
  }

  /** A plan made for an index a fifth smaller or larger no longer splits the work evenly. */
  private planIsStale(): boolean {
    const size = this.fileIndex.size;
    return this.plan === undefined || Math.abs(this.plan.plannedFor - size) > size / 5;
  }

  private finish(scan: Scan, started: number, details: Record<string, unknown>): ChangeSet {
    for (const [path, reason] of scan.skips) {
      if (reason === 'undecodable-name') this.logger.warn({ path }, 'a name in the root filesystem is not valid UTF-8; it is left out of the snapshot');
      else this.logger.debug({ path, reason }, 'snapshot passed over a path');
    }
    const result = { changed: scan.changed.sort(), deleted: scan.deleted.sort() };
    this.logger.debug(
      {
        mode: this.mode,
        ...details,
        entries: scan.matched + scan.added,
        changed: result.changed.length,
        deleted: result.deleted.length,
        ms: Math.round(performance.now() - started),
      },
      'snapshot scan done',
    );
    return result;
  }

  /**
   * The root (or the subtree at `from`) on several threads: workers take the subtrees of
   * the plan (when the whole root is walked and the index is big enough for one) and the
   * new directories the main thread hands them; the main thread walks the rest (where the
   * ignore list applies) and compares every entry. Returns the threads that walked.
   */
  private async walkInParallel(scan: Scan, from = '/'): Promise<number> {
    const wholeRoot = from === '/';
    if (wholeRoot && this.parallel() && this.planIsStale()) this.plan = planWalk(this.fileIndex, this.ignore, this.threads);
    const plan = wholeRoot && this.parallel() ? this.plan : undefined;
    let running: ParallelWalk | undefined;
    const workers = () =>
      (running ??= (this.pool ??= new WalkerPool(this.threads)).start({ rootDir: this.rootDir, mounts: this.mounts, assigned: plan?.assigned ?? new Set() }, (batch) => {
        forEachEntry(batch, this.rootDir, scan.visitIn);
        for (const [path, reason] of batch.skips) scan.onSkip(path, reason);
      }));
    for (const task of plan?.tasks ?? []) workers().add(task);
    const handOff = new NewLeafHandOff(this.fileIndex, (roots) => workers().add(roots));
    try {
      for (const entry of walk({ ...this.walkOptions(from, scan.onSkip), exclude: plan?.assigned, handOff: handOff.offer })) scan.visit(entry);
      handOff.flush();
    } catch (err) {
      await running?.finish().catch(() => undefined);
      throw err;
    }
    if (running === undefined) return 1;
    await running.finish();
    return this.threads;
  }

  /**
   * Deletions after a walk of the whole root, without remembering every path the walk saw
   * (a set of 100k paths costs more than the rest of the comparing). Removing an entry
   * moves its directory's mtime and ctime, so a known path that is gone is either a child
   * of a directory whose record moved (reported), or below a path gone or no longer a
   * directory (implied). The counts must then add up: known before = seen again + gone +
   * hidden by a mount. When they do not (a filesystem that keeps directory times still),
   * the root is walked once more, remembering every path this time.
   */
  private findDeletions(scan: Scan, known: number): 'none' | 'moved-dirs' | 'rewalked' {
    if (scan.matched === known) return 'none';
    const hidden = underAny(scan.passedOver());
    const moved = new Set(scan.movedDirs);
    const candidates: string[] = [];
    let hiddenCount = 0;
    for (const path of this.fileIndex.paths()) {
      if (hidden(path)) {
        hiddenCount++;
        continue;
      }
      const parent = parentOf(path);
      if (parent !== undefined && moved.has(parent)) candidates.push(path);
    }
    const gone = this.goneAmong(candidates);
    const removed = new Set(gone);
    const below = underAny([...gone, ...scan.replacedDirs]);
    if (removed.size > 0 || scan.replacedDirs.length > 0) {
      for (const path of this.fileIndex.paths()) if (below(path) && !removed.has(path) && !hidden(path)) removed.add(path);
    }
    // A walk never adds below a mount, so every hidden path is a known one.
    if (scan.matched + removed.size + hiddenCount === known) {
      scan.deleted.push(...gone);
      this.forget(removed);
      return 'moved-dirs';
    }
    this.logger.debug({ known, seen: scan.matched, gone: removed.size, hidden: hiddenCount }, 'snapshot counts do not add up; walking the root again');
    const seen = new Set<string>();
    for (const entry of walk(this.walkOptions('/', () => {}))) seen.add(entry.path);
    scan.seen = seen;
    this.sweep(scan, ['/']);
    return 'rewalked';
  }

  /** Those of `candidates` (known paths) that are no longer in their directory's listing. */
  private goneAmong(candidates: readonly string[]): string[] {
    const listings = new Map<string, ReadonlySet<string> | undefined>();
    const gone: string[] = [];
    for (const path of candidates) {
      const parent = parentOf(path)!;
      let names = listings.get(parent);
      if (!listings.has(parent)) {
        names = this.list(parent);
        listings.set(parent, names);
      }
      if (names === undefined || !names.has(path.slice(parent === '/' ? 1 : parent.length + 1))) gone.push(path);
    }
    return gone;
  }

  private list(dir: string): ReadonlySet<string> | undefined {
    try {
      return new Set(readdirSync(fsPathOf(this.rootDir, dir)));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw new KilnError('IO', `cannot list ${dir} in the root filesystem: ${describeError(err)}`, { cause: err });
    }
  }

  /**
   * Looks at the ancestors of a path given to `scanPaths`, top-down, as part of the scan,
   * and says where to look from. An ancestor that is gone or no longer a directory is as
   * far as the scan goes: nothing of the path can be below it, and it must not be looked
   * up through a symlink that could lead out of the root. An ancestor on another
   * filesystem is a mount: nothing to look at.
   */
  private visitAncestors(root: string, scan: Scan): ScanScope {
    let rootDev: number | undefined;
    for (const ancestor of ancestorsOf(root)) {
      if (scan.seen!.has(ancestor)) continue;
      const fsPath = fsPathOf(this.rootDir, ancestor);
      const stats = lstatEntry(fsPath, ancestor);
      rootDev ??= stats?.dev;
      if (stats !== undefined && stats.isDirectory() && this.mounts === 'skip' && stats.dev !== rootDev) {
        this.logger.debug({ path: root, ancestor }, 'scanned path is below another filesystem; skipped');
        return { kind: 'nothing' };
      }
      if (stats === undefined || !stats.isDirectory()) {
        if (stats !== undefined) scan.visit(entryOf(ancestor, fsPath, stats));
        return { kind: 'sweep-only', root: ancestor };
      }
      scan.visit(entryOf(ancestor, fsPath, stats));
    }
    return { kind: 'walk', root };
  }

  /**
   * Finds known paths under `roots` that the scan did not see, from the set of every path
   * it saw. Only the top-most is reported: when a directory went away (or became a file or
   * symlink), its children go with it and need no whiteouts of their own. Paths the walk
   * could not look at (ignored, below a mount) are kept as they are.
   */
  private sweep(scan: Scan, roots: readonly string[]): void {
    const seen = scan.seen!;
    const hidden = underAny(scan.passedOver());
    const gone: string[] = [];
    for (const path of this.fileIndex.pathsUnder(topMost(roots))) {
      if (seen.has(path)) continue;
      if (this.ignore.isIgnored(path) || hidden(path)) continue;
      gone.push(path);
    }
    for (const path of gone) {
      const parent = parentOf(path);
      if (parent !== undefined && seen.has(parent) && this.fileIndex.get(parent)?.kind === 'dir') scan.deleted.push(path);
    }
    this.forget(gone);
  }

  private forget(paths: Iterable<string>): void {
    for (const path of paths) {
      this.fileIndex.delete(path);
      this.racy.delete(path);
    }
  }

  private walkOptions(from: string, onSkip: (path: string, reason: WalkSkip) => void): WalkOptions {
    return { rootDir: this.rootDir, ignore: this.ignore, from, mounts: this.mounts, onSkip };
  }
}

/** New directories the main thread finds before it hands them to walker threads: a few are quicker walked than handed over. */
const HAND_OFF_AFTER = 32;
/** New directories per walker task. */
const HAND_OFF_GROUP = 16;

/**
 * Picks, during a scan's walk on the main thread, the directories walker threads take
 * instead: new ones (the index does not know them) without subdirectories, such as the
 * 2,000 package directories an `npm install` leaves. What the index knows is split by the
 * plan; a tree the last step created is not in the plan, and would otherwise be walked by
 * the main thread alone. st_nlink of 2 means no subdirectories on ext4, xfs, tmpfs and
 * overlayfs; where directories always count 1 (btrfs), nothing is handed off.
 */
class NewLeafHandOff {
  private found = 0;
  private group: string[] = [];

  constructor(
    private readonly index: FileIndex,
    private readonly submit: (roots: string[]) => void,
  ) {}

  readonly offer = (path: string, stats: Stats): boolean => {
    if (stats.nlink !== 2 || this.index.has(path)) return false;
    if (++this.found <= HAND_OFF_AFTER) return false;
    this.group.push(path);
    if (this.group.length >= HAND_OFF_GROUP) this.flush();
    return true;
  };

  flush(): void {
    if (this.group.length === 0) return;
    this.submit(this.group);
    this.group = [];
  }
}

/** Where one path given to `scanPaths` leads: walk it, only look for what is gone below an ancestor, or nothing. */
type ScanScope = { kind: 'walk'; root: string } | { kind: 'sweep-only'; root: string } | { kind: 'nothing' };

/**
 * How a scan keeps track of what it saw, for finding deletions afterwards: every path (a
 * few subtrees), or only the directories whose record moved (the whole root).
 */
type Tracking = 'every-path' | 'moved-dirs';

/** The working state of one scan: what changed, what the next scan must distrust, what deletions to look for. */
class Scan {
  /** Every path seen, when tracking every path. */
  seen: Set<string> | undefined;
  readonly changed: string[] = [];
  readonly deleted: string[] = [];
  readonly racyNow = new Set<string>();
  readonly skips: Array<[string, WalkSkip]> = [];
  /** Known directories that are still directories and whose record moved (or could not be trusted). */
  readonly movedDirs: string[] = [];
  /** Known directories that are now something else: what was below them is gone. */
  readonly replacedDirs: string[] = [];
  /** Walked paths the index already knew. */
  matched = 0;
  /** Walked paths the index did not know. */
  added = 0;
  /** The directories of the paths in `racyBefore`: only entries there need their path put together to look it up. */
  private readonly racyDirs = new Set<string>();

  constructor(
    private readonly index: FileIndex,
    private readonly detector: ChangeDetector,
    private readonly racyBefore: ReadonlySet<string>,
    private readonly racyCutoff: number,
    tracking: Tracking,
  ) {
    if (tracking === 'every-path') this.seen = new Set();
    for (const path of racyBefore) this.racyDirs.add(parentOf(path) ?? '');
  }

  /** An entry of a walk on this thread. */
  readonly visit = (entry: WalkEntry<EntryStat>): void => {
    const path = entry.path;
    this.compare(entry, this.index.view(path), this.racyBefore.size > 0 && this.racyBefore.has(path));
  };

  /**
   * An entry from a walker thread, looked up by directory and name: its path is only put
   * together when something is to be done with it.
   */
  readonly visitIn = (entry: BatchEntry): void => {
    const racy = this.racyDirs.size > 0 && this.racyDirs.has(entry.dir) && this.racyBefore.has(entry.path);
    this.compare(entry, this.index.viewIn(entry.dir, entry.name), racy);
  };

  /** `old`: the index's record of the entry, read in place (a scan compares 100k of them and keeps none). */
  private compare(entry: WalkEntry<EntryStat>, old: FileRecord | undefined, wasRacy: boolean): void {
    this.seen?.add(entry.path);
    if (entry.stats.ctimeMs >= this.racyCutoff) this.racyNow.add(entry.path);
    if (old === undefined) {
      this.index.setStats(entry.path, entry.stats, entry.linkTarget);
      this.changed.push(entry.path);
      this.added++;
      return;
    }
    this.matched++;
    const trust: StatTrust = wasRacy ? 'racy' : 'trusted';
    const verdict = this.detector.detect(old, entry, trust);
    if (old.kind === 'dir' && (verdict.outcome !== 'same' || trust === 'racy')) {
      if (kindOfMode(entry.stats.mode) === 'dir') this.movedDirs.push(entry.path);
      else this.replacedDirs.push(entry.path);
    }
    switch (verdict.outcome) {
      case 'same':
        return;
      case 'refreshed':
        this.index.set(entry.path, verdict.record);
        return;
      case 'changed':
        this.index.set(entry.path, verdict.record);
        this.changed.push(entry.path);
        return;
    }
  }

  readonly onSkip = (path: string, reason: WalkSkip): void => {
    this.skips.push([path, reason]);
  };

  /**
   * Paths the walk could not look below: a mount hides what the image has there, and it
   * is back once the mount is gone. (A vanished entry is simply gone.)
   */
  passedOver(): string[] {
    return this.skips.filter(([, reason]) => reason !== 'vanished').map(([path]) => path);
  }
}

/** A test for "this path or one of its ancestors is in `roots`", fast for the usual handful of roots. */
function underAny(roots: readonly string[]): (path: string) => boolean {
  if (roots.length === 0) return () => false;
  if (roots.includes('/')) return () => true;
  if (roots.length <= 16) {
    const prefixes = roots.map((root) => root + '/');
    return (path) => {
      for (let i = 0; i < roots.length; i++) if (path === roots[i] || path.startsWith(prefixes[i]!)) return true;
      return false;
    };
  }
  const set = new Set(roots);
  return (path) => {
    for (let current: string | undefined = path; current !== undefined; current = parentOf(current)) if (set.has(current)) return true;
    return false;
  };
}

/** `/a/b` → `/a`, `/a` → `/`, `/` → undefined. */
function parentOf(path: string): string | undefined {
  if (path === '/') return undefined;
  const cut = path.lastIndexOf('/');
  return cut === 0 ? '/' : path.slice(0, cut);
}

/** `/a/b/c` → `/`, `/a`, `/a/b`. */
function ancestorsOf(path: string): string[] {
  const ancestors: string[] = [];
  for (let parent = parentOf(path); parent !== undefined; parent = parentOf(parent)) ancestors.unshift(parent);
  return ancestors;
}

/** Sorted, without duplicates and without paths inside another listed path. */
function topMost(paths: readonly string[]): string[] {
  const all = new Set(paths);
  const inside = (path: string) => ancestorsOf(path).some((ancestor) => all.has(ancestor));
  return [...all].filter((path) => !inside(path)).sort();
}
