// The parts of kiln's RUN isolation that need no namespaces: paths resolved inside an image,
// executables found the way Docker finds them, mount points created and removed, the choice
// of isolation, and the `none` isolation itself, which runs commands on this machine's `/`
// (in temp directories only).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, mkdtemp, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { DEFAULT_PATH, envObject, findExecutable } from '../../src/builder/isolation/command.js';
import { Placeholders } from '../../src/builder/isolation/placeholders.js';
import {
  EXECUTOR_MARKER,
  defaultIsolation,
  noneIsolation,
  resolveInRoot,
  runCommand,
  type RunSpec,
} from '../../src/builder/isolation/index.js';
import { isKilnError } from '../../src/util/errors.js';
import { silentLogger } from '../../src/util/log.js';

let base: string;

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'kiln-isolation-unit-'));
  await chmod(base, 0o755);
});

after(async () => {
  await rm(base, { recursive: true, force: true });
});

async function freshDir(name: string): Promise<string> {
  const dir = join(base, name);
  await mkdir(dir, { recursive: true });
  return dir;
}

describe('resolveInRoot', () => {
  it('follows symlinks relative to the image root and never climbs above it', async () => {
    const root = await freshDir('resolve');
    await mkdir(join(root, 'etc'));
    await mkdir(join(root, 'real/dir'), { recursive: true });
    await symlink('/real', join(root, 'abs'));
    await symlink('../real/dir', join(root, 'etc/rel'));
    await symlink('/../../../../../etc', join(root, 'escape'));
    await symlink('../../../..', join(root, 'up'));

    assert.equal((await resolveInRoot(root, '/abs/dir/file')).hostPath, join(root, 'real/dir/file'));
    assert.equal((await resolveInRoot(root, '/etc/rel')).imagePath, '/real/dir');
    assert.equal((await resolveInRoot(root, '/escape/passwd')).hostPath, join(root, 'etc/passwd'));
    assert.equal((await resolveInRoot(root, '/up/etc/shadow')).hostPath, join(root, 'etc/shadow'));
    assert.equal((await resolveInRoot(root, '/../../etc/hosts')).hostPath, join(root, 'etc/hosts'));
    assert.equal((await resolveInRoot(root, 'missing/a/../b')).imagePath, '/missing/b');
  });

  it('refuses a symlink loop', async () => {
    const root = await freshDir('loop');
    await symlink('/b', join(root, 'a'));
    await symlink('/a', join(root, 'b'));
    await assert.rejects(resolveInRoot(root, '/a/x'), (error: unknown) => isKilnError(error, 'ISOLATION'));
  });
});

describe('envObject', () => {
  it('keeps the order, lets a later entry win and keeps "=" inside values', () => {
    const env = envObject(['B=1', 'A=x=y', 'B=2', 'EMPTY=']);
    assert.deepEqual(Object.entries(env), [['A', 'x=y'], ['B', '2'], ['EMPTY', '']]);
  });

  it('refuses an entry without a key', () => {
    assert.throws(() => envObject(['NOVALUE']), (error: unknown) => isKilnError(error, 'RUN_FAILED'));
    assert.throws(() => envObject(['=x']), (error: unknown) => isKilnError(error, 'RUN_FAILED'));
  });
});

