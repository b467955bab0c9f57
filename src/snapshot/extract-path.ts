import { chmodSync, lstatSync, mkdirSync, readlinkSync } from 'node:fs';
import { KilnError, describeError } from '../util/errors.js';
import type { IgnoreList } from './ignore.js';

/**
 * Paths inside the root during extraction are "rel" strings: relative to the root, without
 * a leading or trailing slash, `''` for the root itself; the image path is `'/' + rel`.
 */

/**
 * The normalised relative form of a tar entry name (`./x`, `x`, `/x/` all give `x`; `a/../b`
 * gives `b`), or undefined when a `..` would climb above the root.
 */
export function normaliseEntryName(name: string): string | undefined {
  let start = 0;
  let end = name.length;
  // The common shapes first: a leading "./" or "/" and a trailing "/" on directories.
  while (start < end && (name.charCodeAt(start) === 0x2f || (name.charCodeAt(start) === 0x2e && name.charCodeAt(start + 1) === 0x2f))) {
    start += name.charCodeAt(start) === 0x2f ? 1 : 2;
  }
  while (end > start && name.charCodeAt(end - 1) === 0x2f) end--;
  const trimmed = start === 0 && end === name.length ? name : name.slice(start, end);
  if (!needsCleaning(trimmed)) return trimmed;
  const parts: string[] = [];
  for (const part of trimmed.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) return undefined;
      parts.pop();
    } else {
      parts.push(part);
    }
  }
  return parts.join('/');
}

function needsCleaning(path: string): boolean {
  return path === '.' || path === '..' || path.startsWith('../') || path.endsWith('/..') || path.endsWith('/.') || path.includes('//') || path.includes('/./') || path.includes('/../');
}

export function parentOf(rel: string): string {
  const slash = rel.lastIndexOf('/');
  return slash === -1 ? '' : rel.slice(0, slash);
}

export function baseOf(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}

export function joinRel(dir: string, name: string): string {
  return dir === '' ? name : dir + '/' + name;
}

/**
 * Why a directory could not be resolved. A NUL never occurs in a real path, so these can
 * share a type with rel strings without ever being mistaken for one.
 */
export const MISSING = '\0missing';
export const IGNORED = '\0ignored';
export const VIA_SYMLINK = '\0symlink';
export type Unresolved = typeof MISSING | typeof IGNORED | typeof VIA_SYMLINK;

export function isUnresolved(value: string): value is Unresolved {
  return value.charCodeAt(0) === 0;
}

// Linux's own limit on symlinks followed while resolving one path.
const MAX_SYMLINKS = 40;

/**
 * Resolves directories inside the root the way a chroot would: walking component by
 * component with lstat, an absolute symlink target starts again at the root and `..` stops
 * at the root, so nothing a layer (or a lower layer) put there can lead outside. A base
 * image's `/lib -> usr/lib` therefore puts a later layer's `/lib/x` at `usr/lib/x`.
 *
 * Directories found are cached by the path that named them; `forget` drops the cache,
 * which the extractor does whenever it removes a directory or a symlink.
 */
export class RootResolver {
  private readonly cache = new Map<string, string>();

  constructor(
    readonly root: string,
    private readonly ignore: IgnoreList,
    /** Names the layer in messages. */
    private readonly what: string,
    /** Told about each directory created on the way (rel), so it can enter the index. */
    private readonly onCreate: (rel: string) => void,
    /** The process umask, when known. */
    private readonly umask: number | undefined,
  ) {}

  /** The path on this machine of `rel`. */
  host(rel: string): string {
    if (rel === '') return this.root;
    return this.root === '/' ? '/' + rel : this.root + '/' + rel;
  }

  /**
   * The rel of directory `path` (a normalised entry path), following symlinks within the
   * root. Missing directories are created when `create` is set (never inside an ignored
   * path, which gives IGNORED); otherwise a missing one gives MISSING.
   */
  directory(path: string, create: boolean): string | Unresolved {
    const cached = this.cache.get(path);
    if (cached !== undefined) return cached;
    if (path === '') return '';
    const hops = { count: 0 };
    let rel = '';
    let consumed = '';
    for (const part of path.split('/')) {
      const next = this.step(rel, part, create, hops, path);
      if (isUnresolved(next)) return next;
      rel = next;
      consumed = joinRel(consumed, part);
      this.cache.set(consumed, rel);
    }
    return rel;
  }

  /**
   * The rel of directory `path` without following any symlink, for hardlink targets: a
   * link must name its target by its real path.
   */
  directoryNoFollow(path: string): string | Unresolved {
    const cached = this.cache.get(path);
    // A cached path that resolved to itself went through no symlink.
    if (cached !== undefined) return cached === path ? cached : VIA_SYMLINK;
    let rel = '';
    for (const part of path === '' ? [] : path.split('/')) {
      const next = joinRel(rel, part);
      const stats = this.lstat(next, path);
      if (stats === undefined || !(stats.isDirectory() || stats.isSymbolicLink())) return MISSING;
      if (stats.isSymbolicLink()) return VIA_SYMLINK;
      rel = next;
    }
    this.cache.set(path, rel);
    return rel;
  }

  /**
   * Creates directory `rel` (its parent exists) with mode 0755, the mode of directories a
   * layer does not list, whatever the umask.
   */
  makeDirectory(rel: string): void {
    const host = this.host(rel);
    try {
      mkdirSync(host, 0o755);
      if (this.umask === undefined || (this.umask & 0o755) !== 0) chmodSync(host, 0o755);
    } catch (err) {
      throw new KilnError('IO', `Cannot create directory /${rel} for ${this.what}: ${describeError(err)}.`, { cause: err });
    }
  }

  /** Records that directory `path` (an entry path) is at `rel`. */
  remember(path: string, rel: string): void {
    this.cache.set(path, rel);
  }

  forget(): void {
    this.cache.clear();
  }

  private step(rel: string, part: string, create: boolean, hops: { count: number }, path: string): string | Unresolved {
    if (part === '' || part === '.') return rel;
    if (part === '..') return parentOf(rel);
    const next = joinRel(rel, part);
    const stats = this.lstat(next, path);
    if (stats === undefined) {
      if (!create) return MISSING;
      if (this.ignore.isIgnored('/' + next)) return IGNORED;
      this.makeDirectory(next);
      this.onCreate(next);
      return next;
    }
    if (stats.isDirectory()) return next;
    if (stats.isSymbolicLink()) {
      if (++hops.count > MAX_SYMLINKS) {
        throw new KilnError('INVALID_LAYER', `${capitalise(this.what)} has entry /${path} whose parent directories pass through more than ${MAX_SYMLINKS} symlinks; refusing it.`);
      }
      const target = readlinkSync(this.host(next));
      let current = target.startsWith('/') ? '' : rel;
      for (const targetPart of target.split('/')) {
        const resolved = this.step(current, targetPart, create, hops, path);
        if (isUnresolved(resolved)) return resolved;
        current = resolved;
      }
      return current;
    }
    throw new KilnError('INVALID_LAYER', `${capitalise(this.what)} has entry /${path} below /${next}, which is not a directory.`);
  }

  private lstat(rel: string, path: string) {
    try {
      return lstatSync(this.host(rel), { throwIfNoEntry: false });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw new KilnError('IO', `Cannot look at /${rel} while extracting /${path} of ${this.what}: ${describeError(err)}.`, { cause: err });
    }
  }
}

export function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
