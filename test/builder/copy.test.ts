import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, lchownSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, utimesSync, writeFileSync, type Stats } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { copyFiles, describeSources, type CopyRequest } from '../../src/builder/copy/index.js';
import { createIgnoreMatcher } from '../../src/dockerfile/dockerignore.js';
import { IgnoreList } from '../../src/snapshot/ignore.js';
import { isKilnError } from '../../src/util/errors.js';

/* ---------- fixtures ---------- */

type Spec = string | { link: string } | { dir: true; mode?: number; mtime?: number } | { content: string; mode?: number; mtime?: number; uid?: number };
type Tree = Record<string, Spec>;

interface Sandbox {
  context: string;
  root: string;
  base: string;
  request(partial: Partial<CopyRequest> & Pick<CopyRequest, 'sources' | 'dest'>): CopyRequest;
}

function sandbox(t: TestContext, context: Tree = {}, root: Tree = {}): Sandbox {
  const base = mkdtempSync(join(tmpdir(), 'kiln-copy-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const ctx = join(base, 'context');
  const rootDir = join(base, 'root');
  mkdirSync(ctx);
  mkdirSync(rootDir);
  build(ctx, context);
  build(rootDir, root);
  return {
    base,
    context: ctx,
    root: rootDir,
    request: (partial) => ({ where: 'Dockerfile:7', kind: 'copy', workdir: '/', sourceRoot: ctx, rootDir, ...partial }),
  };
}

function build(dir: string, tree: Tree): void {
  const dirTimes: [string, number][] = [];
  for (const [path, spec] of Object.entries(tree)) {
    const host = join(dir, path);
    mkdirSync(dirname(host), { recursive: true });
    if (typeof spec === 'string') writeFileSync(host, spec);
    else if ('link' in spec) symlinkSync(spec.link, host);
    else if ('dir' in spec) {
      mkdirSync(host, { recursive: true });
      if (spec.mode !== undefined) chmodSync(host, spec.mode);
      if (spec.mtime !== undefined) dirTimes.push([host, spec.mtime]);
    } else {
      writeFileSync(host, spec.content);
      if (spec.mode !== undefined) chmodSync(host, spec.mode);
      if (spec.uid !== undefined) lchownSync(host, spec.uid, spec.uid);
      if (spec.mtime !== undefined) utimesSync(host, spec.mtime, spec.mtime);
    }
  }
  // Directory times last: creating their entries moved them.
  for (const [host, mtime] of dirTimes) utimesSync(host, mtime, mtime);
}

function stat(root: string, imagePath: string): Stats {
  return lstatSync(join(root, imagePath));
}

function exists(root: string, imagePath: string): boolean {
  return lstatSync(join(root, imagePath), { throwIfNoEntry: false }) !== undefined;
}

function read(root: string, imagePath: string): string {
  return readFileSync(join(root, imagePath), 'utf8');
}

async function rejectsWith(promise: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isKilnError(err), `expected a KilnError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

/* ---------- Docker's COPY cases ---------- */

describe('COPY: where sources go', () => {
  const context: Tree = {
    'a.txt': 'alpha',
    'b.txt': 'bravo',
    'c.md': 'charlie',
    'arr[0].txt': 'bracket',
    'src/x.js': 'x',
    'src/sub/y.js': 'y',
  };
  const cases: { name: string; sources: string[]; dest: string; workdir?: string; root?: Tree; expect: Record<string, string>; absent?: string[]; written?: string[] }[] = [
    { name: 'file to file', sources: ['a.txt'], dest: '/b.txt', expect: { '/b.txt': 'alpha' }, written: ['/b.txt'] },
    { name: 'file to a new directory/', sources: ['a.txt'], dest: '/dir/', expect: { '/dir/a.txt': 'alpha' }, written: ['/dir', '/dir/a.txt'] },
    { name: 'file to an existing directory without slash', sources: ['a.txt'], dest: '/existing', root: { existing: { dir: true } }, expect: { '/existing/a.txt': 'alpha' }, written: ['/existing/a.txt'] },
    { name: 'file over an existing file', sources: ['a.txt'], dest: '/etc/conf', root: { 'etc/conf': 'old' }, expect: { '/etc/conf': 'alpha' }, written: ['/etc/conf'] },
    { name: 'directory: its contents, not itself', sources: ['src'], dest: '/app', expect: { '/app/x.js': 'x', '/app/sub/y.js': 'y' }, absent: ['/app/src'], written: ['/app', '/app/sub', '/app/sub/y.js', '/app/x.js'] },
    { name: 'trailing slash on a source is ignored', sources: ['src/'], dest: '/app/', expect: { '/app/x.js': 'x' } },
    { name: 'wildcard', sources: ['*.txt'], dest: '/out/', expect: { '/out/a.txt': 'alpha', '/out/b.txt': 'bravo', '/out/arr[0].txt': 'bracket' }, absent: ['/out/c.md'] },
    { name: 'character class and ?', sources: ['[ab].tx?'], dest: '/out/', expect: { '/out/a.txt': 'alpha', '/out/b.txt': 'bravo' }, absent: ['/out/arr[0].txt'] },
    { name: 'escaped bracket names one file', sources: ['arr[[]0].txt'], dest: '/one', expect: { '/one': 'bracket' } },
    { name: 'wildcard in a directory component', sources: ['s*/x.js'], dest: '/w/', expect: { '/w/x.js': 'x' } },
    { name: 'several sources to a directory/', sources: ['a.txt', 'src', 'c.md'], dest: '/m/', expect: { '/m/a.txt': 'alpha', '/m/x.js': 'x', '/m/c.md': 'charlie' } },
    { name: 'relative destination starts at WORKDIR', sources: ['a.txt'], dest: 'rel/', workdir: '/app', expect: { '/app/rel/a.txt': 'alpha' } },
    { name: 'dot destination is WORKDIR', sources: ['a.txt', 'b.txt'], dest: '.', workdir: '/w', root: { w: { dir: true } }, expect: { '/w/a.txt': 'alpha', '/w/b.txt': 'bravo' } },
    { name: 'absolute source is relative to the context', sources: ['/a.txt'], dest: '/abs', expect: { '/abs': 'alpha' } },
    {
      name: 'destination through a symlink inside the image',
      sources: ['a.txt'],
      dest: '/link/',
      root: { real: { dir: true }, link: { link: '/real' } },
      expect: { '/real/a.txt': 'alpha' },
      written: ['/real/a.txt'],
    },
    {
      name: 'file destination that is a symlink writes its target',
      sources: ['a.txt'],
      dest: '/etc/alias',
      root: { 'etc/target': 'old', 'etc/alias': { link: '../etc/target' } },
      expect: { '/etc/target': 'alpha' },
    },
    {
      name: 'a symlink at the name inside a destination directory is replaced, not followed',
      sources: ['a.txt'],
      dest: '/d/',
      root: { 'd/a.txt': { link: '/victim' }, victim: 'keep' },
      expect: { '/d/a.txt': 'alpha', '/victim': 'keep' },
    },
  ];
  for (const c of cases) {
    it(c.name, async (t) => {
      const box = sandbox(t, context, c.root);
      const result = await copyFiles(box.request({ sources: c.sources, dest: c.dest, workdir: c.workdir ?? '/' }));
      for (const [path, content] of Object.entries(c.expect)) {
        assert.ok(stat(box.root, path).isFile(), `${path} is a file`);
        assert.equal(read(box.root, path), content, path);
      }
      for (const path of c.absent ?? []) assert.equal(exists(box.root, path), false, `${path} absent`);
      if (c.written !== undefined) assert.deepEqual(result.written, c.written);
      assert.deepEqual(result.written, [...result.written].sort());
    });
  }

  it('creates missing directories 0755 and root-owned', async (t) => {
    const box = sandbox(t, { 'a.txt': { content: 'a', uid: 1234 } });
    await copyFiles(box.request({ sources: ['a.txt'], dest: '/x/y/z/' }));
    for (const dir of ['/x', '/x/y', '/x/y/z']) {
      const s = stat(box.root, dir);
      assert.ok(s.isDirectory());
      assert.equal(s.mode & 0o7777, 0o755, dir);
      assert.equal(s.uid, 0);
      assert.equal(s.gid, 0);
    }
    // Docker resets ownership to root without --chown.
    assert.equal(stat(box.root, '/x/y/z/a.txt').uid, 0);
  });

  it('copies a directory merging into an existing one, leaving the destination itself alone', async (t) => {
    const box = sandbox(t, { 'src/new.txt': 'new', 'src/sub/n.txt': 'n' }, { 'app/old.txt': 'old', 'app/sub/o.txt': 'o' });
    chmodSync(join(box.root, 'app'), 0o700);
    lchownSync(join(box.root, 'app'), 77, 77);
    const result = await copyFiles(box.request({ sources: ['src'], dest: '/app' }));
    assert.equal(read(box.root, '/app/old.txt'), 'old');
    assert.equal(read(box.root, '/app/sub/o.txt'), 'o');
    assert.equal(read(box.root, '/app/new.txt'), 'new');
    assert.equal(stat(box.root, '/app').mode & 0o7777, 0o700);
    assert.equal(stat(box.root, '/app').uid, 77);
    assert.ok(!result.written.includes('/app'));
  });
});

describe('COPY: errors', () => {
  const context: Tree = { 'a.txt': 'a', 'b.txt': 'b', 'dir/f': 'f' };

  it('several sources need a destination ending with /', async (t) => {
    const box = sandbox(t, context);
    await rejectsWith(copyFiles(box.request({ sources: ['a.txt', 'b.txt'], dest: '/out' })), 'DOCKERFILE', /^Dockerfile:7: when using COPY with more than one source file, the destination must be a directory and end with a \/; write "\/out\/"\.$/);
    assert.equal(exists(box.root, '/out'), false);
  });

  it('a wildcard matching several files needs a destination ending with /', async (t) => {
    const box = sandbox(t, context);
    await rejectsWith(copyFiles(box.request({ sources: ['*.txt'], dest: '/out' })), 'DOCKERFILE', /more than one source file/);
  });

  it('refuses a source outside the context', async (t) => {
    const box = sandbox(t, context);
    writeFileSync(join(box.base, 'secret'), 'no');
    await rejectsWith(copyFiles(box.request({ sources: ['../secret'], dest: '/s' })), 'COPY_SOURCE', /^Dockerfile:7: the source "\.\.\/secret" is outside the build context; .*\.$/);
    await rejectsWith(copyFiles(box.request({ sources: ['dir/../../secret'], dest: '/s' })), 'COPY_SOURCE', /outside the build context/);
    assert.equal(exists(box.root, '/s'), false);
  });

  it('a symlink in the context cannot lead outside it', async (t) => {
    const box = sandbox(t, { 'out': { link: '../../../../../../etc' }, 'abs': { link: '/etc' } });
    await rejectsWith(copyFiles(box.request({ sources: ['out/passwd'], dest: '/p' })), 'COPY_SOURCE', /"out\/passwd" not found in build context/);
    await rejectsWith(copyFiles(box.request({ sources: ['abs/passwd'], dest: '/p' })), 'COPY_SOURCE', /not found/);
  });

  it('names a missing source', async (t) => {
    const box = sandbox(t, context);
    await rejectsWith(
      copyFiles(box.request({ sources: ['a.txt', 'missing.txt'], dest: '/d/' })),
      'COPY_SOURCE',
      /^Dockerfile:7: "missing\.txt" not found in build context or excluded by \.dockerignore; check the path, which is relative to the context directory\.$/,
    );
    // Nothing is written when any source is missing.
    assert.equal(exists(box.root, '/d'), false);
  });

  it('names the stage for a missing --from source', async (t) => {
    const box = sandbox(t, context);
    await rejectsWith(copyFiles(box.request({ sources: ['/app/bin'], dest: '/bin/', sourceName: 'stage "builder"' })), 'COPY_SOURCE', /"\/app\/bin" not found in stage "builder"/);
  });

  it('a wildcard that matches nothing: no source files were specified', async (t) => {
    const box = sandbox(t, context);
    await rejectsWith(copyFiles(box.request({ sources: ['*.none'], dest: '/d/' })), 'COPY_SOURCE', /^Dockerfile:7: no source files were specified: "\*\.none" matched nothing/);
    const empty = await copyFiles(box.request({ sources: ['*.none'], dest: '/d/', allowEmptyWildcard: true }));
    assert.deepEqual(empty, { written: [], sourceDigestInputs: [] });
  });

  it('a bad pattern is a Dockerfile error', async (t) => {
    const box = sandbox(t, context);
    await rejectsWith(copyFiles(box.request({ sources: ['[a'], dest: '/d/' })), 'DOCKERFILE', /not a valid pattern/);
  });

  it('a directory over a file and a file over a directory fail', async (t) => {
    const box = sandbox(t, { 'dir/f': 'f', 'tree/sub': 'now a file' }, { 'file': 'x', 'target/sub/keep': 'k' });
    await rejectsWith(copyFiles(box.request({ sources: ['dir'], dest: '/file' })), 'COPY_DEST', /cannot copy directory "dir" onto \/file, which is a file/);
    await rejectsWith(copyFiles(box.request({ sources: ['tree'], dest: '/target' })), 'COPY_DEST', /cannot replace directory \/target\/sub with a file/);
    assert.equal(read(box.root, '/target/sub/keep'), 'k');
  });

  it('COPY refuses URLs', async (t) => {
    const box = sandbox(t, context);
    await rejectsWith(copyFiles(box.request({ sources: ['http://127.0.0.1:1/x'], dest: '/x' })), 'DOCKERFILE', /use ADD/);
  });

  it('messages without a location stand alone', async (t) => {
    const box = sandbox(t, context);
    await rejectsWith(copyFiles({ ...box.request({ sources: ['nope'], dest: '/' }), where: '' }), 'COPY_SOURCE', /^"nope" not found/);
  });
});

describe('COPY: .dockerignore and --exclude', () => {
  const context: Tree = {
    'app.js': 'app',
    'notes.tmp': 'tmp',
    'logs/keep.log': 'keep',
    'logs/other.log': 'other',
    'docs/a.md': 'a',
    'docs/b.txt': 'b',
    'docs/skip/c.txt': 'c',
  };
  const ignore = createIgnoreMatcher('*.tmp\nlogs\n!logs/keep.log\n');

  it('leaves ignored paths out, brings exceptions back', async (t) => {
    const box = sandbox(t, context);
    const result = await copyFiles(box.request({ sources: ['.'], dest: '/ctx/', sourceIgnore: ignore }));
    assert.equal(read(box.root, '/ctx/app.js'), 'app');
    assert.equal(read(box.root, '/ctx/logs/keep.log'), 'keep');
    assert.equal(exists(box.root, '/ctx/logs/other.log'), false);
    assert.equal(exists(box.root, '/ctx/notes.tmp'), false);
    assert.ok(!result.sourceDigestInputs.some((input) => input.path === 'notes.tmp' || input.path === 'logs/other.log'));
    assert.ok(result.sourceDigestInputs.some((input) => input.path === 'logs/keep.log'));
  });

  it('an ignored source named explicitly is not found', async (t) => {
    const box = sandbox(t, context);
    await rejectsWith(copyFiles(box.request({ sources: ['notes.tmp'], dest: '/n' , sourceIgnore: ignore })), 'COPY_SOURCE', /"notes\.tmp" not found in build context or excluded by \.dockerignore/);
    await rejectsWith(copyFiles(box.request({ sources: ['logs/other.log'], dest: '/n', sourceIgnore: ignore })), 'COPY_SOURCE', /not found/);
    await copyFiles(box.request({ sources: ['logs/keep.log'], dest: '/k', sourceIgnore: ignore }));
    assert.equal(read(box.root, '/k'), 'keep');
  });

  it('wildcards do not match ignored files', async (t) => {
    const box = sandbox(t, context);
    await copyFiles(box.request({ sources: ['*'], dest: '/all/', sourceIgnore: ignore }));
    assert.equal(exists(box.root, '/all/notes.tmp'), false);
    assert.equal(read(box.root, '/all/app.js'), 'app');
  });

  it('--exclude skips files and directories, relative to each source', async (t) => {
    const box = sandbox(t, context);
    await copyFiles(box.request({ sources: ['docs', 'app.js', 'notes.tmp'], dest: '/e/', exclude: ['*.md', 'skip', '*.tmp'] }));
    assert.equal(read(box.root, '/e/b.txt'), 'b');
    assert.equal(read(box.root, '/e/app.js'), 'app');
    assert.equal(exists(box.root, '/e/a.md'), false);
    assert.equal(exists(box.root, '/e/skip'), false);
    assert.equal(exists(box.root, '/e/notes.tmp'), false);
  });

  it('rejects an invalid --exclude pattern', async (t) => {
    const box = sandbox(t, context);
    await rejectsWith(copyFiles(box.request({ sources: ['docs'], dest: '/e/', exclude: ['[x'] })), 'DOCKERFILE', /--exclude=\[x is not a valid pattern/);
  });
});

describe('COPY: metadata', () => {
  it('--chown owns files and created directories; existing directories keep theirs', async (t) => {
    const box = sandbox(t, { 'src/f': 'f', 'src/d/g': 'g', 'src/l': { link: 'f' } }, { opt: { dir: true } });
    lchownSync(join(box.root, 'opt'), 5, 5);
    await copyFiles(box.request({ sources: ['src'], dest: '/opt/app', owner: { uid: 1000, gid: 1001 } }));
    for (const path of ['/opt/app', '/opt/app/f', '/opt/app/d', '/opt/app/d/g', '/opt/app/l']) {
      const s = stat(box.root, path);
      assert.deepEqual([s.uid, s.gid], [1000, 1001], path);
    }
    assert.equal(stat(box.root, '/opt').uid, 5);
  });

  it('--chmod octal applies to files and directories', async (t) => {
    const box = sandbox(t, { 'src/f': { content: 'f', mode: 0o644 }, 'src/d/g': 'g' });
    await copyFiles(box.request({ sources: ['src'], dest: '/c/', chmod: '751' }));
    assert.equal(stat(box.root, '/c/f').mode & 0o7777, 0o751);
    assert.equal(stat(box.root, '/c/d').mode & 0o7777, 0o751);
    assert.equal(stat(box.root, '/c/d/g').mode & 0o7777, 0o751);
  });

  it('--chmod symbolic changes the bits each file has', async (t) => {
    const box = sandbox(t, { 'src/plain': { content: 'p', mode: 0o664 }, 'src/tool': { content: 't', mode: 0o775 }, 'src/dir': { dir: true, mode: 0o700 } });
    await copyFiles(box.request({ sources: ['src'], dest: '/s/', chmod: 'u=rwX,go=rX' }));
    assert.equal(stat(box.root, '/s/plain').mode & 0o7777, 0o644);
    assert.equal(stat(box.root, '/s/tool').mode & 0o7777, 0o755);
    assert.equal(stat(box.root, '/s/dir').mode & 0o7777, 0o755);
    await copyFiles(box.request({ sources: ['src/plain'], dest: '/x', chmod: 'u+x,g-w' }));
    assert.equal(stat(box.root, '/x').mode & 0o7777, 0o744);
  });

  it('rejects a --chmod that is no mode', async (t) => {
    const box = sandbox(t, { f: 'f' });
    await rejectsWith(copyFiles(box.request({ sources: ['f'], dest: '/f', chmod: '9z' })), 'DOCKERFILE', /^Dockerfile:7: --chmod=9z is not a file mode/);
  });

  it('keeps modes and modification times of files and directories', async (t) => {
    const box = sandbox(t, { 'src/run.sh': { content: '#!/bin/sh', mode: 0o750, mtime: 1_600_000_000 }, 'src/sub': { dir: true, mode: 0o711, mtime: 1_500_000_000 } });
    await copyFiles(box.request({ sources: ['src'], dest: '/t/' }));
    assert.equal(stat(box.root, '/t/run.sh').mode & 0o7777, 0o750);
    assert.equal(stat(box.root, '/t/run.sh').mtimeMs, 1_600_000_000_000);
    assert.equal(stat(box.root, '/t/sub').mode & 0o7777, 0o711);
    assert.equal(stat(box.root, '/t/sub').mtimeMs, 1_500_000_000_000);
  });

  it('copies symlinks inside a directory as symlinks; a named symlink source is followed', async (t) => {
    const box = sandbox(t, { 'src/real.txt': 'real', 'src/rel': { link: 'real.txt' }, 'src/abs': { link: '/etc/passwd' }, 'top': { link: 'src/real.txt' } });
    await copyFiles(box.request({ sources: ['src'], dest: '/l/' }));
    assert.ok(stat(box.root, '/l/rel').isSymbolicLink());
    assert.equal(readlinkSync(join(box.root, '/l/rel')), 'real.txt');
    assert.equal(readlinkSync(join(box.root, '/l/abs')), '/etc/passwd');
    await copyFiles(box.request({ sources: ['top'], dest: '/n/' }));
    assert.ok(stat(box.root, '/n/top').isFile());
    assert.equal(read(box.root, '/n/top'), 'real');
  });

  it('keeps hard links between copied files', async (t) => {
    const box = sandbox(t, { 'src/one': 'same' });
    linkSync(join(box.context, 'src/one'), join(box.context, 'src/two'));
    const result = await copyFiles(box.request({ sources: ['src'], dest: '/h/' }));
    assert.equal(stat(box.root, '/h/one').ino, stat(box.root, '/h/two').ino);
    assert.deepEqual(result.written, ['/h', '/h/one', '/h/two']);
    const hashes = result.sourceDigestInputs.map((input) => input.contentHash);
    assert.equal(hashes[0], hashes[1]);
  });

  it('skips sockets', async (t) => {
    const box = sandbox(t, { 'src/f': 'f' });
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(join(box.context, 'src/sock'), resolve));
    t.after(() => server.close());
    await copyFiles(box.request({ sources: ['src'], dest: '/s/' }));
    assert.equal(read(box.root, '/s/f'), 'f');
    assert.equal(exists(box.root, '/s/sock'), false);
  });

  it('writes heredoc sources: 0644, named after the delimiter, --chmod and --chown applied', async (t) => {
    const box = sandbox(t);
    const result = await copyFiles(box.request({ sources: [], inline: [{ name: 'hello.sh', content: 'echo hi\n' }], dest: '/usr/local/bin/' }));
    assert.equal(read(box.root, '/usr/local/bin/hello.sh'), 'echo hi\n');
    assert.equal(stat(box.root, '/usr/local/bin/hello.sh').mode & 0o7777, 0o644);
    assert.deepEqual(result.sourceDigestInputs.map((input) => input.path), ['<<hello.sh']);
    await copyFiles(box.request({ sources: [], inline: [{ name: 'EOF', content: 'x' }], dest: '/run.sh', chmod: '755', owner: { uid: 7, gid: 8 } }));
    assert.equal(stat(box.root, '/run.sh').mode & 0o7777, 0o755);
    assert.equal(stat(box.root, '/run.sh').uid, 7);
  });

  it('never writes below a path on the ignore list', async (t) => {
    const box = sandbox(t, { 'src/f': 'f', 'src/kaniko/x': 'x' });
    const result = await copyFiles(box.request({ sources: ['src'], dest: '/', ignore: IgnoreList.of(['/kaniko']) }));
    assert.equal(read(box.root, '/f'), 'f');
    assert.equal(exists(box.root, '/kaniko'), false);
    assert.ok(!result.written.some((path) => path.startsWith('/kaniko')));
  });
});

describe('sourceDigestInputs', () => {
  const tree: Tree = { 'app/main.js': 'console.log(1)', 'app/lib/util.js': 'exports.x = 1', 'app/link': { link: 'main.js' }, 'app/skip.tmp': 'ignored' };
  const ignore = createIgnoreMatcher('*.tmp\n**/*.tmp\n');

  it('is the same for two identical trees, whatever their times, and for a plan and a copy', async (t) => {
    const one = sandbox(t, tree);
    const two = sandbox(t, tree);
    utimesSync(join(two.context, 'app/main.js'), 1, 1);
    const first = await copyFiles(one.request({ sources: ['app'], dest: '/app/', sourceIgnore: ignore }));
    const second = await copyFiles(two.request({ sources: ['app'], dest: '/app/', sourceIgnore: ignore }));
    assert.deepEqual(first.sourceDigestInputs, second.sourceDigestInputs);
    assert.deepEqual(await describeSources(one.request({ sources: ['app'], dest: '/app/', sourceIgnore: ignore })), first.sourceDigestInputs);
    assert.deepEqual(first.sourceDigestInputs.map((input) => input.path), ['app/lib', 'app/lib/util.js', 'app/link', 'app/main.js']);
    const main = first.sourceDigestInputs.find((input) => input.path === 'app/main.js')!;
    assert.match(main.contentHash, /^[0-9a-f]{16}$/);
    assert.equal(main.kind, 'file');
    assert.equal(main.size, 14);
  });

  it('changes when one byte changes, not when an ignored file does', async (t) => {
    const box = sandbox(t, tree);
    const request = box.request({ sources: ['app'], dest: '/app/', sourceIgnore: ignore });
    const before = await describeSources(request);
    writeFileSync(join(box.context, 'app/skip.tmp'), 'changed');
    assert.deepEqual(await describeSources(request), before);
    writeFileSync(join(box.context, 'app/lib/util.js'), 'exports.x = 2');
    const after = await describeSources(request);
    assert.notDeepEqual(after, before);
    const changed = after.filter((input, i) => JSON.stringify(input) !== JSON.stringify(before[i]));
    assert.deepEqual(changed.map((input) => input.path), ['app/lib/util.js']);
  });

  it('changes with a mode but not with an owner', async (t) => {
    const box = sandbox(t, tree);
    const request = box.request({ sources: ['app/main.js'], dest: '/m' });
    const before = await describeSources(request);
    lchownSync(join(box.context, 'app/main.js'), 42, 42);
    assert.deepEqual(await describeSources(request), before);
    chmodSync(join(box.context, 'app/main.js'), 0o755);
    assert.notDeepEqual(await describeSources(request), before);
  });

  it('hashes a large file the same way it is copied', async (t) => {
    const big = Buffer.alloc(9 << 20, 7);
    big[123_456] = 1;
    const box = sandbox(t);
    writeFileSync(join(box.context, 'big.bin'), big);
    const copied = await copyFiles(box.request({ sources: ['big.bin'], dest: '/big.bin' }));
    assert.ok(readFileSync(join(box.root, 'big.bin')).equals(big));
    assert.deepEqual(await describeSources(box.request({ sources: ['big.bin'], dest: '/big.bin' })), copied.sourceDigestInputs);
    writeFileSync(join(box.context, 'small.bin'), big.subarray(0, 3 << 20));
    const small = await describeSources(box.request({ sources: ['small.bin'], dest: '/s' }));
    assert.notEqual(small[0]!.contentHash, copied.sourceDigestInputs[0]!.contentHash);
  });
});

describe('COPY: setgid destination directories', () => {
  it('owns files 0:0 even below a setgid directory of another group', async (t) => {
    const box = sandbox(t, { 'src/sub/f': 'f', 'src/g': 'g' }, { shared: { dir: true } });
    lchownSync(join(box.root, 'shared'), 0, 50);
    chmodSync(join(box.root, 'shared'), 0o2775);
    await copyFiles(box.request({ sources: ['src'], dest: '/shared/' }));
    for (const path of ['/shared/g', '/shared/sub', '/shared/sub/f']) assert.equal(stat(box.root, path).gid, 0, path);
    assert.equal(stat(box.root, '/shared').gid, 50);
  });
});

describe('parseChmod', () => {
  const cases: [spec: string, from: number, isDir: boolean, expected: number][] = [
    ['755', 0o600, false, 0o755],
    ['0644', 0o755, true, 0o644],
    ['4755', 0o644, false, 0o4755],
    ['+x', 0o644, false, 0o755],
    ['u+x', 0o644, false, 0o744],
    ['u+x,g-w', 0o664, false, 0o744],
    ['go-rwx', 0o755, false, 0o700],
    ['a=r', 0o777, false, 0o444],
    ['u=rwX,go=rX', 0o664, false, 0o644],
    ['u=rwX,go=rX', 0o700, true, 0o755],
    ['u=rwX,go=rX', 0o744, false, 0o755],
    ['g=u', 0o740, false, 0o770],
    ['o=g', 0o750, false, 0o755],
    ['u+s', 0o755, false, 0o4755],
    ['g+s', 0o755, true, 0o2755],
    ['+t', 0o777, true, 0o1777],
    ['u=rw,g=r,o=', 0o777, false, 0o640],
    ['u-w+x', 0o644, false, 0o544],
  ];
  for (const [spec, from, isDir, expected] of cases) {
    it(`${spec} turns ${from.toString(8)}${isDir ? ' (dir)' : ''} into ${expected.toString(8)}`, async () => {
      const { parseChmod } = await import('../../src/builder/copy/chmod.js');
      assert.equal(parseChmod(spec)!(from, isDir).toString(8), expected.toString(8));
    });
  }
  it('refuses what is neither notation', async () => {
    const { parseChmod } = await import('../../src/builder/copy/chmod.js');
    for (const spec of ['', '8', '07777x', 'u', 'z+x', 'u+q', 'u+x,', 'rwx']) assert.equal(parseChmod(spec), undefined, spec);
  });
});

describe('wildcards (Go filepath.Match)', () => {
  const cases: [pattern: string, name: string, matches: boolean][] = [
    ['*', 'anything.txt', true],
    ['*', '.hidden', true],
    ['*.txt', 'a.txt', true],
    ['*.txt', 'a.txt.bak', false],
    ['?.md', 'a.md', true],
    ['?.md', 'ab.md', false],
    ['[abc].js', 'b.js', true],
    ['[^abc].js', 'b.js', false],
    ['[^abc].js', 'd.js', true],
    ['[a-c]x', 'cx', true],
    ['[a-c]x', 'dx', false],
    ['arr[[]0].txt', 'arr[0].txt', true],
    ['\\*', '*', true],
    ['\\*', 'a', false],
    ['a\\[b', 'a[b', true],
    ['(x)+.txt', '(x)+.txt', true],
    ['ü*', 'über', true],
  ];
  for (const [pattern, name, matches] of cases) {
    it(`${pattern} ${matches ? 'matches' : 'does not match'} ${name}`, async () => {
      const { compileComponent } = await import('../../src/builder/copy/glob.js');
      assert.equal(compileComponent(pattern)!.test(name), matches);
    });
  }
  it('refuses what Go calls a bad pattern', async () => {
    const { compileComponent } = await import('../../src/builder/copy/glob.js');
    for (const pattern of ['[', '[]', '[a', 'a\\', '[z-a]', '[a-]']) assert.equal(compileComponent(pattern), undefined, pattern);
  });
});
