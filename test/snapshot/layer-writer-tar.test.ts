import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { ParallelGzip } from '../../src/snapshot/tar-gzip.js';
import { BLOCK_SIZE, headerLength, paxRecordsFor, splitName, writeTarHeader, type TarHeader } from '../../src/snapshot/tar-header.js';
import { deviceNumbers } from '../../src/snapshot/tar-writer.js';

const BASE: TarHeader = { name: 'x', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 1_600_000_000 };

/** An archive of header-only entries (plus file data), ended as tar requires. */
function archive(headers: TarHeader[], data: Record<string, Buffer> = {}): Buffer {
  const parts: Buffer[] = [];
  for (const header of headers) {
    const pax = paxRecordsFor(header);
    const block = Buffer.alloc(headerLength(pax));
    assert.equal(writeTarHeader(block, 0, header, pax), block.length);
    parts.push(block);
    const content = data[header.name];
    if (content) parts.push(content, Buffer.alloc((BLOCK_SIZE - (content.length % BLOCK_SIZE)) % BLOCK_SIZE));
  }
  parts.push(Buffer.alloc(2 * BLOCK_SIZE));
  return Buffer.concat(parts);
}

function gnuTar(t: { after: (fn: () => void) => void }, tar: Buffer, args: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-tar-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'a.tar'), tar);
  return execFileSync('tar', [...args, '-f', join(dir, 'a.tar')], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
}

test('names of every length round-trip through GNU tar, across the PAX length-digit boundaries', (t) => {
  const names: string[] = [];
  for (let length = 95; length <= 160; length++) names.push('n'.repeat(length)); // one component: PAX beyond 100
  for (let length = 980; length <= 1010; length++) names.push(`${'p'.repeat(200)}/${'q'.repeat(200)}/${'r'.repeat(200)}/${'s'.repeat(200)}/${'t'.repeat(length - 804)}`);
  names.push(`${'a'.repeat(150)}/${'b'.repeat(99)}`); // ustar prefix + name
  names.push(`${'a'.repeat(150)}/${'b'.repeat(99)}/`); // a directory split the same way
  names.push(`${'é'.repeat(60)}/${'ü'.repeat(45)}`); // multi-byte, split at a byte offset
  const headers = names.map((name) => ({ ...BASE, name, type: name.endsWith('/') ? 'dir' : 'file' }) as TarHeader);
  const listed = gnuTar(t, archive(headers), ['--quoting-style=literal', '-t']).split('\n').filter(Boolean);
  assert.deepEqual(listed, names);
});

test('long link targets, big ids, old times and device numbers', (t) => {
  const target = `/${'l'.repeat(300)}`;
  const headers: TarHeader[] = [
    { ...BASE, name: 'sym', type: 'symlink', linkname: target },
    { ...BASE, name: 'owned', uid: 3_000_000, gid: 4_000_000 },
    { ...BASE, name: 'old', mtime: -86_400 },
    { ...BASE, name: 'dev', type: 'char', devmajor: 4095, devminor: 1_048_575 },
    { ...BASE, name: 'huge-dev', type: 'block', devmajor: 3_000_000, devminor: 7 },
    { ...BASE, name: 'fifo', type: 'fifo', mode: 0o600 },
    { ...BASE, name: 'dir/', type: 'dir', mode: 0o1777 },
    { ...BASE, name: 'suid', mode: 0o6755, size: 5 },
    { ...BASE, name: 'hard', type: 'link', linkname: 'suid' },
  ];
  const listing = gnuTar(t, archive(headers, { suid: Buffer.from('hello') }), ['--numeric-owner', '--full-time', '-tv']);
  assert.match(listing, new RegExp(`^l\\S+ 0/0 +0 \\S+ \\S+ sym -> ${target}$`, 'm'));
  assert.match(listing, /^-\S+ 3000000\/4000000 .* owned$/m);
  assert.match(listing, / 1969-12-31 00:00:00 old$/m);
  assert.match(listing, /^c\S+ 0\/0 +4095,1048575 .* dev$/m);
  assert.match(listing, /^b\S+ 0\/0 +3000000,7 .* huge-dev$/m);
  assert.match(listing, /^prw------- .* fifo$/m);
  assert.match(listing, /^drwxrwxrwt .* dir\/$/m);
  assert.match(listing, /^-rwsr-sr-x 0\/0 +5 .* suid$/m);
  assert.match(listing, /^h\S+ 0\/0 +0 .* hard link to suid$/m);
});