describe('findExecutable', () => {
  let root: string;
  before(async () => {
    root = await freshDir('exec');
    await mkdir(join(root, 'bin'));
    await mkdir(join(root, 'usr/local/bin'), { recursive: true });
    await mkdir(join(root, 'opt/app'), { recursive: true });
    await writeFile(join(root, 'bin/tool'), '#!/bin/sh\n', { mode: 0o755 });
    await writeFile(join(root, 'usr/local/bin/tool'), '#!/bin/sh\n', { mode: 0o755 });
    await writeFile(join(root, 'bin/plain'), 'not executable', { mode: 0o644 });
    await writeFile(join(root, 'opt/app/run'), '#!/bin/sh\n', { mode: 0o755 });
    await symlink('/bin/tool', join(root, 'bin/applet'));
  });

  it('searches the PATH of the environment in order, inside the image', async () => {
    assert.equal(await findExecutable(root, 'tool', { PATH: '/usr/local/bin:/bin' }, '/'), '/usr/local/bin/tool');
    assert.equal(await findExecutable(root, 'tool', { PATH: '/bin:/usr/local/bin' }, '/'), '/bin/tool');
  });

  it('falls back to Docker\'s default PATH', async () => {
    assert.match(DEFAULT_PATH, /\/usr\/local\/bin/);
    assert.equal(await findExecutable(root, 'tool', {}, '/'), '/usr/local/bin/tool');
  });

  it('keeps the name of a symlinked applet', async () => {
    assert.equal(await findExecutable(root, 'applet', { PATH: '/bin' }, '/'), '/bin/applet');
  });

  it('takes paths with a slash from the working directory', async () => {
    assert.equal(await findExecutable(root, './run', {}, '/opt/app'), '/opt/app/run');
    assert.equal(await findExecutable(root, '/opt/app/run', {}, '/'), '/opt/app/run');
  });

  it('skips files that are not executable and says which executable is missing', async () => {
    await assert.rejects(findExecutable(root, 'plain', { PATH: '/bin' }, '/'), (error: unknown) => {
      assert.ok(isKilnError(error, 'RUN_FAILED'));
      assert.match(error.message, /plain was not found in the image/);
      return true;
    });
    await assert.rejects(findExecutable(root, '/bin/nope', {}, '/'), (error: unknown) => {
      assert.ok(isKilnError(error, 'RUN_FAILED'));
      assert.match(error.message, /\/bin\/nope was not found in the image/);
      return true;
    });
  });
});

describe('Placeholders', () => {
  it('creates missing mount points and removes them, restoring the directory times', async () => {
    const root = await freshDir('placeholders');
    await mkdir(join(root, 'proc'));
    const old = new Date('2001-02-03T04:05:06Z');
    await utimes(root, old, old);

    const placeholders = new Placeholders(root);
    assert.equal(await placeholders.ensure('/proc', 'directory'), join(root, 'proc'));
    assert.equal(await placeholders.ensure('/dev', 'directory'), join(root, 'dev'));
    assert.equal(await placeholders.ensure('/etc/resolv.conf', 'file'), join(root, 'etc/resolv.conf'));
    assert.equal(await placeholders.ensure('/etc/hosts', 'file'), join(root, 'etc/hosts'));
    assert.ok((await stat(join(root, 'etc/hosts'))).isFile());

    await placeholders.remove(silentLogger());
    assert.deepEqual((await lstat(join(root, 'proc'))).isDirectory(), true, 'an existing mount point stays');
    for (const gone of ['dev', 'etc']) {
      await assert.rejects(lstat(join(root, gone)), { code: 'ENOENT' });
    }
    assert.equal((await stat(root)).mtime.getTime(), old.getTime());
  });

  it('creates a mount point where an image symlink points, inside the image', async () => {
    const root = await freshDir('placeholders-link');
    await mkdir(join(root, 'etc'));
    await symlink('/run/resolve/stub.conf', join(root, 'etc/resolv.conf'));
    const placeholders = new Placeholders(root);
    assert.equal(await placeholders.ensure('/etc/resolv.conf', 'file'), join(root, 'run/resolve/stub.conf'));
    await placeholders.remove(silentLogger());
    await assert.rejects(lstat(join(root, 'run')), { code: 'ENOENT' });
    assert.ok((await lstat(join(root, 'etc/resolv.conf'))).isSymbolicLink());
  });

  it('refuses to mount over something of the wrong kind', async () => {
    const root = await freshDir('placeholders-kind');
    await writeFile(join(root, 'proc'), '');
    await mkdir(join(root, 'etc/hosts'), { recursive: true });
    const placeholders = new Placeholders(root);
    await assert.rejects(placeholders.ensure('/proc', 'directory'), (error: unknown) => isKilnError(error, 'ISOLATION') && /\/proc is not a directory/.test(error.message));
    await assert.rejects(placeholders.ensure('/etc/hosts', 'file'), (error: unknown) => isKilnError(error, 'ISOLATION'));
  });
});

