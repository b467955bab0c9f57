// The file semantics of COPY and ADD, as Docker defines them:
// - each source is a path in the source root (the build context or another stage), never
//   outside it; wildcards expand, a named symlink is followed inside the root, and
//   .dockerignore'd paths do not exist;
// - a directory source copies its contents, not itself; other sources keep their name in a
//   destination directory or become the destination file;
// - several sources need a destination directory (`dest/`); a relative destination starts at
//   WORKDIR; missing directories are created 0755 and owned like the copy;
// - files keep mode and times; the owner is --chown or 0:0; --chmod and --exclude apply;
// - ADD extracts local tar archives (by content) and downloads URLs (0600, Last-Modified).
import { lstatSync, rmSync, type Stats } from 'node:fs';
import { posix } from 'node:path';
import xxhash from 'xxhash-wasm';
import { createIgnoreMatcher, type IgnoreMatcher } from '../../dockerfile/dockerignore.js';
import { IgnoreList } from '../../snapshot/ignore.js';
import { KilnError, describeError } from '../../util/errors.js';
import { silentLogger, type Logger } from '../../util/log.js';
import { absoluteImagePath, resolveInRoot } from '../isolation/root-path.js';
import { detectArchive, extractArchive, type ArchiveCompression } from './archive.js';
import { parseChmod, type ModeChange } from './chmod.js';
import { CopyEngine, type Target } from './engine.js';
import { copyError, quote } from './errors.js';
import { defaultFetch, download, isUrl, parseChecksum, urlFileName, type Download } from './fetch.js';
import { planSources, type PlannedSource } from './sources.js';
import type { CopyRequest, CopyResult, SourceDigestInput } from './types.js';

export type { CopyRequest, CopyResult, Fetch, FetchResponse, SourceDigestInput, SourceKind } from './types.js';
export { parseChmod, type ModeChange } from './chmod.js';
export { defaultFetch } from './fetch.js';

interface Settings {
  chmod: ModeChange | undefined;
  exclude: IgnoreMatcher | undefined;
  checksum: { algorithm: string; hex: string } | undefined;
}

