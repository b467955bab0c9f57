// The chroot isolation on a real image root (the harness's busybox image, unpacked with
// umoci): what the command sees inside, what it leaves behind, and that kiln's own mounts
// and mount points are gone afterwards. Also run as an unprivileged user, through a user
// namespace. Needs root (to unpack the image and to become the unprivileged user).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, chown, lstat, mkdir, mkdtemp, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { chrootIsolation, runCommand, type RunResult, type RunSpec } from '../src/builder/isolation/index.js';
import { isKilnError } from '../src/util/errors.js';
import { silentLogger } from '../src/util/log.js';
import { busyboxLayout, umociUnpack } from './harness/index.js';

const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;
/** Mount points the chroot needs and the busybox image lacks: kiln creates and removes them. */
const KILN_MOUNT_POINTS = ['proc', 'dev', 'sys', 'etc/resolv.conf', 'etc/hosts'];

let base: string;

before(async () => {
  if (!isRoot) return;
  base = await mkdtemp(join(tmpdir(), 'kiln-isolation-'));
  await chmod(base, 0o755);
});

after(async () => {
  if (base) await rm(base, { recursive: true, force: true });
});

/** A fresh busybox root directory, owned by `owner` (as a rootless kiln would have unpacked it). */
async function busyboxRoot(name: string, owner?: number): Promise<string> {
  const layout = await busyboxLayout();
  const bundle = join(base, name);
  await umociUnpack(layout.dir, layout.tag, bundle);
  await chmod(bundle, 0o755);
  const rootDir = join(bundle, 'rootfs');
  if (owner !== undefined) await chownTree(rootDir, owner);
  return rootDir;
}

async function chownTree(path: string, id: number): Promise<void> {
  await chown(path, id, id).catch(() => {});
  const stats = await lstat(path);
  if (stats.isSymbolicLink()) return;
  if (stats.isDirectory()) for (const name of await readdir(path)) await chownTree(join(path, name), id);
}

async function mountsUnder(rootDir: string): Promise<string[]> {
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
  return mountinfo.split('\n').map((line) => line.split(' ')[4] ?? '').filter((point) => point === rootDir || point.startsWith(rootDir + '/'));
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(() => true, () => false);
}

/** Sends `signal` to the shell whose script contains `marker`, found in the host's /proc. */
async function signalScript(marker: string, signal: NodeJS.Signals): Promise<void> {
  for (const name of await readdir('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    const cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.startsWith('/bin/sh\0-c\0') && cmdline.includes(marker)) process.kill(Number(name), signal);
  }
}

function collector(onChunk?: (text: string) => void): Writable & { text(): string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk);
      onChunk?.(Buffer.concat(chunks).toString('utf8'));
      callback();
    },
  });
  return Object.assign(stream, { text: () => Buffer.concat(chunks).toString('utf8') });
}

interface Outcome {
  result: RunResult;
  stdout: string;
  stderr: string;
}

async function runIn(rootDir: string, argv: string[], overrides: Partial<RunSpec> = {}): Promise<Outcome> {
  const stdout = collector();
  const stderr = collector();
  const result = await runCommand(chrootIsolation(), {
    rootDir,
    argv,
    env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
    cwd: '/',
    user: { uid: 0, gid: 0, groups: [] },
    stdout,
    stderr,
    logger: silentLogger(),
    recordChanges: true,
    ...overrides,
  });
  return { result, stdout: stdout.text(), stderr: stderr.text() };
}

const sh = (script: string) => ['/bin/sh', '-c', script];
const exited0: RunResult = { kind: 'exited', code: 0 };

/** The result without the changes an overlay reports (tested on their own below). */
function statusOf(result: RunResult | undefined): RunResult | undefined {
  if (result === undefined) return undefined;
  return result.kind === 'exited' ? { kind: 'exited', code: result.code } : result;
}