test('PAX records cover values the ustar fields cannot hold, and only those', () => {
  assert.equal(paxRecordsFor(BASE), undefined);
  assert.equal(paxRecordsFor({ ...BASE, name: 'a'.repeat(100) }), undefined);
  assert.equal(paxRecordsFor({ ...BASE, name: `${'a'.repeat(100)}/b` }), undefined, 'split into prefix and name');
  assert.equal(paxRecordsFor({ ...BASE, size: 8 * 1024 ** 3 })?.toString(), '19 size=8589934592\n');
  assert.equal(paxRecordsFor({ ...BASE, uid: 2_097_152 })?.toString(), '15 uid=2097152\n');
  const record = paxRecordsFor({ ...BASE, name: 'x'.repeat(93) + 'y'.repeat(8) })!.toString();
  assert.equal(record, `${record.length} path=${'x'.repeat(93)}${'y'.repeat(8)}\n`);
  assert.equal(record.length, 111);
});

test('ustar name splitting follows Go archive/tar', () => {
  assert.equal(splitName('short'), undefined);
  assert.deepEqual(splitName(`${'a'.repeat(120)}/b`), { prefix: 'a'.repeat(120), name: 'b' });
  assert.equal(splitName('a'.repeat(101)), undefined, 'no slash');
  assert.equal(splitName(`${'a'.repeat(156)}/b`), undefined, 'prefix too long');
  assert.equal(splitName(`a/${'b'.repeat(101)}`), undefined, 'name too long');
  assert.deepEqual(splitName(`${'a'.repeat(120)}/dir/`), { prefix: 'a'.repeat(120), name: 'dir/' });
});

test('device numbers follow the Linux dev_t layout', () => {
  assert.deepEqual(deviceNumbers(0x0103), { devmajor: 1, devminor: 3 });
  assert.deepEqual(deviceNumbers(0x0800), { devmajor: 8, devminor: 0 });
  // makedev(259, 70000) = (70000 & 0xff) | (259 << 8) | ((70000 & ~0xff) << 12)
  assert.deepEqual(deviceNumbers((70000 & 0xff) | (259 << 8) | ((70000 & ~0xff) * 4096)), { devmajor: 259, devminor: 70000 });
  assert.deepEqual(deviceNumbers(0x1000 * 2 ** 32 + 0x0fff00 + 0x12), { devmajor: 0x1000 | 0xfff, devminor: 0x12 });
});

async function gzipWith(input: Buffer[], concurrency: number, level = 1): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of Readable.from(input).pipe(new ParallelGzip({ level, concurrency }))) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

test('parallel gzip is one gzip member that gunzip reads, the same whatever the concurrency', async () => {
  const text = Buffer.from('kiln layer writer '.repeat(200_000)); // ~3.4 MiB, several blocks
  const random = randomBytes(1 << 20); // incompressible, exactly one block
  for (const input of [[text], [random, random], [Buffer.alloc(0)], [text.subarray(0, 1), text.subarray(1, 3 << 20), random]]) {
    const whole = Buffer.concat(input);
    const one = await gzipWith(input, 1);
    const three = await gzipWith(input, 3);
    assert.deepEqual(three, one);
    assert.deepEqual(gunzipSync(one), whole);
    assert.deepEqual(execFileSync('gzip', ['-dc'], { input: one, maxBuffer: 64 << 20 }), whole);
    assert.deepEqual(one.subarray(0, 4), Buffer.from([0x1f, 0x8b, 8, 0]));
  }
  const fast = await gzipWith([text], 2, 1);
  const best = await gzipWith([text], 2, 9);
  assert.ok(best.length < fast.length);
  assert.throws(() => new ParallelGzip({ level: 10 }), { code: 'USAGE' });
});

test('parallel gzip gives back each input chunk once it is done with it, and a chunk reused at once changes nothing', async () => {
  const text = Buffer.from('kiln layer writer, chunk reuse '.repeat(150_000)); // ~4.5 MiB
  const pieces = [text.subarray(0, 700_000), text.subarray(700_000, 2_900_000), text.subarray(2_900_000)].map((piece) => Buffer.from(piece));
  const released: Buffer[] = [];
  const gzip = new ParallelGzip({
    concurrency: 2,
    release: (chunk) => {
      released.push(chunk);
      chunk.fill(0x55); // as if the tar writer filled it anew straight away
    },
  });
  const chunks: Buffer[] = [];
  for await (const chunk of Readable.from(pieces).pipe(gzip)) chunks.push(chunk as Buffer);
  assert.deepEqual(gunzipSync(Buffer.concat(chunks)), text);
  assert.equal(released.length, pieces.length);
  released.forEach((chunk, i) => assert.ok(chunk === pieces[i], `chunk ${i} given back once, in order`));
  assert.deepEqual(Buffer.concat(chunks), await gzipWith([text], 1), 'the same bytes as without reuse');
});
