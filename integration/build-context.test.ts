import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxLayout, pushLayout, runImage, runKiln, startRegistry, umociUnpack, type KilnRun, type RunningRegistry } from './harness/index.js';
import { freePort, LOOPBACK } from './harness/net.js';
import { spawnServer, stopProcess } from './harness/process.js';

const work = mkdtempSync(join(tmpdir(), 'kiln-context-test-'));
let registry: RunningRegistry;
let gitDaemon: ChildProcess | undefined;
let gitDaemonUrl = '';
let gitHttp: Server | undefined;
let gitHttpHost = '';
let tarHttp: Server | undefined;
let tarHttpUrl = '';
let firstCommit = '';
/** Authorization headers the smart-HTTP git server accepted or refused. */
const gitHttpAuth: Array<{ ok: boolean }> = [];
const GIT_USER = 'kiln-bot';
const GIT_PASSWORD = 'pw-9f3c-never-logged';
const GIT_TOKEN = 'tok-51ab-never-logged';

before(async () => {
  registry = await startRegistry('plain');
  const layout = await busyboxLayout();
  await pushLayout(layout.dir, layout.tag, registry, 'base/busybox:1');
  const dir = join(work, 'src');
  mkdirSync(join(dir, 'sub'), { recursive: true });
  writeFileSync(join(dir, 'Dockerfile'), `FROM ${registry.host}/base/busybox:1\nCOPY sub/file.txt /file.txt\nCMD ["cat", "/file.txt"]\n`);
  writeFileSync(join(dir, 'sub', 'file.txt'), 'from a tar context\n');
  spawnSync('tar', ['-czf', join(work, 'context.tar.gz'), '-C', dir, '.']);
  spawnSync('tar', ['-cf', join(work, 'context.tar'), '-C', dir, '.']);
  firstCommit = makeGitRepository(join(work, 'git'), `${registry.host}/base/busybox:1`);
  [gitDaemon, gitDaemonUrl] = await startGitDaemon(join(work, 'git'));
  gitHttp = await listen(createServer((req, res) => serveGit(join(work, 'git'), req, res)));
  gitHttpHost = `${LOOPBACK}:${(gitHttp.address() as AddressInfo).port}`;
  const archive = readFileSync(join(work, 'context.tar.gz'));
  tarHttp = await listen(createServer((req, res) => (req.url === '/ctx.tar.gz' ? res.writeHead(200, { 'content-length': archive.length }).end(archive) : res.writeHead(404).end())));
  tarHttpUrl = `http://${LOOPBACK}:${(tarHttp.address() as AddressInfo).port}`;
});
after(async () => {
  await registry?.stop();
  if (gitDaemon) await stopProcess(gitDaemon);
  await new Promise((resolve) => (gitHttp ? gitHttp.close(resolve) : resolve(undefined)));
  await new Promise((resolve) => (tarHttp ? tarHttp.close(resolve) : resolve(undefined)));
  rmSync(work, { recursive: true, force: true });
});

function kilnBuild(args: string[], stdinFile?: string, env: NodeJS.ProcessEnv = {}): Promise<KilnRun> {
  return runKiln(['build', '--log-format=text', ...args], { env, ...(stdinFile ? { stdinFile } : {}) });
}

for (const [name, context, stdin] of [
  ['tar://FILE.tar.gz', () => `tar://${join(work, 'context.tar.gz')}`, undefined],
  ['tar://FILE.tar', () => `tar://${join(work, 'context.tar')}`, undefined],
  ['tar://stdin', () => 'tar://stdin', () => join(work, 'context.tar.gz')],
] as const) {
  test(`a ${name} context is unpacked and built`, async () => {
    const layout = join(work, `layout-${name.replace(/\W/g, '')}`);
    const result = await kilnBuild(['--context', context(), '--no-push', '--oci-layout-path', layout], stdin?.());
    assert.equal(result.code, 0, result.stderr);
    const run = await runImage(layout, 'latest');
    assert.equal(run.stdout, 'from a tar context\n');
  });
}