describe('defaultIsolation', () => {
  it('is none only inside kiln\'s executor image', async () => {
    const kanikoDir = await freshDir('kaniko');
    assert.equal(defaultIsolation({ kanikoDir }).kind, 'chroot');
    await writeFile(join(kanikoDir, EXECUTOR_MARKER), '');
    assert.equal(defaultIsolation({ kanikoDir }).kind, 'none');
  });
});

/** A Writable that keeps what it is given. */
function collector(): Writable & { text(): string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk);
      callback();
    },
  });
  return Object.assign(stream, { text: () => Buffer.concat(chunks).toString('utf8') });
}

const isRoot = process.getuid?.() === 0;

describe('the none isolation', { skip: isRoot ? false : 'needs root' }, () => {
  async function run(argv: string[], overrides: Partial<RunSpec> = {}) {
    const stdout = collector();
    const stderr = collector();
    const result = await runCommand(noneIsolation(), {
      rootDir: '/',
      argv,
      env: ['PATH=/usr/bin:/bin'],
      cwd: base,
      user: { uid: 0, gid: 0, groups: [] },
      stdout,
      stderr,
      logger: silentLogger(),
      ...overrides,
    });
    return { result, stdout: stdout.text(), stderr: stderr.text() };
  }

  it('runs as the given uid, gid and groups, in a working directory it creates for that user', async () => {
    const cwd = join(base, 'none-work/a/b');
    const { result, stdout } = await run(['/bin/sh', '-c', 'id -u; id -g; id -G; pwd; touch made'], {
      cwd,
      user: { uid: 65534, gid: 65534, groups: [100, 200] },
    });
    assert.deepEqual(result, { kind: 'exited', code: 0 });
    assert.deepEqual(stdout.split('\n'), ['65534', '65534', '65534 100 200', cwd, '']);
    for (const dir of [join(base, 'none-work/a'), cwd]) {
      const stats = await stat(dir);
      assert.equal(stats.uid, 65534);
      assert.equal(stats.gid, 65534);
    }
    assert.equal((await stat(join(cwd, 'made'))).uid, 65534);
  });

  it('runs without supplementary groups when none are given', async () => {
    const { stdout } = await run(['id', '-G'], { user: { uid: 65534, gid: 65534, groups: [] } });
    assert.equal(stdout, '65534\n');
  });

  it('gives the command exactly the environment it is given', async () => {
    process.env.KILN_LEAK_CHECK = 'leaked';
    try {
      const { stdout } = await run(['env'], { env: ['PATH=/usr/bin:/bin', 'GREETING=hello world'] });
      assert.equal(stdout, 'PATH=/usr/bin:/bin\nGREETING=hello world\n');
    } finally {
      delete process.env.KILN_LEAK_CHECK;
    }
  });

  it('reports exit codes and signals', async () => {
    assert.deepEqual((await run(['/bin/sh', '-c', 'exit 7'])).result, { kind: 'exited', code: 7 });
    assert.deepEqual((await run(['/bin/sh', '-c', 'kill -TERM $$'])).result, { kind: 'signaled', signal: 'SIGTERM' });
  });

  it('streams stderr apart from stdout', async () => {
    const { stdout, stderr } = await run(['/bin/sh', '-c', 'echo out; echo err >&2']);
    assert.equal(stdout, 'out\n');
    assert.equal(stderr, 'err\n');
  });

  it('ends the step when the command exits, whatever it left in the background', async () => {
    const marker = join(base, 'none-background');
    const { result, stdout } = await run(['/bin/sh', '-c', `(sleep 1000; touch ${marker}) & echo started`]);
    assert.deepEqual(result, { kind: 'exited', code: 0 });
    assert.equal(stdout, 'started\n');
  });

  it('says which executable is missing', async () => {
    await assert.rejects(run(['kiln-no-such-tool']), (error: unknown) => {
      assert.ok(isKilnError(error, 'RUN_FAILED'));
      assert.match(error.message, /kiln-no-such-tool was not found in the image/);
      return true;
    });
  });

  it('runs commands in / only', async () => {
    await assert.rejects(run(['true'], { rootDir: base }), (error: unknown) => isKilnError(error, 'ISOLATION'));
  });
});
