// The git context against repositories on this machine (file:// URLs), with the real git binary.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { prepareContext } from '../../src/builder/context.js';
import { cloneGitContext, gitEnv } from '../../src/builder/context/git.js';
import { parseGitFlag } from '../../src/builder/context/git-options.js';
import type { GitSource } from '../../src/builder/context/source.js';
import { isKilnError } from '../../src/util/errors.js';
import { createLogger, type Logger } from '../../src/util/log.js';

const work = mkdtempSync(join(tmpdir(), 'kiln-context-git-'));
const repo = join(work, 'repo.git');
const url = `file://${repo}`;
let first = '';
let middle = '';
let tip = '';

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' } }).trim();
}

before(() => {
  const src = join(work, 'src');
  mkdirSync(join(src, 'sub', 'app'), { recursive: true });
  git(src, 'init', '-q', '-b', 'main');
  writeFileSync(join(src, 'msg.txt'), 'first\n');
  writeFileSync(join(src, 'sub', 'app', 'hello'), 'hi\n');
  git(src, 'add', '.');
  git(src, 'commit', '-qm', 'first');
  first = git(src, 'rev-parse', 'HEAD');
  writeFileSync(join(src, 'msg.txt'), 'middle\n');
  git(src, 'commit', '-qam', 'middle');
  middle = git(src, 'rev-parse', 'HEAD');
  writeFileSync(join(src, 'msg.txt'), 'main\n');
  git(src, 'commit', '-qam', 'second');
  git(src, 'checkout', '-qb', 'feature');
  writeFileSync(join(src, 'msg.txt'), 'feature\n');
  git(src, 'commit', '-qam', 'feature');
  tip = git(src, 'rev-parse', 'HEAD');
  git(src, 'tag', 'v1');
  // A tag and a branch of the same name: a bare name means the branch, as in kaniko.
  git(src, 'tag', 'main', middle);
  git(src, 'checkout', '-q', 'main');
  git(work, 'clone', '-q', '--bare', src, repo);
});
after(() => rmSync(work, { recursive: true, force: true }));

function capture(): { logger: Logger; text: () => string } {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  return { logger: createLogger({ level: 'debug', format: 'text', destination: out }), text: () => Buffer.concat(chunks).toString() };
}

async function clone(source: Omit<GitSource, 'kind' | 'url'>, flag: string[] = [], env: NodeJS.ProcessEnv = process.env): Promise<{ dir: string; log: string }> {
  const dir = mkdtempSync(join(work, 'clone-'));
  const { logger, text } = capture();
  await cloneGitContext({ kind: 'git', url, ...source }, parseGitFlag(flag), join(dir, 'ctx'), url, env, logger);
  return { dir: join(dir, 'ctx'), log: text() };
}

const read = (dir: string, path: string) => readFileSync(join(dir, path), 'utf8');
const head = (dir: string) => git(dir, 'rev-parse', 'HEAD');

test('without a ref, the default branch is fetched with depth 1', async () => {
  const { dir } = await clone({});
  assert.equal(read(dir, 'msg.txt'), 'main\n');
  assert.equal(git(dir, 'rev-list', '--count', 'HEAD'), '1');
});

test('a branch is fetched and checked out as that branch', async () => {
  for (const ref of ['refs/heads/feature', 'feature']) {
    const { dir } = await clone({ ref });
    assert.equal(read(dir, 'msg.txt'), 'feature\n');
    assert.equal(git(dir, 'rev-parse', '--abbrev-ref', 'HEAD'), 'feature');
    assert.equal(git(dir, 'rev-list', '--count', 'HEAD'), '1');
  }
});

test('a bare name is a branch before a tag; a full tag ref and a tag name work', async () => {
  assert.equal(read((await clone({ ref: 'main' })).dir, 'msg.txt'), 'main\n');
  assert.equal(head((await clone({ ref: 'refs/tags/main' })).dir), middle);
  assert.equal(head((await clone({ ref: 'v1' })).dir), tip);
});

test('a commit is fetched alone, and #REF#COMMIT checks the commit out', async () => {
  const alone = await clone({ commit: first });
  assert.equal(head(alone.dir), first);
  assert.equal(read(alone.dir, 'msg.txt'), 'first\n');
  const both = await clone({ ref: 'refs/heads/main', commit: first });
  assert.equal(head(both.dir), first);
});