test('--context-sub-path picks a directory inside the context', async () => {
  const dir = join(work, 'nested');
  mkdirSync(join(dir, 'app'), { recursive: true });
  writeFileSync(join(dir, 'app', 'Dockerfile'), `FROM ${registry.host}/base/busybox:1\nCOPY hello /hello\n`);
  writeFileSync(join(dir, 'app', 'hello'), 'hi\n');
  const layout = join(work, 'layout-sub');
  const result = await kilnBuild(['--context', `dir://${dir}`, '--context-sub-path', 'app', '--no-push', '--oci-layout-path', layout]);
  assert.equal(result.code, 0, result.stderr);
  const bundle = join(work, 'bundle-sub');
  await umociUnpack(layout, 'latest', bundle);
  assert.equal(spawnSync('cat', [join(bundle, 'rootfs', 'hello')], { encoding: 'utf8' }).stdout, 'hi\n');
});

test('a context that does not exist is one sentence', async () => {
  const result = await kilnBuild(['--context', `tar://${join(work, 'missing.tar.gz')}`, '--no-push']);
  assert.equal(result.code, 2);
  assert.match(result.stderr.trim(), /^kiln: error: --context tar:\/\/.*missing\.tar\.gz: .* does not exist\.$/);
});

/**
 * A bare repository `app.git` under `root`: `main` (two commits; the Dockerfile copies msg.txt)
 * and `feature`, which changes msg.txt and adds sub/app with a Dockerfile of its own.
 * Returns the id of the first commit, which no branch points at.
 */