describe('the chroot isolation as root', { skip: isRoot ? false : 'needs root', timeout: 120_000 }, () => {
  let rootDir: string;
  let etcMtime: number;

  // Old times on / and /etc, set again after a test changes the image on purpose.
  async function setOldTimes(): Promise<void> {
    const old = new Date('2002-03-04T05:06:07Z');
    await utimes(join(rootDir, 'etc'), old, old);
    await utimes(rootDir, old, old);
    etcMtime = old.getTime();
  }

  before(async () => {
    rootDir = await busyboxRoot('as-root');
    await setOldTimes();
  });

  // After every run: nothing of kiln's mounted or left in the image.
  async function assertNoTrace(): Promise<void> {
    assert.deepEqual(await mountsUnder(rootDir), []);
    for (const path of KILN_MOUNT_POINTS) assert.equal(await exists(join(rootDir, path)), false, `${path} is left in the image`);
    assert.equal((await stat(join(rootDir, 'etc'))).mtime.getTime(), etcMtime);
    assert.equal((await stat(rootDir)).mtime.getTime(), etcMtime);
  }

  it('runs as root by default, with the image\'s user names', async () => {
    const { result, stdout } = await runIn(rootDir, ['id']);
    assert.deepEqual(statusOf(result), exited0);
    assert.equal(stdout, 'uid=0(root) gid=0(root)\n');
    await assertNoTrace();
  });

  it('drops to the given uid, gid and supplementary groups', async () => {
    const { result, stdout } = await runIn(rootDir, ['id'], { user: { uid: NOBODY, gid: NOBODY, groups: [10, 20] } });
    assert.deepEqual(statusOf(result), exited0);
    assert.equal(stdout, 'uid=65534(nobody) gid=65534(nobody) groups=10,20\n');
    await assertNoTrace();
  });

  it('keeps Docker\'s capabilities only', async () => {
    const { stdout } = await runIn(rootDir, sh('grep CapBnd /proc/self/status'));
    assert.equal(stdout, 'CapBnd:\t00000000a80425fb\n');
  });

  it('runs in the working directory, created for the user when missing', async () => {
    const { result, stdout } = await runIn(rootDir, ['pwd'], { cwd: '/work/app', user: { uid: NOBODY, gid: NOBODY, groups: [] } });
    assert.deepEqual(statusOf(result), exited0);
    assert.equal(stdout, '/work/app\n');
    for (const dir of ['work', 'work/app']) {
      const stats = await stat(join(rootDir, dir));
      assert.ok(stats.isDirectory());
      assert.equal(stats.uid, NOBODY);
      assert.equal(stats.gid, NOBODY);
    }
    await rm(join(rootDir, 'work'), { recursive: true });
    await setOldTimes();
  });

  it('gives the command exactly the environment it is given', async () => {
    process.env.KILN_LEAK_CHECK = 'leaked';
    try {
      const { stdout } = await runIn(rootDir, ['env'], { env: ['PATH=/usr/bin:/bin', 'GREETING=hello world', 'EMPTY='] });
      assert.equal(stdout, 'PATH=/usr/bin:/bin\nGREETING=hello world\nEMPTY=\n');
    } finally {
      delete process.env.KILN_LEAK_CHECK;
    }
  });

  it('finds a command without a slash in the image\'s PATH', async () => {
    const { stdout } = await runIn(rootDir, ['echo', 'found'], { env: ['PATH=/nowhere:/bin'] });
    assert.equal(stdout, 'found\n');
  });

  it('provides the host\'s /etc/resolv.conf and /etc/hosts, and removes its placeholders', async () => {
    const { result, stdout } = await runIn(rootDir, sh('cat /etc/resolv.conf; echo ---; cat /etc/hosts; stat -c %a /etc/resolv.conf /etc/hosts'));
    assert.deepEqual(statusOf(result), exited0);
    const expected = `${await readFile('/etc/resolv.conf', 'utf8').catch(() => '')}---\n${await readFile('/etc/hosts', 'utf8').catch(() => '')}644\n644\n`;
    assert.equal(stdout, expected);
    await assertNoTrace();
  });

  it('mounts a fresh /proc of its own PID namespace', async () => {
    const { stdout } = await runIn(rootDir, sh('echo $$; ls /proc/self; ls /proc'));
    const [pid, ...rest] = stdout.split('\n');
    assert.ok(Number(pid) > 1 && Number(pid) < 100, `the command's pid ${pid} is not from a new PID namespace`);
    assert.ok(rest.includes('status') && rest.includes('fd'), '/proc/self is not there');
    const pids = rest.filter((name) => /^[0-9]+$/.test(name)).map(Number);
    assert.ok(pids.includes(1) && pids.includes(Number(pid)));
    assert.ok(pids.every((p) => p < 100), `/proc shows the host's processes: ${pids.join(' ')}`);
    await assertNoTrace();
  });

  it('provides a minimal /dev and a read-only /sys', async () => {
    const { stdout } = await runIn(rootDir, sh('ls /dev; echo x > /dev/null && echo null-ok; head -c 4 /dev/zero | wc -c; touch /sys/x 2>/dev/null || echo sys-ro'));
    const lines = stdout.trim().split('\n');
    for (const name of ['null', 'zero', 'full', 'random', 'urandom', 'tty', 'pts', 'shm', 'ptmx', 'fd']) assert.ok(lines.includes(name), `/dev/${name} is missing`);
    assert.ok(!lines.some((l) => /^(sd|vd|nvme|loop)/.test(l)), 'host block devices are visible');
    assert.deepEqual(lines.slice(-3), ['null-ok', '4', 'sys-ro']);
    await assertNoTrace();
  });

  it('writes files into the root directory as the user it runs as', async () => {
    const { result } = await runIn(rootDir, ['touch', '/tmp/x'], { user: { uid: NOBODY, gid: NOBODY, groups: [] } });
    assert.deepEqual(statusOf(result), exited0);
    const stats = await stat(join(rootDir, 'tmp/x'));
    assert.equal(stats.uid, NOBODY);
    assert.equal(stats.gid, NOBODY);
    await rm(join(rootDir, 'tmp/x'));
    await assertNoTrace();
  });

  it('reports a non-zero exit code', async () => {
    assert.deepEqual((await runIn(rootDir, sh('exit 42'))).result, { kind: 'exited', code: 42 });
    await assertNoTrace();
  });

  it('reports a command killed by a signal', async () => {
    assert.deepEqual((await runIn(rootDir, sh('kill -KILL $$'))).result, { kind: 'signaled', signal: 'SIGKILL' });
    assert.deepEqual((await runIn(rootDir, sh('kill -TERM $$'))).result, { kind: 'signaled', signal: 'SIGTERM' });
    await assertNoTrace();
  });

  it('says which executable is missing from the image', async () => {
    for (const argv0 of ['no-such-tool', '/bin/no-such-tool']) {
      await assert.rejects(runIn(rootDir, [argv0]), (error: unknown) => {
        assert.ok(isKilnError(error, 'RUN_FAILED'));
        assert.match(error.message, new RegExp(`${argv0} was not found in the image`));
        return true;
      });
    }
    await assertNoTrace();
  });

  it('streams output while the command runs', async () => {
    // The command waits for a signal the test sends only once it has seen the first line.
    const marker = `kiln-stream-${process.pid}-${Date.now()}`;
    const stdout = collector((text) => {
      if (text.includes('first\n')) void signalScript(marker, 'SIGUSR1');
    });
    const result = await runCommand(chrootIsolation(), {
      rootDir,
      argv: sh(`trap 'echo second; exit 0' USR1; echo first; while :; do sleep 0.05; done # ${marker}`),
      env: ['PATH=/bin'],
      cwd: '/',
      user: { uid: 0, gid: 0, groups: [] },
      stdout,
      stderr: collector(),
      logger: silentLogger(),
      recordChanges: true,
    });
    assert.deepEqual(statusOf(result), exited0);
    assert.equal(stdout.text(), 'first\nsecond\n');
  });

  it('ends the step when the command exits, killing what it left in the background', async () => {
    const { result, stdout } = await runIn(rootDir, sh('(sleep 1000; touch /tmp/late) & echo started'));
    assert.deepEqual(statusOf(result), exited0);
    assert.equal(stdout, 'started\n');
    assert.equal(await exists(join(rootDir, 'tmp/late')), false);
    await assertNoTrace();
  });

  it('passes no descriptor of kiln\'s to the command', async () => {
    const outcome = await runAsUser(0, { rootDir, argv: ['ls', '/proc/self/fd'] });
    assert.deepEqual(statusOf(outcome.result), exited0);
    // ls's own descriptor for the directory it lists is the only extra one.
    assert.deepEqual(outcome.stdout!.trim().split('\n').map(Number).sort(), [0, 1, 2, 3]);
  });

  it('keeps an image\'s own /etc/resolv.conf, and the command\'s writes to it private', async () => {
    const own = join(rootDir, 'etc/resolv.conf');
    await writeFile(own, 'nameserver 192.0.2.1\n');
    const hostBefore = await readFile('/etc/resolv.conf', 'utf8');
    const { result, stdout } = await runIn(rootDir, sh('cat /etc/resolv.conf; echo nameserver 192.0.2.99 > /etc/resolv.conf'));
    assert.deepEqual(statusOf(result), exited0);
    assert.equal(stdout, hostBefore);
    assert.equal(await readFile(own, 'utf8'), 'nameserver 192.0.2.1\n');
    assert.equal(await readFile('/etc/resolv.conf', 'utf8'), hostBefore);
    assert.deepEqual(await mountsUnder(rootDir), []);
    await rm(own);
    await setOldTimes();
  });

  it('leaves nothing mounted after a failing command', async () => {
    await assert.rejects(runIn(rootDir, sh('exit 1'), { cwd: '/etc/passwd' }), (error: unknown) => isKilnError(error, 'RUN_FAILED'));
    assert.deepEqual((await runIn(rootDir, sh('false'))).result, { kind: 'exited', code: 1 });
    await assertNoTrace();
  });
});

