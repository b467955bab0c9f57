// A git context, fetched with the git binary: only the commit being built (depth 1), checked
// out into a directory of the build's scratch space.
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { KilnError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import type { GitOptions } from './git-options.js';
import { redactUrl } from './redact.js';
import type { GitSource } from './source.js';

interface GitRun {
  code: number;
  stdout: string;
  stderr: string;
}

interface Git {
  /** The --context value as messages show it. */
  shown: string;
  run(args: string[]): Promise<GitRun>;
  /** Runs git and turns a failure into one sentence naming --context. */
  must(args: string[], what: string): Promise<GitRun>;
}

/** Output kept from one git command: enough for its last error lines, bounded whatever git prints. */
const MAX_OUTPUT = 64 * 1024;

/**
 * Clones `source` into `dir`, an empty directory (created if missing). Credentials come from
 * the URL, else kaniko's GIT_TOKEN, else GIT_USERNAME / GIT_PASSWORD; they reach git through
 * its environment, never its command line, and are not written into the clone's .git/config.
 * The .git directory stays in the context, as in kaniko's clone.
 */
export async function cloneGitContext(source: GitSource, options: GitOptions, dir: string, shown: string, env: NodeJS.ProcessEnv, logger: Logger): Promise<void> {
  const git = gitIn(dir, gitEnv(source, options, env), shown, logger);
  await mkdir(dir, { recursive: true });
  await git.must(['init', '--quiet', '--template=', '.'], 'create a repository');
  await git.must(['remote', 'add', 'origin', source.url], 'add the remote');
  const ref = options.branch ?? source.ref;
  logger.info(`fetching the git context ${shown}${options.branch ? ` (branch ${options.branch})` : ''}`);
  if (source.commit !== undefined) {
    await fetchCommit(git, source.commit, ref);
  } else if (ref !== undefined) {
    await fetchRef(git, ref);
  } else {
    await fetch(git, ['HEAD'], 'the default branch');
    await git.must(['checkout', '--quiet', '--detach', 'FETCH_HEAD'], 'check out the default branch');
  }
  if (options.recurseSubmodules) {
    const shallow = await git.run(['submodule', 'update', '--init', '--recursive', '--depth', '1']);
    // A submodule pinned to a commit that is no branch tip cannot always be fetched alone.
    if (shallow.code !== 0) await git.must(['submodule', 'update', '--init', '--recursive'], 'fetch the submodules');
  }
  const head = await git.must(['rev-parse', 'HEAD'], 'read the checked-out commit');
  logger.info(`git context at commit ${head.stdout.trim()}`);
}

/** kaniko's `#COMMIT` and `#REF#COMMIT`: the commit alone if the server allows it, else the history that holds it. */
async function fetchCommit(git: Git, commit: string, ref: string | undefined): Promise<void> {
  const direct = await git.run(['fetch', '--quiet', '--no-tags', '--depth', '1', 'origin', commit]);
  if (direct.code !== 0) {
    if (ref !== undefined) await fetch(git, [await resolvedRef(git, ref)], `${ref} to find ${commit}`, { deep: true });
    else await fetch(git, ['+refs/heads/*:refs/remotes/origin/*'], `the branches to find ${commit}`, { deep: true });
  }
  await git.must(['checkout', '--quiet', '--detach', commit], `check out commit ${commit}`);
}

/** A full ref is fetched as written; a bare name is a branch, else a tag (kaniko's --git branch= order). */
async function fetchRef(git: Git, ref: string): Promise<void> {
  const name = await resolvedRef(git, ref);
  await fetch(git, [name], name);
  const branch = /^refs\/heads\/(.+)$/.exec(name)?.[1];
  // A branch is checked out as that branch, as a clone would be; anything else detached.
  if (branch !== undefined) await git.must(['checkout', '--quiet', '-B', branch, 'FETCH_HEAD'], `check out ${name}`);
  else await git.must(['checkout', '--quiet', '--detach', 'FETCH_HEAD'], `check out ${name}`);
}

async function resolvedRef(git: Git, ref: string): Promise<string> {
  if (ref.startsWith('refs/') || ref === 'HEAD') return ref;
  const listed = await git.must(['ls-remote', '--heads', '--tags', 'origin', `refs/heads/${ref}`, `refs/tags/${ref}`], `look up ${ref}`);
  const names = listed.stdout.split('\n').map((line) => line.split('\t')[1]).filter((name): name is string => name !== undefined);
  for (const candidate of [`refs/heads/${ref}`, `refs/tags/${ref}`]) {
    if (names.includes(candidate)) return candidate;
  }
  throw new KilnError('USAGE', `--context ${git.shown}: the repository has no branch or tag named ${ref}; check the #REF of --context or --git branch=.`);
}

async function fetch(git: Git, refspecs: string[], what: string, how: { deep?: boolean } = {}): Promise<void> {
  const depth = how.deep ? [] : ['--depth', '1'];
  const first = await git.run(['fetch', '--quiet', '--no-tags', ...depth, 'origin', ...refspecs]);
  if (first.code === 0) return;
  // A dumb HTTP server cannot send a shallow history: take the whole one rather than fail.
  if (depth.length > 0 && /does not support shallow/i.test(first.stderr)) {
    await git.must(['fetch', '--quiet', '--no-tags', 'origin', ...refspecs], `fetch ${what}`);
    return;
  }
  throw failure(git, `fetch ${what}`, first);
}

function gitIn(dir: string, env: NodeJS.ProcessEnv, shown: string, logger: Logger): Git {
  const git: Git = {
    shown,
    async run(args) {
      const result = await runGit(['-C', dir, ...args], env, shown);
      if (result.stderr.trim() !== '') logger.debug(`git ${args[0]}: ${redactUrl(result.stderr.trim())}`);
      return result;
    },
    async must(args, what) {
      const result = await git.run(args);
      if (result.code !== 0) throw failure(git, what, result);
      return result;
    },
  };
  return git;
}

function failure(git: Git, what: string, result: GitRun): KilnError {
  const says = gitSays(result.stderr);
  const auth = /authentication failed|could not read (username|password)|terminal prompts disabled|403|401/i.test(result.stderr);
  const hint = auth
    ? 'set GIT_USERNAME and GIT_PASSWORD, or GIT_TOKEN, for a private repository'
    : /couldn't find remote ref|not our ref|unadvertised object|no such remote ref/i.test(result.stderr)
      ? 'check the #REF of --context and --git branch='
      : 'check the repository URL and that its server is reachable';
  return new KilnError('USAGE', `--context ${git.shown}: git could not ${what} (${says}); ${hint}.`);
}

/** git's own diagnosis: its fatal/error lines, in one line, credentials hidden. */
function gitSays(stderr: string): string {
  const lines = stderr.split('\n').map((line) => line.trim()).filter((line) => line !== '');
  // From the first fatal/error line on: git continues a message on lines without a prefix.
  const first = lines.findIndex((line) => /^(fatal|error):/.test(line));
  const kept = first < 0 ? lines.slice(-1) : lines.slice(first).map((line) => line.replace(/^(fatal|error):\s*/, ''));
  const text = kept.join(' ').replace(/\.$/, '').replace(/\.\s/g, '; ');
  const short = text.length > 300 ? `${text.slice(0, 297)}...` : text;
  return redactUrl(short === '' ? 'no message' : short);
}

/**
 * The environment of every git command: answers in English (its messages are matched), never
 * prompts, and — when credentials are given — a credential helper, scoped to the repository's
 * server, that reads them from variables only git and its helper see.
 */
export function gitEnv(source: GitSource, options: GitOptions, base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, LC_ALL: 'C', LANGUAGE: 'C', GIT_TERMINAL_PROMPT: '0' };
  if (options.insecureSkipTls) env.GIT_SSL_NO_VERIFY = 'true';
  const credentials = credentialsFor(source, base);
  if (credentials !== undefined && /^https?:/.test(source.url)) {
    const scope = new URL(source.url).origin;
    let count = Number(base.GIT_CONFIG_COUNT ?? 0);
    if (!Number.isInteger(count) || count < 0) count = 0;
    // An empty helper first drops helpers configured elsewhere for this server, so kiln's
    // credentials are the ones used and nothing is stored by another helper.
    const helpers = ['', '!f() { test "$1" = get || return 0; printf "username=%s\\npassword=%s\\n" "$KILN_GIT_USERNAME" "$KILN_GIT_PASSWORD"; }; f'];
    for (const helper of helpers) {
      env[`GIT_CONFIG_KEY_${count}`] = `credential.${scope}.helper`;
      env[`GIT_CONFIG_VALUE_${count}`] = helper;
      count++;
    }
    env.GIT_CONFIG_COUNT = String(count);
    env.KILN_GIT_USERNAME = credentials.username;
    env.KILN_GIT_PASSWORD = credentials.password;
  }
  return env;
}

/** kaniko's order: GIT_TOKEN is the user name with an empty password; else GIT_USERNAME / GIT_PASSWORD. */
function credentialsFor(source: GitSource, env: NodeJS.ProcessEnv): { username: string; password: string } | undefined {
  if (source.urlCredentials !== undefined) return source.urlCredentials;
  if (env.GIT_TOKEN) return { username: env.GIT_TOKEN, password: '' };
  if (env.GIT_USERNAME || env.GIT_PASSWORD) return { username: env.GIT_USERNAME ?? '', password: env.GIT_PASSWORD ?? '' };
  return undefined;
}

function runGit(args: string[], env: NodeJS.ProcessEnv, shown: string): Promise<GitRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout = (stdout + chunk).slice(-MAX_OUTPUT);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-MAX_OUTPUT);
    });
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        reject(new KilnError('USAGE', `--context ${shown}: kiln fetches git contexts with the git binary, which is not installed; install git or pass a tar:// context.`, { cause: err }));
      } else {
        reject(new KilnError('IO', `--context ${shown}: git could not be started (${err.message}).`, { cause: err }));
      }
    });
    child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
