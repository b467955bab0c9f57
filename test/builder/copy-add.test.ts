import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, type Stats } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compressionOf, isTarHeader } from '../../src/builder/copy/archive.js';
import { copyFiles, describeSources, type CopyRequest } from '../../src/builder/copy/index.js';
import { isKilnError } from '../../src/util/errors.js';

/* ---------- fixtures ---------- */

interface Sandbox {
  context: string;
  root: string;
  temp: string;
  request(partial: Partial<CopyRequest> & Pick<CopyRequest, 'sources' | 'dest'>): CopyRequest;
}

function sandbox(t: TestContext): Sandbox {
  const base = mkdtempSync(join(tmpdir(), 'kiln-add-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const context = join(base, 'context');
  const root = join(base, 'root');
  const temp = join(base, 'tmp');
  for (const dir of [context, root, temp]) mkdirSync(dir);
  return {
    context,
    root,
    temp,
    request: (partial) => ({ where: 'Dockerfile:3', kind: 'add', workdir: '/', sourceRoot: context, rootDir: root, tempDir: temp, ...partial }),
  };
}

function stat(root: string, imagePath: string): Stats {
  return lstatSync(join(root, imagePath));
}

function exists(root: string, imagePath: string): boolean {
  return lstatSync(join(root, imagePath), { throwIfNoEntry: false }) !== undefined;
}

/** A tar of a small tree (owned by 1234:1234, mtime 2001-09-09) made by GNU tar, compressed with `flag`. */
function makeTar(dir: string, out: string, flag: string[]): void {
  const tree = join(dir, `tree-${Math.random().toString(36).slice(2)}`);
  mkdirSync(join(tree, 'pkg/bin'), { recursive: true });
  writeFileSync(join(tree, 'pkg/bin/tool'), '#!/bin/sh\necho tool\n', { mode: 0o755 });
  writeFileSync(join(tree, 'pkg/README'), 'read me');
  const result = spawnSync('tar', ['-C', tree, ...flag, '--owner=1234', '--group=1234', '--numeric-owner', '--mtime=@1000000000', '-cf', out, 'pkg'], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  rmSync(tree, { recursive: true });
}

/* ---------- local archives ---------- */

describe('ADD: local archives', () => {
  const formats: { name: string; flag: string[]; file: string }[] = [
    { name: 'plain tar', flag: [], file: 'bundle' },
    { name: 'gzip', flag: ['-z'], file: 'bundle.data' },
    { name: 'bzip2', flag: ['-j'], file: 'bundle.tar.bz2' },
    { name: 'xz', flag: ['-J'], file: 'archive.bin' },
  ];
  for (const format of formats) {
    it(`extracts ${format.name}, detected by content`, async (t) => {
      const box = sandbox(t);
      makeTar(box.context, join(box.context, format.file), format.flag);
      const result = await copyFiles(box.request({ sources: [format.file], dest: '/opt', owner: { uid: 1, gid: 1 }, chmod: '700' }));
      assert.equal(readFileSync(join(box.root, 'opt/pkg/bin/tool'), 'utf8'), '#!/bin/sh\necho tool\n');
      const tool = stat(box.root, '/opt/pkg/bin/tool');
      // The archive's owners and modes, not --chown and --chmod.
      assert.equal(tool.mode & 0o7777, 0o755);
      assert.deepEqual([tool.uid, tool.gid], [1234, 1234]);
      assert.equal(tool.mtimeMs, 1_000_000_000_000);
      assert.equal(exists(box.root, `/opt/${format.file}`), false);
      assert.deepEqual(result.written, ['/opt', '/opt/pkg', '/opt/pkg/README', '/opt/pkg/bin', '/opt/pkg/bin/tool']);
      // The archive itself is the source content.
      assert.deepEqual(result.sourceDigestInputs.map((input) => [input.path, input.kind]), [[format.file, 'file']]);
    });
  }

  it('extracts zstd', async (t) => {
    const box = sandbox(t);
    makeTar(box.context, join(box.context, 'plain.tar'), []);
    const zstd = spawnSync('zstd', ['-q', '-c', join(box.context, 'plain.tar')]);
    assert.equal(zstd.status, 0, String(zstd.stderr));
    writeFileSync(join(box.context, 'z.tzst'), zstd.stdout);
    await copyFiles(box.request({ sources: ['z.tzst'], dest: '/z/' }));
    assert.equal(readFileSync(join(box.root, 'z/pkg/README'), 'utf8'), 'read me');
  });

  it('copies a file that only looks like an archive by name', async (t) => {
    const box = sandbox(t);
    writeFileSync(join(box.context, 'fake.tar.gz'), 'not an archive at all');
    writeFileSync(join(box.context, 'empty.tar'), '');
    writeFileSync(join(box.context, 'zeros.tar'), Buffer.alloc(1024));
    await copyFiles(box.request({ sources: ['fake.tar.gz', 'empty.tar', 'zeros.tar'], dest: '/f/' }));
    assert.equal(readFileSync(join(box.root, 'f/fake.tar.gz'), 'utf8'), 'not an archive at all');
    assert.ok(stat(box.root, '/f/empty.tar').isFile());
    assert.equal(stat(box.root, '/f/zeros.tar').size, 1024);
  });

  it('COPY never extracts', async (t) => {
    const box = sandbox(t);
    makeTar(box.context, join(box.context, 'a.tgz'), ['-z']);
    await copyFiles(box.request({ kind: 'copy', sources: ['a.tgz'], dest: '/c/' }));
    assert.ok(stat(box.root, '/c/a.tgz').isFile());
  });

  it('reports a damaged archive with its location', async (t) => {
    const box = sandbox(t);
    makeTar(box.context, join(box.context, 'a.tgz'), ['-z']);
    const whole = readFileSync(join(box.context, 'a.tgz'));
    writeFileSync(join(box.context, 'a.tgz'), whole.subarray(0, whole.length - 30));
    await assert.rejects(copyFiles(box.request({ sources: ['a.tgz'], dest: '/x/' })), (err: unknown) => isKilnError(err) && /^Dockerfile:3: ADD could not extract "a\.tgz"/.test(err.message));
  });
});

describe('archive detection', () => {
  it('knows the compressions by their first bytes', () => {
    assert.equal(compressionOf(Buffer.from([0x1f, 0x8b, 8])), 'gzip');
    assert.equal(compressionOf(Buffer.from('BZh91AY')), 'bzip2');
    assert.equal(compressionOf(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])), 'xz');
    assert.equal(compressionOf(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])), 'zstd');
    assert.equal(compressionOf(Buffer.from('ustar')), 'none');
  });

  it('checks the tar header checksum', () => {
    const header = Buffer.alloc(512);
    header.write('file.txt', 0);
    header.write('0000644\0', 100);
    header.write('ustar\0', 257);
    header.fill(0x20, 148, 156);
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
    assert.equal(isTarHeader(header), true);
    header[0] = 0x41;
    assert.equal(isTarHeader(header), false);
    assert.equal(isTarHeader(Buffer.alloc(512)), false);
  });
});

