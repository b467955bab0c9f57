import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';

export interface IgnoreListOptions {
  /** The root directory being built; mount points are only looked up when it is `/`. */
  rootDir: string;
  /**
   * kaniko's --kaniko-dir: where the executor keeps itself, never part of an image; null when
   * the root being built is not the executor's own `/` (the directory is not in it).
   */
  kanikoDir?: string | null;
  /** --ignore-var-run (default true). */
  ignoreVarRun?: boolean;
  /** --ignore-path, repeatable. */
  ignorePaths?: readonly string[];
  /** The text of /proc/self/mountinfo; read from the system when omitted and rootDir is `/`. */
  mountInfo?: string;
}

const ALWAYS_IGNORED = ['/proc', '/sys', '/dev', '/etc/mtab'];

/**
 * Paths inside the image that kiln never snapshots, never extracts over and never deletes:
 * the executor's own directory, kernel filesystems, and whatever the pod mounted in (the
 * build context, secrets, volumes).
 */
export class IgnoreList {
  private readonly paths: ReadonlySet<string>;

  private constructor(paths: Iterable<string>) {
    this.paths = new Set(paths);
  }

  static async create(options: IgnoreListOptions): Promise<IgnoreList> {
    const paths = [...ALWAYS_IGNORED];
    if (options.kanikoDir !== null) paths.push(options.kanikoDir ?? '/kaniko');
    // kaniko's --ignore-var-run: /var/run only. /run belongs to the image (Debian's /var/run
    // points there); whatever the pod mounts below it is on the list as a mount point.
    if (options.ignoreVarRun ?? true) paths.push('/var/run');
    paths.push(...(options.ignorePaths ?? []));
    if (posix.resolve(options.rootDir) === '/') {
      const mountInfo = options.mountInfo ?? (await readFile('/proc/self/mountinfo', 'utf8').catch(() => ''));
      paths.push(...mountPoints(mountInfo).filter((mount) => mount !== '/'));
    }
    return new IgnoreList(paths.map(normalize));
  }

  /** An ignore list from explicit image paths, for tests and for callers that computed one already. */
  static of(paths: readonly string[]): IgnoreList {
    return new IgnoreList(paths.map(normalize));
  }

  /** True when `path` (absolute inside the image) or one of its ancestors is ignored. */
  isIgnored(path: string): boolean {
    let current = normalize(path);
    for (;;) {
      if (this.paths.has(current)) return true;
      if (current === '/') return false;
      current = posix.dirname(current);
    }
  }

  /** True when something below `path` is ignored, so a walk must look inside instead of taking it whole. */
  hasIgnoredBelow(path: string): boolean {
    const prefix = normalize(path) === '/' ? '/' : normalize(path) + '/';
    for (const ignored of this.paths) if (ignored.startsWith(prefix)) return true;
    return false;
  }

  entries(): readonly string[] {
    return [...this.paths].sort();
  }
}

function normalize(path: string): string {
  return posix.resolve('/', path);
}

/** Mount points from /proc/self/mountinfo (field 5), with the kernel's octal escapes decoded. */
export function mountPoints(mountInfo: string): string[] {
  const points: string[] = [];
  for (const line of mountInfo.split('\n')) {
    const fields = line.split(' ');
    if (fields.length < 5) continue;
    points.push(fields[4]!.replace(/\\([0-7]{3})/g, (_m, octal: string) => String.fromCharCode(parseInt(octal, 8))));
  }
  return points;
}
