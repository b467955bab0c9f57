import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack as tarPack } from 'tar-stream';
import { isKilnError } from '../../src/util/errors.js';
import { TarParser, type TarEntry, type TarSink } from '../../src/snapshot/extract-tar.js';

interface Seen {
  entry: TarEntry;
  content: string;
}

class Recorder implements TarSink {
  readonly seen: Seen[] = [];
  private current: { entry: TarEntry; chunks: Buffer[] } | undefined;

  entry(entry: TarEntry): void {
    assert.equal(this.current, undefined, 'entry before the previous one ended');
    this.current = { entry, chunks: [] };
  }

  data(chunk: Buffer): void {
    // Slices are only valid during the call: copy.
    this.current!.chunks.push(Buffer.from(chunk));
  }

  end(): void {
    this.seen.push({ entry: this.current!.entry, content: Buffer.concat(this.current!.chunks).toString('latin1') });
    this.current = undefined;
  }
}

/** Parses `tar` fed in chunks of `chunkSize` bytes. */
function parse(tar: Buffer, chunkSize = tar.length): Seen[] {
  const recorder = new Recorder();
  const parser = new TarParser(recorder, 'the test archive');
  for (let at = 0; at < tar.length; at += chunkSize) parser.write(tar.subarray(at, at + chunkSize));
  parser.finish();
  return recorder.seen;
}