describe('the chroot isolation on an overlay', { skip: isRoot ? false : 'needs root', timeout: 120_000 }, () => {
  /** Entries beside the root directory: the overlay's scratch directory must be gone. */
  async function besideRoot(rootDir: string): Promise<string[]> {
    return readdir(join(rootDir, '..'));
  }

  it('moves what the command wrote into the root and says which paths it touched', async () => {
    const rootDir = await busyboxRoot('overlay-changes');
    const before = await besideRoot(rootDir);
    const script = [
      'echo hi > /tmp/new',
      'mkdir -p /opt/a/b && echo x > /opt/a/b/c',
      'rm /bin/ls',
      'echo "guest:x:1000:1000::/:/bin/sh" >> /etc/passwd',
      'chmod 751 /',
      'rm -rf /usr/sbin && mkdir /usr/sbin && echo tool > /usr/sbin/tool',
    ].join(' && ');
    const { result } = await runIn(rootDir, sh(script), { cwd: '/srv/app' });
    assert.deepEqual(statusOf(result), exited0);
    assert.equal(result.kind, 'exited');
    const changes = result.kind === 'exited' ? result.changes : undefined;
    assert.ok(changes, 'the command ran on an overlay');
    assert.deepEqual(changes.subtrees.sort(), ['/bin/ls', '/opt', '/srv', '/usr/sbin']);
    // /etc/passwd changed in place: /etc itself did not, so it is no entry.
    assert.deepEqual(changes.entries.sort(), ['/', '/bin', '/etc/passwd', '/tmp', '/tmp/new', '/usr']);
    assert.equal((await stat(rootDir)).mode & 0o7777, 0o751);
    assert.equal(await readFile(join(rootDir, 'tmp/new'), 'utf8'), 'hi\n');
    assert.equal(await readFile(join(rootDir, 'opt/a/b/c'), 'utf8'), 'x\n');
    assert.equal(await exists(join(rootDir, 'bin/ls')), false);
    assert.match(await readFile(join(rootDir, 'etc/passwd'), 'utf8'), /^root:.*\nguest:x:1000/s);
    // The opaque /usr/sbin replaced the image's: none of its applets is left.
    assert.deepEqual(await readdir(join(rootDir, 'usr/sbin')), ['tool']);
    assert.equal(await exists(join(rootDir, 'srv/app')), true);
    assert.equal((await stat(join(rootDir, 'tmp'))).mode & 0o7777, 0o1777);
    assert.deepEqual(await besideRoot(rootDir), before);
    assert.deepEqual(await mountsUnder(rootDir), []);
  });

  it('replaces a directory by a file, a symlink by a directory, and a file by a symlink', async () => {
    const rootDir = await busyboxRoot('overlay-replace');
    const script = [
      'rm -rf /root && echo file > /root',
      'rm /usr/bin/env && mkdir /usr/bin/env && echo inside > /usr/bin/env/x',
      'rm /etc/group && ln -s passwd /etc/group',
    ].join(' && ');
    const { result } = await runIn(rootDir, sh(script));
    const changes = result.kind === 'exited' ? result.changes : undefined;
    assert.ok(changes, 'the command ran on an overlay');
    assert.deepEqual(changes.subtrees.sort(), ['/root', '/usr/bin/env']);
    assert.ok(changes.entries.includes('/etc/group'));
    assert.equal(await readFile(join(rootDir, 'root'), 'utf8'), 'file\n');
    assert.equal(await readFile(join(rootDir, 'usr/bin/env/x'), 'utf8'), 'inside\n');
    assert.equal((await lstat(join(rootDir, 'usr/bin/env'))).isDirectory(), true);
    assert.equal((await lstat(join(rootDir, 'etc/group'))).isSymbolicLink(), true);
    assert.deepEqual(await mountsUnder(rootDir), []);
  });

  it('leaves the root as it was when the command fails', async () => {
    const rootDir = await busyboxRoot('overlay-failure');
    const { result } = await runIn(rootDir, sh('echo x > /tmp/left && rm /bin/cat && exit 3'));
    assert.deepEqual(result, { kind: 'exited', code: 3 });
    assert.equal(await exists(join(rootDir, 'tmp/left')), false);
    assert.equal(await exists(join(rootDir, 'bin/cat')), true);
    assert.deepEqual(await mountsUnder(rootDir), []);
  });

  it('writes to the root directly when not asked to record changes, and reports none', async () => {
    const rootDir = await busyboxRoot('overlay-off');
    const { result } = await runIn(rootDir, sh('echo direct > /tmp/direct'), { recordChanges: false });
    assert.deepEqual(result, exited0);
    assert.equal(await readFile(join(rootDir, 'tmp/direct'), 'utf8'), 'direct\n');
  });
});