test('when the server will not send a commit alone, the history holding it is fetched', async () => {
  // Protocol v0 refuses a want for a commit that is no branch tip.
  const v0 = { ...process.env, GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'protocol.version', GIT_CONFIG_VALUE_0: '0' };
  const alone = await clone({ commit: first }, [], v0);
  assert.equal(head(alone.dir), first);
  assert.match(alone.log, /unadvertised object|not our ref/);
  const both = await clone({ ref: 'main', commit: first }, [], v0);
  assert.equal(head(both.dir), first);
});

test('--git branch= replaces the ref of the context', async () => {
  const { dir } = await clone({ ref: 'refs/heads/main' }, ['branch=feature']);
  assert.equal(read(dir, 'msg.txt'), 'feature\n');
});

test('an unknown branch or commit is one sentence naming --context', async () => {
  await assert.rejects(clone({ ref: 'nope' }), (err: unknown) => {
    assert.ok(isKilnError(err, 'USAGE'));
    assert.equal(err.message, `--context ${url}: the repository has no branch or tag named nope; check the #REF of --context or --git branch=.`);
    return true;
  });
  await assert.rejects(clone({ ref: 'refs/heads/nope' }), /^KilnError: --context file:\/\/.*: git could not fetch refs\/heads\/nope \(couldn't find remote ref refs\/heads\/nope\); check the #REF of --context and --git branch=\.$/);
  await assert.rejects(clone({ commit: 'f'.repeat(40) }), /^KilnError: --context file:\/\/.*: git could not check out commit f{40} \(.*\); check the repository URL and that its server is reachable\.$/);
});

test('a repository that is not there is one sentence naming --context', async () => {
  const dir = mkdtempSync(join(work, 'missing-'));
  await assert.rejects(
    cloneGitContext({ kind: 'git', url: `file://${work}/nothing.git` }, parseGitFlag([]), join(dir, 'ctx'), 'git://example/nothing.git', process.env, capture().logger),
    (err: unknown) => {
      assert.ok(isKilnError(err, 'USAGE'));
      assert.match(err.message, /^--context git:\/\/example\/nothing\.git: git could not fetch the default branch \(.*does not appear to be a git repository.*\); check the repository URL and that its server is reachable\.$/);
      assert.equal(err.message.includes('\n'), false);
      return true;
    },
  );
});

test('without the git binary, the sentence says so', async () => {
  const empty = mkdtempSync(join(work, 'nobin-'));
  await assert.rejects(clone({}, [], { ...process.env, PATH: empty }), /^KilnError: --context file:\/\/.*: kiln fetches git contexts with the git binary, which is not installed; install git or pass a tar:\/\/ context\.$/);
});

test('submodules are fetched only with recurse-submodules=true', async () => {
  const parentSrc = join(work, 'parent-src');
  mkdirSync(parentSrc);
  git(parentSrc, 'init', '-q', '-b', 'main');
  git(parentSrc, '-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', url, 'lib');
  git(parentSrc, 'commit', '-qm', 'with a submodule');
  const parent = join(work, 'parent.git');
  git(work, 'clone', '-q', '--bare', parentSrc, parent);
  const allowFile = { ...process.env, GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'protocol.file.allow', GIT_CONFIG_VALUE_0: 'always' };
  for (const recurse of [false, true]) {
    const dir = mkdtempSync(join(work, 'sub-'));
    await cloneGitContext({ kind: 'git', url: `file://${parent}` }, parseGitFlag([`recurse-submodules=${recurse}`]), join(dir, 'ctx'), 'p', allowFile, capture().logger);
    assert.equal(existsSync(join(dir, 'ctx', 'lib', 'msg.txt')), recurse);
  }
});

test('credentials reach git through a scoped credential helper, never its arguments or .git/config', async () => {
  const source: GitSource = { kind: 'git', url: 'https://git.example.com:8443/app.git' };
  const env = gitEnv(source, parseGitFlag([]), { PATH: process.env.PATH, GIT_USERNAME: 'bot', GIT_PASSWORD: 'pa ss%w0rd' });
  assert.equal(env.GIT_CONFIG_COUNT, '2');
  assert.equal(env.GIT_CONFIG_KEY_1, 'credential.https://git.example.com:8443.helper');
  assert.equal(JSON.stringify(env).includes('pa ss%w0rd'), true);
  assert.equal([env.GIT_CONFIG_KEY_0, env.GIT_CONFIG_VALUE_0, env.GIT_CONFIG_KEY_1, env.GIT_CONFIG_VALUE_1].join(' ').includes('pa ss%w0rd'), false);
  const fill = (host: string) => spawnSync('git', ['credential', 'fill'], { env: { ...env, HOME: work, XDG_CONFIG_HOME: work }, input: `protocol=https\nhost=${host}\n\n`, encoding: 'utf8' });
  assert.match(fill('git.example.com:8443').stdout, /^username=bot\npassword=pa ss%w0rd\n/m);
  // Another server is not given them.
  assert.doesNotMatch(fill('other.example.com').stdout, /pa ss%w0rd/);

  const token = gitEnv(source, parseGitFlag([]), { GIT_TOKEN: 'tok', GIT_USERNAME: 'ignored' });
  assert.deepEqual([token.KILN_GIT_USERNAME, token.KILN_GIT_PASSWORD], ['tok', '']);
  const inUrl = gitEnv({ ...source, urlCredentials: { username: 'u', password: 'p' } }, parseGitFlag([]), { GIT_TOKEN: 'tok' });
  assert.deepEqual([inUrl.KILN_GIT_USERNAME, inUrl.KILN_GIT_PASSWORD], ['u', 'p']);
  assert.equal(gitEnv(source, parseGitFlag([]), {}).GIT_CONFIG_COUNT, undefined);
  assert.equal(gitEnv(source, parseGitFlag(['insecure-skip-tls=true']), {}).GIT_SSL_NO_VERIFY, 'true');

  // A git that records its arguments: the clone must not pass the password on a command line.
  const bin = mkdtempSync(join(work, 'bin-'));
  const argv = join(bin, 'argv.log');
  const realGit = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
  writeFileSync(join(bin, 'git'), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${argv}'\nexec '${realGit}' "$@"\n`);
  chmodSync(join(bin, 'git'), 0o755);
  const { dir } = await clone({ ref: 'feature' }, [], { ...process.env, PATH: `${bin}:${process.env.PATH}`, GIT_USERNAME: 'bot', GIT_PASSWORD: 'hunter2-secret' });
  assert.ok(readFileSync(argv, 'utf8').includes('fetch'));
  assert.equal(readFileSync(argv, 'utf8').includes('hunter2-secret'), false);
  assert.equal(readFileSync(join(dir, '.git', 'config'), 'utf8').includes('hunter2'), false);
});

test('prepareContext clones into the scratch directory, applies #REF:DIR and --context-sub-path, and dispose() removes it', async () => {
  const scratch = mkdtempSync(join(work, 'scratch-'));
  const env = { ...process.env, GIT_PULL_METHOD: 'git' };
  // file:// is not a context form, so the clone is reached through an https URL rewritten by git's own insteadOf.
  const rewrite = { ...env, GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: `url.${url}.insteadOf`, GIT_CONFIG_VALUE_0: 'https://repo.invalid/app.git' };
  const context = await prepareContext('https://repo.invalid/app.git#refs/heads/feature:sub', 'app', scratch, Readable.from([]), capture().logger, { env: rewrite });
  assert.equal(read(context.dir, 'hello'), 'hi\n');
  assert.ok(context.dir.startsWith(scratch));
  assert.equal(readdirSync(scratch).length, 1);
  await context.dispose();
  assert.deepEqual(readdirSync(scratch), []);

  await assert.rejects(prepareContext('https://repo.invalid/app.git#main:nothere', undefined, scratch, Readable.from([]), capture().logger, { env: rewrite }), /^KilnError: --context https:\/\/repo\.invalid\/app\.git#main:nothere: nothere is not a directory\.$/);
  assert.deepEqual(readdirSync(scratch), [], 'a failed clone leaves nothing behind');
});
