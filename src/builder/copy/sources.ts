// Turns the sources of one COPY/ADD into what will be copied: paths inside the source root
// (wildcards expanded, a named symlink followed inside the root, .dockerignore applied),
// heredocs and URLs. Nothing is written here.
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import { cleanPath, type IgnoreMatcher } from '../../dockerfile/dockerignore.js';
import { resolveInRoot } from '../isolation/root-path.js';
import { copyError, quote } from './errors.js';
import { isUrl } from './fetch.js';
import { compileComponent, hasWildcard } from './glob.js';
import type { CopyRequest } from './types.js';

export type PlannedSource =
  | {
      type: 'path';
      /** The source as the instruction named it (or as a wildcard matched it), from the root. */
      named: string;
      /** The last element of `named`: the file name a file source gets in a destination directory. */
      name: string;
      /** Its real path from the root, symlinks resolved ('' for the root itself). */
      rel: string;
      host: string;
      stats: Stats;
    }
  | { type: 'inline'; name: string; content: string }
  | { type: 'url'; url: string };

/** Every source of the request, in order; fails on a source that is missing, escapes the root, or is ignored. */
export async function planSources(request: CopyRequest): Promise<PlannedSource[]> {
  const { where } = request;
  const planned: PlannedSource[] = [];
  let wildcards = 0;
  for (const source of request.sources) {
    if (isUrl(source)) {
      if (request.kind === 'copy') {
        throw copyError(where, 'DOCKERFILE', `COPY cannot take the URL ${source} as a source; use ADD to download it.`);
      }
      if (new URL(source).pathname.endsWith('.git')) {
        throw copyError(where, 'DOCKERFILE', `ADD from a Git repository (${source}) is not supported by kiln; clone it in a RUN step instead.`);
      }
      planned.push({ type: 'url', url: source });
      continue;
    }
    if (/^git@/.test(source)) {
      throw copyError(where, 'DOCKERFILE', `ADD from a Git repository (${source}) is not supported by kiln; clone it in a RUN step instead.`);
    }
    const path = sourcePath(where, source);
    if (hasWildcard(path)) {
      wildcards++;
      for (const match of await expand(request, source, path)) {
        const found = await lookUp(request, match);
        if (found !== undefined) planned.push(found);
      }
      continue;
    }
    const found = await lookUp(request, path);
    if (found === undefined) throw notFound(request, source);
    planned.push(found);
  }
  for (const { name, content } of request.inline ?? []) planned.push({ type: 'inline', name, content });
  if (planned.length === 0 && wildcards > 0 && request.allowEmptyWildcard !== true) {
    const patterns = request.sources.map(quote).join(', ');
    throw copyError(where, 'COPY_SOURCE', `no source files were specified: ${patterns} matched nothing in the ${sourceName(request)}${request.sourceIgnore ? ' once .dockerignore was applied' : ''}; check the pattern.`);
  }
  return planned;
}

/** The source cleaned to a path from the root ('.' for the root); `../` that would leave it is refused. */
function sourcePath(where: string, source: string): string {
  let path = cleanPath(source);
  // An absolute source starts at the root: `/..` is the root itself.
  if (path.startsWith('/')) path = cleanPath(path.slice(1));
  if (path === '..' || path.startsWith('../')) {
    throw copyError(where, 'COPY_SOURCE', `the source ${quote(source)} is outside the build context; move the file into the context or change the context directory.`);
  }
  return path;
}

/**
 * The paths a wildcard source matches, component by component as Go's filepath.Glob does,
 * sorted within each directory. Directories are listed where the image's symlinks lead,
 * inside the root.
 */
async function expand(request: CopyRequest, source: string, pattern: string): Promise<string[]> {
  let candidates = [''];
  for (const part of pattern.split('/')) {
    if (!hasWildcard(part)) {
      candidates = candidates.map((c) => join(c, part));
      continue;
    }
    const regexp = compileComponent(part);
    if (regexp === undefined) {
      throw copyError(request.where, 'DOCKERFILE', `the source ${quote(source)} is not a valid pattern; close every [ ] class, or escape [ with \\ to mean the character.`);
    }
    const next: string[] = [];
    for (const dir of candidates) {
      const { hostPath } = await resolveInRoot(request.sourceRoot, '/' + dir);
      let names: string[];
      try {
        names = readdirSync(hostPath);
      } catch {
        continue; // not a directory: nothing matches below it
      }
      for (const name of names.sort()) if (regexp.test(name)) next.push(join(dir, name));
    }
    candidates = next;
  }
  return candidates;
}

/** The source at `path` (from the root), or undefined when it does not exist or .dockerignore leaves it out. */
async function lookUp(request: CopyRequest, path: string): Promise<PlannedSource | undefined> {
  const named = path === '.' ? '' : path;
  const resolved = await resolveInRoot(request.sourceRoot, '/' + named);
  const rel = resolved.imagePath.slice(1);
  let stats: Stats | undefined;
  try {
    stats = lstatSync(resolved.hostPath, { throwIfNoEntry: false });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOTDIR') throw err;
  }
  if (stats === undefined) return undefined;
  if (isIgnored(request.sourceIgnore, named, rel, stats.isDirectory())) return undefined;
  return { type: 'path', named, name: named.slice(named.lastIndexOf('/') + 1), rel, host: resolved.hostPath, stats };
}

/**
 * Whether .dockerignore leaves the source out: the path as named (a symlink there is not in
 * the context when ignored) or the real path it leads to. An ignored directory still counts
 * when an exception brings back something below it.
 */
function isIgnored(matcher: IgnoreMatcher | undefined, named: string, rel: string, isDir: boolean): boolean {
  if (matcher === undefined) return false;
  for (const path of new Set([named, rel])) {
    if (path === '' || !matcher.ignores(path, isDir)) continue;
    if (!isDir || !matcher.mayContainIncluded(path)) return true;
  }
  return false;
}

function notFound(request: CopyRequest, source: string) {
  const name = sourceName(request);
  if (name === 'build context') {
    return copyError(request.where, 'COPY_SOURCE', `${quote(source)} not found in build context or excluded by .dockerignore; check the path, which is relative to the context directory.`);
  }
  return copyError(request.where, 'COPY_SOURCE', `${quote(source)} not found in ${name}; check the path in that ${name.split(' ')[0]}.`);
}

export function sourceName(request: CopyRequest): string {
  return request.sourceName ?? 'build context';
}

function join(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}