function makeGitRepository(root: string, base: string): string {
  const src = join(root, 'src');
  mkdirSync(src, { recursive: true });
  const env = { ...process.env, GIT_AUTHOR_NAME: 'k', GIT_AUTHOR_EMAIL: 'k@k', GIT_COMMITTER_NAME: 'k', GIT_COMMITTER_EMAIL: 'k@k' };
  const git = (...args: string[]) => {
    const result = spawnSync('git', args, { cwd: src, env, encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    return result.stdout.trim();
  };
  git('init', '-q', '-b', 'main');
  writeFileSync(join(src, 'Dockerfile'), `FROM ${base}\nCOPY msg.txt /msg.txt\n`);
  writeFileSync(join(src, 'msg.txt'), 'first commit\n');
  git('add', '.');
  git('commit', '-qm', 'first');
  const first = git('rev-parse', 'HEAD');
  writeFileSync(join(src, 'msg.txt'), 'main branch\n');
  git('commit', '-qam', 'second');
  git('checkout', '-qb', 'feature');
  writeFileSync(join(src, 'msg.txt'), 'feature branch\n');
  mkdirSync(join(src, 'sub', 'app'), { recursive: true });
  writeFileSync(join(src, 'sub', 'app', 'Dockerfile'), `FROM ${base}\nCOPY hello /hello\n`);
  writeFileSync(join(src, 'sub', 'app', 'hello'), 'from sub/app on feature\n');
  git('add', '.');
  git('commit', '-qm', 'feature');
  git('checkout', '-q', 'main');
  git('clone', '-q', '--bare', src, join(root, 'app.git'));
  return first;
}

/** `git daemon` serving `root` on 127.0.0.1; resolves once it accepts connections. */
async function startGitDaemon(root: string): Promise<[ChildProcess, string]> {
  const port = await freePort();
  const child = spawnServer('git', ['daemon', '--reuseaddr', '--export-all', `--base-path=${root}`, `--listen=${LOOPBACK}`, `--port=${port}`, root]);
  for (let attempt = 0; ; attempt++) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = connect(port, LOOPBACK, () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (up) return [child, `git://${LOOPBACK}:${port}`];
    if (attempt > 100 || child.exitCode !== null) throw new Error('git daemon did not start');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function listen(server: Server): Promise<Server> {
  return new Promise((resolve) => server.listen(0, LOOPBACK, () => resolve(server)));
}

/**
 * Smart HTTP: git's own http-backend run as a CGI program, behind Basic auth that takes
 * GIT_USER:GIT_PASSWORD or, as kaniko sends a token, GIT_TOKEN with an empty password.
 */
function serveGit(root: string, req: IncomingMessage, res: ServerResponse): void {
  const auth = req.headers.authorization;
  const pair = auth?.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString() : undefined;
  const ok = pair === `${GIT_USER}:${GIT_PASSWORD}` || pair === `${GIT_TOKEN}:`;
  gitHttpAuth.push({ ok });
  if (!ok) {
    res.writeHead(401, { 'www-authenticate': 'Basic realm="git"' }).end();
    return;
  }
  const url = new URL(req.url ?? '/', 'http://git');
  const child = spawn('git', ['http-backend'], {
    env: {
      PATH: process.env.PATH,
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      REQUEST_METHOD: req.method ?? 'GET',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      ...(req.headers['content-length'] ? { CONTENT_LENGTH: req.headers['content-length'] } : {}),
      HTTP_CONTENT_ENCODING: req.headers['content-encoding'] ?? '',
      GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
      REMOTE_USER: GIT_USER,
      REMOTE_ADDR: LOOPBACK,
    },
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  req.pipe(child.stdin);
  let head: Buffer | undefined = Buffer.alloc(0);
  child.stdout.on('data', (chunk: Buffer) => {
    if (head === undefined) return void res.write(chunk);
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    let status = 200;
    for (const line of head.subarray(0, end).toString().split('\r\n')) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10);
      else res.setHeader(name, value);
    }
    res.writeHead(status);
    res.write(head.subarray(end + 4));
    head = undefined;
  });
  child.stdout.on('end', () => res.end());
}

async function builtFile(layout: string, path: string): Promise<string> {
  const bundle = `${layout}-bundle`;
  await umociUnpack(layout, 'latest', bundle);
  return readFileSync(join(bundle, 'rootfs', path), 'utf8');
}

/** The last line kiln printed: the error sentence, after the log lines of the work that led to it. */
function lastLine(stderr: string): string {
  assert.doesNotMatch(stderr, /^\s+at /m, 'no stack trace');
  return stderr.trim().split('\n').at(-1) ?? '';
}

const DAEMON = { GIT_PULL_METHOD: 'git' };

for (const [name, fragment, args, path, expected] of [
  ['the default branch', '', [], '/msg.txt', 'main branch\n'],
  ['#refs/heads/BRANCH', '#refs/heads/feature', [], '/msg.txt', 'feature branch\n'],
  ['#COMMIT', () => `#${firstCommit}`, [], '/msg.txt', 'first commit\n'],
  ['#REF:DIR', '#refs/heads/feature:sub/app', [], '/hello', 'from sub/app on feature\n'],
  ['--git branch= with --context-sub-path', '#refs/heads/main', ['--git', 'branch=feature,single-branch=true', '--context-sub-path', 'sub/app'], '/hello', 'from sub/app on feature\n'],
] as const) {
  test(`a git:// context from git daemon: ${name}`, async () => {
    const layout = join(work, `layout-git-${name.replace(/\W/g, '')}`);
    const ref = typeof fragment === 'function' ? fragment() : fragment;
    const result = await kilnBuild(['--context', `${gitDaemonUrl}/app.git${ref}`, ...args, '--no-push', '--oci-layout-path', layout], undefined, DAEMON);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await builtFile(layout, path), expected);
  });
}

test('a git:// context over smart HTTP (GIT_PULL_METHOD=http) with GIT_USERNAME / GIT_PASSWORD', async () => {
  const layout = join(work, 'layout-git-http');
  gitHttpAuth.length = 0;
  const result = await kilnBuild(['--context', `git://${gitHttpHost}/app.git#refs/heads/feature`, '--no-push', '--oci-layout-path', layout], undefined, { GIT_PULL_METHOD: 'http', GIT_USERNAME: GIT_USER, GIT_PASSWORD });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await builtFile(layout, '/msg.txt'), 'feature branch\n');
  assert.ok(gitHttpAuth.some((request) => request.ok), 'the server saw the credentials');
  assert.equal(result.stderr.includes(GIT_PASSWORD), false);
});

test('an http:// URL ending in .git is a git context; GIT_TOKEN is sent as kaniko sends it', async () => {
  const layout = join(work, 'layout-git-token');
  const result = await kilnBuild(['--context', `http://${gitHttpHost}/app.git`, '--no-push', '--oci-layout-path', layout], undefined, { GIT_TOKEN });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await builtFile(layout, '/msg.txt'), 'main branch\n');
  assert.equal(result.stderr.includes(GIT_TOKEN), false);
});

test('a private repository without credentials is one sentence naming --context', async () => {
  const result = await kilnBuild(['--context', `http://${gitHttpHost}/app.git#refs/heads/main`, '--no-push'], undefined, { GIT_USERNAME: '', GIT_PASSWORD: '', GIT_TOKEN: '' });
  assert.equal(result.code, 2, result.stderr);
  assert.match(lastLine(result.stderr), /^kiln: error: --context http:\/\/127\.0\.0\.1:\d+\/app\.git#refs\/heads\/main: git could not fetch refs\/heads\/main \(.*\); set GIT_USERNAME and GIT_PASSWORD, or GIT_TOKEN, for a private repository\.$/);
});

test('an unknown branch and an unreachable repository are one sentence naming --context', async () => {
  const unknown = await kilnBuild(['--context', `${gitDaemonUrl}/app.git#nope`, '--no-push'], undefined, DAEMON);
  assert.equal(unknown.code, 2, unknown.stderr);
  assert.match(lastLine(unknown.stderr), /^kiln: error: --context git:\/\/127\.0\.0\.1:\d+\/app\.git#nope: the repository has no branch or tag named nope; check the #REF of --context or --git branch=\.$/);
  const port = await freePort();
  const unreachable = await kilnBuild(['--context', `git://${LOOPBACK}:${port}/app.git`, '--no-push'], undefined, DAEMON);
  assert.equal(unreachable.code, 2, unreachable.stderr);
  assert.match(lastLine(unreachable.stderr), /^kiln: error: --context git:\/\/127\.0\.0\.1:\d+\/app\.git: git could not fetch the default branch \(unable to connect .*Connection refused\); check the repository URL and that its server is reachable\.$/);
});

for (const [name, context] of [
  ['tar://http://…/ctx.tar.gz', () => `tar://${tarHttpUrl}/ctx.tar.gz`],
  ['http://…/ctx.tar.gz (kaniko’s remote tar)', () => `${tarHttpUrl}/ctx.tar.gz`],
] as const) {
  test(`a ${name} context is downloaded and built`, async () => {
    const layout = join(work, `layout-${name.replace(/\W/g, '')}`);
    const result = await kilnBuild(['--context', context(), '--no-push', '--oci-layout-path', layout]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await builtFile(layout, '/file.txt'), 'from a tar context\n');
  });
}

test('a remote tar the server does not have is one sentence naming --context', async () => {
  const result = await kilnBuild(['--context', `tar://${tarHttpUrl}/gone.tar.gz`, '--no-push']);
  assert.equal(result.code, 2);
  assert.match(lastLine(result.stderr), /^kiln: error: --context tar:\/\/http:\/\/127\.0\.0\.1:\d+\/gone\.tar\.gz: the server answered HTTP 404; check the URL/);
});

test('gs:// contexts and unknown --git keys are refused in one sentence', async () => {
  const gs = await kilnBuild(['--context', 'gs://bucket/ctx.tar.gz', '--no-push']);
  assert.equal(gs.code, 2);
  assert.match(gs.stderr.trim(), /^kiln: error: --context gs:\/\/bucket\/ctx\.tar\.gz: gs:\/\/ contexts \(Google Cloud Storage\) are not supported by kiln; .*\.$/);
  const flag = await kilnBuild(['--context', `${gitDaemonUrl}/app.git`, '--git', 'depth=1', '--no-push'], undefined, DAEMON);
  assert.equal(flag.code, 2);
  assert.match(flag.stderr.trim(), /^kiln: error: --git depth=1: depth is not a --git option; use branch=NAME, single-branch=BOOL, recurse-submodules=BOOL or insecure-skip-tls=BOOL\.$/);
});