/** Copies the sources of one COPY or ADD into the root filesystem. */
export async function copyFiles(request: CopyRequest): Promise<CopyResult> {
  const { where } = request;
  const settings = checkRequest(request);
  const planned = await planSources(request);
  const logger = request.logger ?? silentLogger();
  const engine = new CopyEngine({
    where,
    rootDir: request.rootDir,
    owner: request.owner ?? { uid: 0, gid: 0 },
    chmod: settings.chmod,
    sourceIgnore: request.sourceIgnore,
    exclude: settings.exclude,
    ignore: request.ignore,
    hasher: await xxhash(),
    logger,
  });

  // Where everything goes, decided before anything is written.
  const destIsDir = /(^|\/)\.?$/.test(request.dest);
  const dest = await resolveInRoot(request.rootDir, absoluteImagePath(request.dest, request.workdir));
  const destStats = lstatOrUndefined(dest.hostPath);
  const intoDir = destIsDir || destStats?.isDirectory() === true;
  if (planned.length > 1 && !intoDir) {
    const instruction = request.kind.toUpperCase();
    throw copyError(where, 'DOCKERFILE', `when using ${instruction} with more than one source file, the destination must be a directory and end with a /; write ${quote(request.dest + '/')}.`);
  }
  const archives = new Map<PlannedSource, ArchiveCompression>();
  if (request.kind === 'add') {
    for (const source of planned) {
      if (source.type !== 'path' || !source.stats.isFile() || settings.exclude?.ignores(source.name, false)) continue;
      const compression = await detectArchive(source.host).catch((err: unknown) => {
        throw copyError(where, 'IO', `cannot read ${quote(source.named)} (${describeError(err)}); check its permissions.`, err);
      });
      if (compression !== undefined) archives.set(source, compression);
    }
  }

  const downloads = new Map<PlannedSource, Download>();
  try {
    for (const source of planned) {
      if (source.type !== 'url') continue;
      downloads.set(source, await download(source.url, { where, fetch: request.fetch ?? defaultFetch, tempDir: request.tempDir, checksum: settings.checksum }));
    }

    const extracted: string[] = [];
    /** The target of a source that keeps its name: inside the destination directory, or the destination itself. */
    const fileTarget = (name: string): Target | undefined => {
      const dir = intoDir ? dest.imagePath : posix.dirname(dest.imagePath);
      if (isIgnoredDir(request, dir, logger)) return undefined;
      const parent = engine.ensureDir(dir);
      return intoDir ? { host: posix.join(parent.host, name), image: posix.join(parent.image, name) } : { host: dest.hostPath, image: dest.imagePath };
    };
    const dirTarget = (what: string): Target | undefined => {
      if (destStats !== undefined && !destStats.isDirectory()) {
        throw copyError(where, 'COPY_DEST', `cannot copy ${what} onto ${dest.imagePath}, which is a file in the image; remove it first or choose another destination.`);
      }
      return isIgnoredDir(request, dest.imagePath, logger) ? undefined : engine.ensureDir(dest.imagePath);
    };

    for (const source of planned) {
      switch (source.type) {
        case 'inline': {
          const target = fileTarget(source.name);
          engine.writeInline(source.name, source.content, target);
          break;
        }
        case 'url': {
          const fetched = downloads.get(source)!;
          engine.describe(urlInput(source.url, request.checksum));
          const target = fileTarget(urlFileName(source.url));
          if (target !== undefined) engine.placeDownload(fetched.tempPath, fetched.mtime, target);
          break;
        }
        case 'path': {
          if (source.stats.isDirectory()) {
            engine.copyDirContents(source.host, source.rel, dirTarget(`directory ${quote(source.named || '.')}`));
            break;
          }
          const compression = archives.get(source);
          if (compression !== undefined) {
            engine.describe(fileInput(source.rel, source.stats, engine.hashFile(source.host)));
            const target = dirTarget(`archive ${quote(source.named)}`);
            if (target !== undefined) extracted.push(...(await extract(request, source, compression, target, logger)));
            break;
          }
          if (settings.exclude?.ignores(source.name, false)) break;
          engine.copyEntry(source.host, source.stats, source.rel, source.name, fileTarget(source.name));
          break;
        }
      }
    }
    const written = new Set([...engine.written, ...extracted]);
    return { written: [...written].sort(compare), sourceDigestInputs: sortInputs(engine.digests) };
  } finally {
    for (const fetched of downloads.values()) rmSync(fetched.tempPath, { force: true });
  }
}

/**
 * The description of the sources `copyFiles` would produce in `sourceDigestInputs`, without
 * writing anything or fetching URLs: what a cache key needs before the step runs.
 */
export async function describeSources(request: CopyRequest): Promise<SourceDigestInput[]> {
  const settings = checkRequest(request);
  const planned = await planSources(request);
  const engine = new CopyEngine({
    where: request.where,
    rootDir: undefined,
    owner: { uid: 0, gid: 0 },
    chmod: undefined,
    sourceIgnore: request.sourceIgnore,
    exclude: settings.exclude,
    ignore: undefined,
    hasher: await xxhash(),
    logger: request.logger ?? silentLogger(),
  });
  for (const source of planned) {
    if (source.type === 'inline') engine.writeInline(source.name, source.content, undefined);
    else if (source.type === 'url') engine.describe(urlInput(source.url, request.checksum));
    else if (source.stats.isDirectory()) engine.copyDirContents(source.host, source.rel, undefined);
    else engine.copyEntry(source.host, source.stats, source.rel, source.name, undefined);
  }
  return sortInputs(engine.digests);
}

