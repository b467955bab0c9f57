import type { Readable } from 'node:stream';
import type { IgnoreMatcher } from '../../dockerfile/dockerignore.js';
import type { IgnoreList } from '../../snapshot/ignore.js';
import type { Logger } from '../../util/log.js';

/** What an HTTP GET for `ADD <url>` answered: any status; kiln checks it. */
export interface FetchResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
}

export type Fetch = (url: string) => Promise<FetchResponse>;

export interface CopyRequest {
  /** Where the instruction is, for messages: "Dockerfile:12". Empty: messages carry no location. */
  where: string;
  kind: 'copy' | 'add';
  /**
   * Sources as expanded from the instruction, relative to `sourceRoot` (a leading `/` is the
   * root itself). They may hold Go filepath.Match wildcards (`*`, `?`, `[...]`, `\` escapes).
   * ADD also takes `http://` and `https://` URLs.
   */
  sources: string[];
  /** Heredoc sources (`COPY <<EOF /dest`): files named `name` holding `content`. */
  inline?: { name: string; content: string }[];
  /** As written: relative to `workdir` unless absolute; a trailing `/` means a directory. */
  dest: string;
  /** The image's working directory, absolute. */
  workdir: string;
  /** Host directory the sources are read from: the build context, or another stage's root filesystem. */
  sourceRoot: string;
  /** How messages name `sourceRoot`: "build context" (default) or e.g. `stage "builder"`. */
  sourceName?: string;
  /** `.dockerignore`, for the build context only. */
  sourceIgnore?: IgnoreMatcher;
  /** Host directory of the root filesystem being built. */
  rootDir: string;
  /** `--chown`, resolved by the caller. Without it everything copied belongs to 0:0, as in Docker. */
  owner?: { uid: number; gid: number };
  /** `--chmod`: octal (`755`) or symbolic (`u+x,g-w`, `u=rwX,go=rX`). */
  chmod?: string;
  /** ADD `--checksum` (`sha256:<hex>`, also sha384 and sha512), for a single URL source. */
  checksum?: string;
  /** `--exclude` patterns, matched against paths relative to each source, as .dockerignore patterns are. */
  exclude?: string[];
  /**
   * Whether a wildcard that matches nothing is accepted. BuildKit and kaniko accept it; the
   * classic Docker builder fails with "no source files were specified" (the default here).
   */
  allowEmptyWildcard?: boolean;
  /** Image paths never written (kiln's ignore list: /kaniko, /proc, mounts). */
  ignore?: IgnoreList;
  /** Downloads ADD URLs; default: undici, honouring HTTP(S)_PROXY and NO_PROXY, following redirects. */
  fetch?: Fetch;
  /** Where downloads wait until they are verified; default the system's temp directory. */
  tempDir?: string;
  logger?: Logger;
}

/** One entry of the source content, as it goes into a cache key. */
export interface SourceDigestInput {
  /**
   * Relative to the source root, symlinks of a named source resolved; `<<name` for a heredoc
   * source; the URL itself for an ADD URL.
   */
  path: string;
  kind: SourceKind;
  /** Permission bits as found at the source (st_mode & 0o7777), before --chmod. */
  mode: number;
  size: number;
  /**
   * xxh64 (16 hex digits) of a file's content or a symlink's target; '' for directories and
   * nodes. For a URL: the --checksum when given, else '' (the URL is not fetched to plan a build).
   */
  contentHash: string;
}

export type SourceKind = 'file' | 'dir' | 'symlink' | 'fifo' | 'char' | 'block' | 'url';

export interface CopyResult {
  /** Image paths created or changed, absolute, sorted: what the snapshotter must look at. */
  written: string[];
  /** The source content after .dockerignore and --exclude, sorted by path: input to cache keys. */
  sourceDigestInputs: SourceDigestInput[];
}