async function packed(entries: { header: Record<string, unknown>; content?: string }[]): Promise<Buffer> {
  const archive = tarPack();
  for (const { header, content } of entries) {
    if (content !== undefined) archive.entry(header as never, content);
    else archive.entry(header as never);
  }
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive as unknown as AsyncIterable<Buffer>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

function header(fields: { name: string; typeflag?: string; size?: number; mode?: number; uid?: number | Buffer; linkname?: string; magic?: 'posix' | 'gnu' | 'v7'; prefix?: string; signed?: boolean }): Buffer {
  const block = Buffer.alloc(512);
  block.write(fields.name, 0, 100, 'utf8');
  block.write((fields.mode ?? 0o644).toString(8).padStart(7, '0') + '\0', 100, 'latin1');
  if (Buffer.isBuffer(fields.uid)) fields.uid.copy(block, 108);
  else block.write((fields.uid ?? 0).toString(8).padStart(7, '0') + '\0', 108, 'latin1');
  block.write('0000000\0', 116, 'latin1');
  block.write((fields.size ?? 0).toString(8).padStart(11, '0') + '\0', 124, 'latin1');
  block.write('13000000000\0', 136, 'latin1');
  block.write(fields.typeflag ?? '0', 156, 'latin1');
  if (fields.linkname) block.write(fields.linkname, 157, 100, 'utf8');
  const magic = fields.magic ?? 'posix';
  if (magic === 'posix') block.write('ustar\x0000', 257, 'latin1');
  if (magic === 'gnu') block.write('ustar  \0', 257, 'latin1');
  if (fields.prefix) block.write(fields.prefix, 345, 155, 'utf8');
  block.write('        ', 148, 'latin1');
  let sum = 0;
  for (const byte of block) sum += fields.signed && byte > 127 ? byte - 256 : byte;
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return block;
}

function padded(data: string | Buffer): Buffer {
  const bytes = Buffer.from(data);
  return Buffer.concat([bytes, Buffer.alloc((512 - (bytes.length % 512)) % 512)]);
}

function paxRecords(records: Record<string, string>): Buffer {
  let text = '';
  for (const [key, value] of Object.entries(records)) {
    const body = ` ${key}=${value}\n`;
    let length = body.length + 1;
    while (String(length).length + body.length !== length) length++;
    text += length + body;
  }
  return Buffer.from(text);
}

const END = Buffer.alloc(1024);

test('entries and content come out the same whatever the chunk boundaries', async () => {
  const tar = await packed([
    { header: { name: 'dir/', type: 'directory', mode: 0o750, uid: 3, gid: 4, mtime: new Date(1_000_000_000_000) } },
    { header: { name: 'dir/a', mode: 0o4755 }, content: 'x'.repeat(1500) },
    { header: { name: 'dir/empty' }, content: '' },
    { header: { name: 'dir/l', type: 'symlink', linkname: 'a' } },
    { header: { name: 'dir/h', type: 'link', linkname: 'dir/a' } },
    { header: { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 } },
    { header: { name: 'p'.repeat(150), mtime: new Date(0) }, content: 'pax' },
  ]);
  const whole = parse(tar);
  assert.deepEqual(
    whole.map((s) => [s.entry.name, s.entry.type, s.content.length]),
    [
      ['dir/', 'dir', 0],
      ['dir/a', 'file', 1500],
      ['dir/empty', 'file', 0],
      ['dir/l', 'symlink', 0],
      ['dir/h', 'link', 0],
      ['dev/null', 'char', 0],
      ['p'.repeat(150), 'file', 3],
    ],
  );
  const dir = whole[0]!.entry;
  assert.deepEqual([dir.mode, dir.uid, dir.gid, dir.mtime], [0o750, 3, 4, 1_000_000_000]);
  assert.equal(whole[1]!.entry.mode, 0o4755);
  assert.equal(whole[3]!.entry.linkname, 'a');
  assert.deepEqual([whole[5]!.entry.devmajor, whole[5]!.entry.devminor], [1, 3]);
  for (const size of [1, 7, 511, 512, 513, 1000, 4096]) {
    assert.deepEqual(parse(tar, size), whole, `chunks of ${size} bytes`);
  }
});

test('ustar prefix, v7 directories, GNU magic, signed checksums and base-256 numbers', () => {
  const base256Uid = Buffer.from([0x80, 0, 0, 0, 0, 0x7f, 0xff, 0xff]);
  const tar = Buffer.concat([
    header({ name: 'file', prefix: 'some/long/prefix' }),
    header({ name: 'old-dir/', magic: 'v7' }),
    header({ name: 'gnu-file', magic: 'gnu', size: 2 }),
    padded('hi'),
    header({ name: 'caf\u00e9', signed: true }),
    header({ name: 'big-uid', uid: base256Uid }),
    END,
  ]);
  const seen = parse(tar).map((s) => s.entry);
  assert.equal(seen[0]!.name, 'some/long/prefix/file');
  assert.equal(seen[1]!.type, 'dir');
  assert.equal(seen[2]!.name, 'gnu-file');
  assert.equal(seen[3]!.name, 'caf\u00e9');
  assert.equal(seen[4]!.uid, 0x7fffff);
});

test('pax headers: per entry over global, size, times, ids and extended attributes', () => {
  const global = paxRecords({ uid: '500', mtime: '1700000000' });
  const local = paxRecords({ path: 'pax/long/' + 'n'.repeat(200), size: '5', mtime: '1600000000.5', atime: '1500000000.25', gid: '70000', 'SCHILY.xattr.security.capability': 'cap' });
  const tar = Buffer.concat([
    header({ name: 'pax_global_header', typeflag: 'g', size: global.length }),
    padded(global),
    header({ name: 'PaxHeaders/x', typeflag: 'x', size: local.length }),
    padded(local),
    header({ name: 'short-name', size: 0 }),
    padded('12345'),
    header({ name: 'second' }),
    END,
  ]);
  const [first, second] = parse(tar, 100);
  assert.equal(first!.entry.name, 'pax/long/' + 'n'.repeat(200));
  assert.equal(first!.content, '12345');
  assert.deepEqual([first!.entry.uid, first!.entry.gid, first!.entry.mtime, first!.entry.atime], [500, 70000, 1_600_000_000.5, 1_500_000_000.25]);
  assert.deepEqual(first!.entry.xattrs, { 'security.capability': 'cap' });
  // The global header goes on; the per-entry one does not.
  assert.deepEqual([second!.entry.name, second!.entry.uid, second!.entry.mtime, second!.entry.xattrs], ['second', 500, 1_700_000_000, undefined]);
});

test('GNU long names and long link names', () => {
  const name = 'x/'.repeat(80) + 'file';
  const link = 'y'.repeat(300);
  const tar = Buffer.concat([
    header({ name: '././@LongLink', typeflag: 'L', size: name.length + 1, magic: 'gnu' }),
    padded(name + '\0'),
    header({ name: '././@LongLink', typeflag: 'K', size: link.length + 1, magic: 'gnu' }),
    padded(link + '\0'),
    header({ name: 'truncated', typeflag: '2', linkname: 'truncated', magic: 'gnu' }),
    END,
  ]);
  const [entry] = parse(tar, 33).map((s) => s.entry);
  assert.equal(entry!.name, name);
  assert.equal(entry!.linkname, link);
  assert.equal(entry!.type, 'symlink');
});

test('anything after the end-of-archive marker is ignored; one zero block is enough', () => {
  const tar = Buffer.concat([header({ name: 'a' }), Buffer.alloc(512), Buffer.from('trailing garbage that is not a header')]);
  assert.deepEqual(parse(tar).map((s) => s.entry.name), ['a']);
  // No marker at all, ending on a block boundary, is accepted too.
  assert.deepEqual(parse(header({ name: 'b' })).map((s) => s.entry.name), ['b']);
});

test('unknown type flags come out as unsupported entries whose content is skipped', () => {
  const tar = Buffer.concat([header({ name: 'sparse', typeflag: 'S', size: 600 }), padded('z'.repeat(600)), header({ name: 'after' }), END]);
  const seen = parse(tar);
  assert.deepEqual(seen.map((s) => [s.entry.name, s.entry.type, s.entry.typeflag, s.content]), [
    ['sparse', 'unsupported', 'S', ''],
    ['after', 'file', '0', ''],
  ]);
});

test('damaged archives are refused with INVALID_LAYER', () => {
  const refuse = (tar: Buffer, pattern: RegExp) =>
    assert.throws(
      () => parse(tar),
      (err: unknown) => isKilnError(err, 'INVALID_LAYER') && pattern.test((err as Error).message) && (err as Error).message.includes('the test archive'),
    );
  const good = header({ name: 'a', size: 10 });
  const bad = Buffer.from(good);
  bad[0] = 0x62;
  refuse(Buffer.concat([bad, padded('0123456789'), END]), /corrupt header at byte 0/);
  refuse(Buffer.concat([good, Buffer.from('01234')]), /truncated/);
  refuse(good.subarray(0, 300), /truncated/);
  const pax = Buffer.from('99 path=x\n');
  refuse(Buffer.concat([header({ name: 'p', typeflag: 'x', size: pax.length }), padded(pax), header({ name: 'a' }), END]), /malformed pax header/);
  refuse(Buffer.concat([header({ name: 'p', typeflag: 'x', size: 2 << 20 })]), /refuses headers over/);
  const badSize = paxRecords({ size: '12abc' });
  refuse(Buffer.concat([header({ name: 'p', typeflag: 'x', size: badSize.length }), padded(badSize), header({ name: 'a' }), END]), /pax size/);
  // A pax header with no entry after it.
  const dangling = paxRecords({ path: 'x' });
  refuse(Buffer.concat([header({ name: 'p', typeflag: 'x', size: dangling.length }), padded(dangling)]), /truncated/);
});

test('archives written by GNU tar in gnu, pax, ustar and v7 formats read back the same', (t) => {
  if (spawnSync('tar', ['--version'], { stdio: 'ignore' }).status !== 0) {
    t.skip('GNU tar not installed');
    return;
  }
  const base = mkdtempSync(join(tmpdir(), 'kiln-extract-tar-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const src = join(base, 'src');
  mkdirSync(join(src, 'd'), { recursive: true });
  writeFileSync(join(src, 'd/file'), 'content');
  symlinkSync('file', join(src, 'd/link'));
  const expected = ['./', './d/', './d/file', './d/link'];
  for (const format of ['gnu', 'pax', 'ustar', 'v7']) {
    const tarPath = join(base, `${format}.tar`);
    const run = spawnSync('tar', ['--format', format, '--sort=name', '-C', src, '-cf', tarPath, '.'], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const seen = parse(readFileSync(tarPath), 4096);
    assert.deepEqual(seen.map((s) => s.entry.name), expected, format);
    assert.equal(seen[2]!.content, 'content', format);
    assert.equal(seen[3]!.entry.linkname, 'file', format);
  }
});