/* ---------- URLs ---------- */

describe('ADD: URLs', () => {
  const tool = Buffer.from('#!/bin/sh\necho downloaded\n');
  const toolSha = createHash('sha256').update(tool).digest('hex');
  let server: Server;
  let origin: string;
  let requests: string[] = [];
  let tgz: Buffer;

  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-add-srv-'));
    makeTar(dir, join(dir, 'a.tgz'), ['-z']);
    tgz = readFileSync(join(dir, 'a.tgz'));
    rmSync(dir, { recursive: true });
    server = createServer((req, res) => {
      requests.push(req.url ?? '');
      if (req.url === '/dl/tool.sh' || req.url === '/dl/tool.sh?x=1') {
        res.writeHead(200, { 'last-modified': 'Wed, 21 Oct 2015 07:28:00 GMT', 'content-length': tool.length });
        res.end(tool);
      } else if (req.url === '/dl/archive.tar.gz') {
        res.end(tgz);
      } else if (req.url === '/moved') {
        res.writeHead(302, { location: '/dl/tool.sh' });
        res.end();
      } else {
        res.writeHead(404);
        res.end('no');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('downloads into a directory under the URL file name: 0600, Last-Modified as mtime, checksum verified', async (t) => {
    const box = sandbox(t);
    const result = await copyFiles(box.request({ sources: [`${origin}/dl/tool.sh?x=1`], dest: '/usr/bin/', checksum: `sha256:${toolSha}` }));
    assert.ok(readFileSync(join(box.root, 'usr/bin/tool.sh')).equals(tool));
    const s = stat(box.root, '/usr/bin/tool.sh');
    assert.equal(s.mode & 0o7777, 0o600);
    assert.equal(s.mtimeMs, Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'));
    assert.deepEqual(result.written, ['/usr', '/usr/bin', '/usr/bin/tool.sh']);
    assert.deepEqual(result.sourceDigestInputs, [{ path: `${origin}/dl/tool.sh?x=1`, kind: 'url', mode: 0, size: 0, contentHash: `sha256:${toolSha}` }]);
    assert.deepEqual(readdirSync(box.temp), []);
  });

  it('writes the destination itself when it has no trailing slash; --chmod and --chown apply', async (t) => {
    const box = sandbox(t);
    await copyFiles(box.request({ sources: [`${origin}/moved`], dest: '/bin/tool', chmod: '755', owner: { uid: 3, gid: 4 } }));
    const s = stat(box.root, '/bin/tool');
    assert.equal(s.mode & 0o7777, 0o755);
    assert.deepEqual([s.uid, s.gid], [3, 4]);
  });

  it('does not extract a downloaded archive', async (t) => {
    const box = sandbox(t);
    await copyFiles(box.request({ sources: [`${origin}/dl/archive.tar.gz`], dest: '/d/' }));
    assert.ok(readFileSync(join(box.root, 'd/archive.tar.gz')).equals(tgz));
  });

  it('a checksum mismatch fails and writes nothing', async (t) => {
    const box = sandbox(t);
    const wrong = 'sha256:' + '0'.repeat(64);
    await assert.rejects(copyFiles(box.request({ sources: [`${origin}/dl/tool.sh`], dest: '/deep/dir/', checksum: wrong })), (err: unknown) => {
      assert.ok(isKilnError(err, 'DIGEST_MISMATCH'));
      assert.match(err.message, new RegExp(`^Dockerfile:3: ${origin}/dl/tool\\.sh has checksum sha256:${toolSha}, not the expected "${wrong}"; update --checksum`));
      return true;
    });
    assert.deepEqual(readdirSync(box.root), []);
    assert.deepEqual(readdirSync(box.temp), []);
  });

  it('an HTTP error names the URL and the status', async (t) => {
    const box = sandbox(t);
    await assert.rejects(copyFiles(box.request({ sources: [`${origin}/nothing`], dest: '/n' })), (err: unknown) => isKilnError(err, 'ADD_URL') && err.message === `Dockerfile:3: downloading ${origin}/nothing failed with HTTP status 404; check the URL (ADD sends no credentials).`);
    assert.deepEqual(readdirSync(box.root), []);
  });

  it('uses an injected fetch', async (t) => {
    const box = sandbox(t);
    const { Readable } = await import('node:stream');
    const seen: string[] = [];
    await copyFiles(box.request({ sources: ['https://example.invalid/x/'], dest: '/y/', fetch: async (url) => (seen.push(url), { status: 200, headers: {}, body: Readable.from([Buffer.from('hi')]) }) }));
    assert.deepEqual(seen, ['https://example.invalid/x/']);
    assert.equal(readFileSync(join(box.root, 'y/x'), 'utf8'), 'hi');
  });

  it('checks --checksum against the sources', async (t) => {
    const box = sandbox(t);
    writeFileSync(join(box.context, 'local'), 'l');
    const checksum = `sha256:${toolSha}`;
    await assert.rejects(copyFiles(box.request({ sources: ['local'], dest: '/l', checksum })), /only for http\(s\) URLs/);
    await assert.rejects(copyFiles(box.request({ sources: [`${origin}/a`, `${origin}/b`], dest: '/l/', checksum })), /several sources/);
    await assert.rejects(copyFiles(box.request({ sources: [`${origin}/a`], dest: '/l', checksum: 'md5:abc' })), /cannot verify a download/);
  });

  it('describes a URL without fetching it', async (t) => {
    const box = sandbox(t);
    requests = [];
    const inputs = await describeSources(box.request({ sources: [`${origin}/dl/tool.sh`], dest: '/t' }));
    assert.deepEqual(inputs, [{ path: `${origin}/dl/tool.sh`, kind: 'url', mode: 0, size: 0, contentHash: '' }]);
    assert.deepEqual(requests, []);
  });
});
