// What a --context value names, decided from its text alone: no file is opened and nothing is
// fetched here, so every kaniko form can be checked (and refused) before any work starts.
import { KilnError } from '../../util/errors.js';
import { redactUrl } from './redact.js';

export interface GitSource {
  kind: 'git';
  /** The URL git fetches from, without user info. */
  url: string;
  /** Credentials that were written into the URL (`https://user:token@host/...`), moved out of it. */
  urlCredentials?: { username: string; password: string };
  /** A branch, tag or other ref; a bare name is tried as a branch, then as a tag. */
  ref?: string;
  /** A full commit id to check out. */
  commit?: string;
  /** A directory inside the repository to use as the context (BuildKit's `#ref:dir`). */
  subDir?: string;
}

export type ContextSource =
  | { kind: 'dir'; path: string }
  | { kind: 'tar-file'; path: string }
  | { kind: 'tar-stdin' }
  | { kind: 'tar-url'; url: string }
  | GitSource;

/** kaniko's remote contexts kiln does not fetch: refused by scheme rather than mistaken for a path. */
const UNSUPPORTED_SCHEMES: Record<string, string> = {
  'gs://': 'Google Cloud Storage',
  's3://': 'Amazon S3',
  'az://': 'Azure Blob Storage',
  'azblob://': 'Azure Blob Storage',
};

/** kaniko's GIT_PULL_METHOD: how `git://` contexts are fetched. `git` (the git protocol itself) is kiln's addition. */
const PULL_METHODS = new Set(['https', 'http', 'git']);

const COMMIT = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/i;

/**
 * The forms kaniko takes, plus BuildKit's `#ref:dir`:
 * - a path or `dir://PATH`;
 * - `tar://PATH` (.tar or .tar.gz), `tar://stdin`, `tar://https://HOST/ctx.tar.gz`;
 * - `https://HOST/ctx.tar.gz` (kaniko's remote tar) — but an http(s) URL whose path ends in
 *   `.git`, or that carries a `#fragment`, is a git repository;
 * - `git://HOST/REPO.git[#REF][#COMMIT]` — fetched over https, as kaniko does, unless
 *   GIT_PULL_METHOD says `http` (or `git`, for a git daemon).
 */
export function parseContextSource(context: string, env: NodeJS.ProcessEnv = {}): ContextSource {
  const lower = context.toLowerCase();
  if (lower.startsWith('dir://')) return { kind: 'dir', path: context.slice('dir://'.length) };
  if (lower.startsWith('tar://')) {
    const rest = context.slice('tar://'.length);
    if (rest === 'stdin') return { kind: 'tar-stdin' };
    if (/^https?:\/\//i.test(rest)) return { kind: 'tar-url', url: checkedUrl(rest, context) };
    return { kind: 'tar-file', path: rest };
  }
  if (lower.startsWith('git://')) {
    const method = env.GIT_PULL_METHOD && PULL_METHODS.has(env.GIT_PULL_METHOD) ? env.GIT_PULL_METHOD : 'https';
    return parseGit(`${method}://${context.slice('git://'.length)}`, context);
  }
  if (/^https?:\/\//i.test(context)) {
    const hash = context.indexOf('#');
    const path = new URL(checkedUrl(hash < 0 ? context : context.slice(0, hash), context)).pathname;
    if (hash >= 0 || /\.git\/?$/i.test(path)) return parseGit(context, context);
    return { kind: 'tar-url', url: checkedUrl(context, context) };
  }
  for (const [scheme, name] of Object.entries(UNSUPPORTED_SCHEMES)) {
    if (lower.startsWith(scheme)) {
      throw new KilnError('USAGE', `--context ${redactUrl(context)}: ${scheme} contexts (${name}) are not supported by kiln; download the archive first and pass tar://FILE, or give an https:// URL of it.`);
    }
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(context);
  if (scheme) {
    throw new KilnError('USAGE', `--context ${redactUrl(context)}: ${scheme[1]}:// contexts are not supported; use a directory (PATH or dir://PATH), tar://FILE, tar://stdin, git://HOST/REPO.git or an https:// URL of a repository or a .tar.gz.`);
  }
  return { kind: 'dir', path: context };
}

function parseGit(withFragment: string, context: string): GitSource {
  const hash = withFragment.indexOf('#');
  const base = hash < 0 ? withFragment : withFragment.slice(0, hash);
  const fragment = hash < 0 ? '' : withFragment.slice(hash + 1);
  const parsed = new URL(checkedUrl(base, context));
  const source: GitSource = { kind: 'git', url: '' };
  if (parsed.username !== '' || parsed.password !== '') {
    source.urlCredentials = { username: decodeURIComponent(parsed.username), password: decodeURIComponent(parsed.password) };
    parsed.username = '';
    parsed.password = '';
  }
  source.url = parsed.href;
  // Ref names cannot hold ':' (git check-ref-format), so the first one starts the directory.
  const colon = fragment.indexOf(':');
  const refs = colon < 0 ? fragment : fragment.slice(0, colon);
  const subDir = colon < 0 ? '' : fragment.slice(colon + 1);
  const [first = '', second, ...extra] = refs.split('#');
  const refuse = (why: string): never => {
    throw new KilnError('USAGE', `--context ${redactUrl(context)}: ${why}; write REPO.git#REF, REPO.git#COMMIT, REPO.git#REF#COMMIT or REPO.git#REF:DIR.`);
  };
  if (extra.length > 0) refuse('has more than two #parts');
  if (first !== '') {
    if (COMMIT.test(first) && second === undefined) source.commit = first.toLowerCase();
    else source.ref = checkedRef(first, refuse);
  }
  if (second !== undefined) {
    if (!COMMIT.test(second)) refuse(`${second} after the second # is not a full commit id`);
    source.commit = second.toLowerCase();
  }
  if (subDir !== '') source.subDir = checkedSubDir(subDir, refuse);
  return source;
}

/** The ref is handed to git as an argument: nothing that git could read as an option or a pattern. */
function checkedRef(ref: string, refuse: (why: string) => never): string {
  if (ref.startsWith('-') || ref.includes('..') || /[\s~^?*[\\\x00-\x1f\x7f]/.test(ref) || ref.endsWith('/') || ref.endsWith('.lock')) {
    refuse(`${ref} is not a git ref name`);
  }
  return ref;
}

export function checkedSubDir(dir: string, refuse: (why: string) => never): string {
  const parts = dir.split('/').filter((part) => part !== '' && part !== '.');
  if (dir.startsWith('/') || parts.includes('..')) refuse(`the directory ${dir} must stay inside the repository`);
  return parts.join('/');
}

function checkedUrl(text: string, context: string): string {
  try {
    const url = new URL(text);
    if (url.hostname === '') throw new Error('no host');
    return url.href;
  } catch {
    throw new KilnError('USAGE', `--context ${redactUrl(context)} is not a valid URL; write it as SCHEME://HOST/PATH.`);
  }
}