describe('the chroot isolation in a scratch image', { skip: isRoot ? false : 'needs root', timeout: 60_000 }, () => {
  it('runs a static binary in an image with no shell and no /etc', async () => {
    const rootDir = join(base, 'scratch');
    await mkdir(rootDir);
    await writeFile(join(rootDir, 'busybox'), await readFile('/bin/busybox'), { mode: 0o755 });
    const { result, stdout } = await runIn(rootDir, ['/busybox', 'cat', '/etc/hosts'], { env: [] });
    assert.deepEqual(statusOf(result), exited0);
    assert.equal(stdout, await readFile('/etc/hosts', 'utf8'));
    assert.deepEqual(await readdir(rootDir), ['busybox']);
    assert.deepEqual(await mountsUnder(rootDir), []);
  });
});

/**
 * Runs one command through kiln's chroot isolation in a Node process of the given uid, which
 * inherits an extra open descriptor (fd 40, as from a CI runner) the command must not see.
 */
function runAsUser(uid: number, spec: { rootDir: string; argv: string[]; user?: { uid: number; gid: number; groups: number[] } }): Promise<{ result?: RunResult; stdout?: string; error?: { code: string; message: string } }> {
  const fromSources = import.meta.url.endsWith('.ts');
  const ext = fromSources ? '.ts' : '.js';
  const isolationModule = new URL(`../src/builder/isolation/index${ext}`, import.meta.url).href;
  const logModule = new URL(`../src/util/log${ext}`, import.meta.url).href;
  const script = `
    const { chrootIsolation, runCommand } = await import(${JSON.stringify(isolationModule)});
    const { silentLogger } = await import(${JSON.stringify(logModule)});
    const { Writable } = await import('node:stream');
    const spec = JSON.parse(process.argv[1]);
    const chunks = [];
    const stdout = new Writable({ write(chunk, _e, cb) { chunks.push(chunk); cb(); } });
    try {
      const result = await runCommand(chrootIsolation(), {
        rootDir: spec.rootDir, argv: spec.argv, env: ['PATH=/bin'], cwd: '/',
        user: spec.user ?? { uid: 0, gid: 0, groups: [] }, stdout, stderr: process.stderr, logger: silentLogger(),
      });
      process.stdout.write(JSON.stringify({ result, stdout: Buffer.concat(chunks).toString() }));
    } catch (error) {
      process.stdout.write(JSON.stringify({ error: { code: error.code, message: error.message } }));
    }`;
  const nodeArgs = [...(fromSources ? ['--import', 'tsx'] : []), '--input-type=module', '-e', script, JSON.stringify(spec)];
  const cwd = fileURLToPath(new URL('..', import.meta.url));
  return new Promise((resolve, reject) => {
    // Node marks the low descriptors it inherits close-on-exec, not one past a gap like fd 40.
    const stdio = ['ignore', 'pipe', 'pipe', ...new Array(37).fill('ignore'), 'pipe'] as ('ignore' | 'pipe')[];
    const child = spawn('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', process.execPath, ...nodeArgs], { cwd, stdio });
    let out = '';
    let err = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        resolve(JSON.parse(out));
      } catch {
        reject(new Error(`the child run exited with ${code}: ${err.trim() || out.trim()}`));
      }
    });
  });
}