/** Checks the flags that do not depend on the filesystem. */
function checkRequest(request: CopyRequest): Settings {
  const { where } = request;
  const chmod = request.chmod === undefined ? undefined : parseChmod(request.chmod);
  if (request.chmod !== undefined && chmod === undefined) {
    throw copyError(where, 'DOCKERFILE', `--chmod=${request.chmod} is not a file mode; write an octal mode (e.g. 755) or a symbolic one (e.g. u+x,go=rX).`);
  }
  let checksum: Settings['checksum'];
  if (request.checksum !== undefined) {
    if (request.kind !== 'add') throw copyError(where, 'DOCKERFILE', '--checksum is only for ADD; remove it from COPY.');
    if (request.sources.length + (request.inline?.length ?? 0) !== 1) {
      throw copyError(where, 'DOCKERFILE', '--checksum cannot be given for several sources; split the ADD into one per URL.');
    }
    if (!isUrl(request.sources[0] ?? '')) {
      throw copyError(where, 'DOCKERFILE', `--checksum is only for http(s) URLs, and ${quote(request.sources[0] ?? '')} is a local path; remove --checksum.`);
    }
    checksum = parseChecksum(where, request.checksum);
  }
  let exclude: IgnoreMatcher | undefined;
  if (request.exclude !== undefined && request.exclude.length > 0) {
    for (const pattern of request.exclude) {
      try {
        createIgnoreMatcher(pattern);
      } catch (err) {
        if (!(err instanceof KilnError)) throw err;
        throw copyError(where, 'DOCKERFILE', `--exclude=${pattern} is not a valid pattern; close every [ ] class and end no pattern with a backslash.`, err);
      }
    }
    exclude = createIgnoreMatcher(request.exclude.join('\n'));
  }
  return { chmod, exclude, checksum };
}

/**
 * Extracts an archive into `target`, keeping kiln's ignore list (re-rooted at the target),
 * and returns the image paths written.
 */
async function extract(request: CopyRequest, source: Extract<PlannedSource, { type: 'path' }>, compression: ArchiveCompression, target: Target, logger: Logger): Promise<string[]> {
  const below = (request.ignore?.entries() ?? [])
    .filter((path) => path.startsWith(target.image === '/' ? '/' : target.image + '/'))
    .map((path) => (target.image === '/' ? path : path.slice(target.image.length)));
  try {
    const paths = await extractArchive(source.host, compression, target.host, { ignore: IgnoreList.of(below), logger, name: `archive ${quote(source.named)}` });
    return paths.map((path) => (path === '/' ? target.image : posix.join(target.image, path)));
  } catch (err) {
    // The extractor's own sentence speaks of layers; the low-level cause says what is wrong here.
    const detail = err instanceof KilnError && err.cause !== undefined ? describeError(err.cause) : err instanceof Error ? err.message.replace(/\.$/, '') : String(err);
    const code = err instanceof KilnError && err.code !== 'IO' ? 'COPY_SOURCE' : 'IO';
    throw copyError(request.where, code, `ADD could not extract ${quote(source.named)} (${detail}); check that the file is a complete tar archive.`, err);
  }
}

function isIgnoredDir(request: CopyRequest, image: string, logger: Logger): boolean {
  if (request.ignore?.isIgnored(image) !== true) return false;
  const at = request.where === '' ? '' : `${request.where}: `;
  logger.warn({ path: image }, `${at}${image} is a path kiln never writes (ignore list); nothing was copied there.`);
  return true;
}

function fileInput(path: string, stats: Stats, hash: string): SourceDigestInput {
  return { path, kind: 'file', mode: stats.mode & 0o7777, size: stats.size, contentHash: hash };
}

function urlInput(url: string, checksum: string | undefined): SourceDigestInput {
  return { path: url, kind: 'url', mode: 0, size: 0, contentHash: checksum ?? '' };
}

/** Sorted by path, duplicates (sources that overlap) once. */
function sortInputs(inputs: SourceDigestInput[]): SourceDigestInput[] {
  const unique = new Map<string, SourceDigestInput>();
  for (const input of inputs) unique.set(JSON.stringify([input.path, input.kind, input.mode, input.size, input.contentHash]), input);
  return [...unique.values()].sort((a, b) => compare(a.path, b.path) || compare(a.kind, b.kind) || compare(a.contentHash, b.contentHash));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function lstatOrUndefined(host: string): Stats | undefined {
  try {
    return lstatSync(host, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}