describe('the chroot isolation as an unprivileged user', { skip: isRoot ? false : 'needs root to become another user', timeout: 120_000 }, () => {
  let rootDir: string;

  before(async () => {
    rootDir = await busyboxRoot('as-nobody', NOBODY);
  });

  it('runs the command as root of a user namespace, creating files as the unprivileged user', async () => {
    const outcome = await runAsUser(NOBODY, { rootDir, argv: sh('id; echo $$; touch /tmp/x; cat /etc/resolv.conf') });
    assert.equal(outcome.error, undefined);
    assert.deepEqual(statusOf(outcome.result), exited0);
    const [id, pid, ...resolv] = outcome.stdout!.split('\n');
    assert.equal(id, 'uid=0(root) gid=0(root)');
    assert.ok(Number(pid) > 1 && Number(pid) < 100);
    assert.equal(resolv.join('\n'), await readFile('/etc/resolv.conf', 'utf8'));
    const stats = await stat(join(rootDir, 'tmp/x'));
    assert.equal(stats.uid, NOBODY);
    assert.equal(stats.gid, NOBODY);
    assert.deepEqual(await mountsUnder(rootDir), []);
    for (const path of KILN_MOUNT_POINTS) assert.equal(await exists(join(rootDir, path)), false, `${path} is left in the image`);
  });

  it('reports signals and exit codes the same way', async () => {
    assert.deepEqual((await runAsUser(NOBODY, { rootDir, argv: sh('kill -KILL $$') })).result, { kind: 'signaled', signal: 'SIGKILL' });
    assert.deepEqual((await runAsUser(NOBODY, { rootDir, argv: sh('exit 3') })).result, { kind: 'exited', code: 3 });
    assert.deepEqual(await mountsUnder(rootDir), []);
  });

  it('refuses a user it cannot map', async () => {
    const outcome = await runAsUser(NOBODY, { rootDir, argv: ['id'], user: { uid: 1000, gid: 1000, groups: [] } });
    assert.equal(outcome.error?.code, 'ISOLATION');
    assert.match(outcome.error!.message, /1000:1000 needs kiln to run as root/);
  });
});

describe('the chroot isolation with a user namespace forced, as root', { skip: isRoot ? false : 'needs root', timeout: 60_000 }, () => {
  it('runs the command', async () => {
    const rootDir = await busyboxRoot('forced-userns');
    const stdout = collector();
    const result = await runCommand(chrootIsolation({ userNamespace: 'always' }), {
      rootDir,
      argv: sh('id; touch /tmp/y'),
      env: ['PATH=/bin'],
      cwd: '/',
      user: { uid: 0, gid: 0, groups: [] },
      stdout,
      stderr: collector(),
      logger: silentLogger(),
    });
    assert.deepEqual(statusOf(result), exited0);
    assert.equal(stdout.text(), 'uid=0(root) gid=0(root)\n');
    assert.equal((await stat(join(rootDir, 'tmp/y'))).uid, 0);
    assert.deepEqual(await mountsUnder(rootDir), []);
  });
});
