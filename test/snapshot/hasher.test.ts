import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import xxhash from 'xxhash-wasm';
import { recordFromStats, type FileRecord } from '../../src/snapshot/file-index.js';
import {
  ContentHasher,
  createChangeDetector,
  kindOfMode,
  recordOfEntry,
  statMatches,
  withContentHash,
  type SnapshotMode,
  type Verdict,
} from '../../src/snapshot/hasher.js';
import type { WalkEntry } from '../../src/snapshot/walk.js';

const MODES: readonly SnapshotMode[] = ['full', 'redo', 'time'];

function entry(fsPath: string): WalkEntry {
  const stats = lstatSync(fsPath);
  return stats.isSymbolicLink() ? { path: fsPath, fsPath, stats, linkTarget: execFileSync('readlink', [fsPath]).toString().trim() } : { path: fsPath, fsPath, stats };
}

/** A record as the extractor leaves it: lstat plus the content hash. */
async function extracted(fsPath: string): Promise<FileRecord> {
  const hasher = await ContentHasher.create();
  const seen = entry(fsPath);
  return recordOfEntry(seen, kindOfMode(seen.stats.mode) === 'file' ? hasher.hashFile(fsPath) : undefined);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function verdicts(fsPath: string, change: () => void, old?: FileRecord): Promise<Record<SnapshotMode, Verdict['outcome']>> {
  const before = old ?? (await extracted(fsPath));
  await sleep(15); // past one tick of the filesystem clock
  change();
  const result = {} as Record<SnapshotMode, Verdict['outcome']>;
  for (const mode of MODES) result[mode] = (await createChangeDetector(mode)).detect(before, entry(fsPath), 'trusted').outcome;
  return result;
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'kiln-hasher-'));
}

test('content hashes: one read for small files, streaming for big ones, same result as one-shot xxh64', async () => {
  const dir = tempDir();
  try {
    const api = await xxhash();
    const hasher = await ContentHasher.create();
    const big = Buffer.alloc(3 * (1 << 20) + 12345);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) & 0xff;
    for (const [name, content] of [['empty', Buffer.alloc(0)], ['small', Buffer.from('hello\n')], ['exact', big.subarray(0, 1 << 20)], ['big', big]] as const) {
      writeFileSync(join(dir, name), content);
      const expected = api.h64Raw(content).toString(16).padStart(16, '0');
      assert.equal(hasher.hashFile(join(dir, name)), expected, name);
      assert.equal(hasher.hashBytes(content), expected, name);
      assert.match(expected, /^[0-9a-f]{16}$/);
    }
    assert.throws(() => hasher.hashFile(join(dir, 'missing')), (err: Error & { code?: string }) => err.code === 'IO');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('kindOfMode and recordOfEntry agree with file-index on every kind', () => {
  const dir = tempDir();
  try {
    writeFileSync(join(dir, 'file'), 'x');
    mkdirSync(join(dir, 'dir'));
    symlinkSync('file', join(dir, 'link'));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    for (const path of [join(dir, 'file'), join(dir, 'dir'), join(dir, 'link'), join(dir, 'fifo'), '/dev/null']) {
      const seen = entry(path);
      const stats = lstatSync(path);
      const expected = stats.isFile() ? 'file' : stats.isDirectory() ? 'dir' : stats.isSymbolicLink() ? 'symlink' : stats.isFIFO() ? 'fifo' : stats.isCharacterDevice() ? 'char' : 'other';
      assert.equal(kindOfMode(stats.mode), expected, path);
      assert.deepEqual(recordOfEntry(seen, 'abc'), recordFromStats(stats, seen.linkTarget, 'abc'), path);
      assert.ok(statMatches(recordOfEntry(seen), stats, seen.linkTarget), path);
      // Same fields in the same order: records share object shapes, whoever made them.
      const hashed = withContentHash(recordOfEntry(seen), 'abc');
      assert.deepEqual(hashed, recordOfEntry(seen, 'abc'), path);
      assert.deepEqual(Object.keys(hashed), Object.keys(recordFromStats(stats, seen.linkTarget, 'abc')), path);
    }
    assert.equal(recordOfEntry(entry('/dev/null')).rdev, lstatSync('/dev/null').rdev);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('nothing moved: every mode says same, without reading content', async () => {
  const dir = tempDir();
  try {
    writeFileSync(join(dir, 'f'), 'content');
    const old = await extracted(join(dir, 'f'));
    for (const mode of MODES) {
      const detector = await createChangeDetector(mode);
      assert.equal(detector.detect(old, entry(join(dir, 'f')), 'trusted').outcome, 'same', mode);
      assert.equal(detector.filesRead, 0, mode);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('touch without an edit: a change for redo and time, not for full', async () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'f');
    writeFileSync(path, 'content');
    const result = await verdicts(path, () => utimesSync(path, new Date(), new Date(Date.now() + 60_000)));
    assert.deepEqual(result, { full: 'refreshed', redo: 'changed', time: 'changed' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an edit that keeps size and mtime: full catches it through ctime; redo and time miss it (documented)', async () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'f');
    writeFileSync(path, 'version 1');
    // Whole seconds, so that putting the mtime back is exact.
    utimesSync(path, 1_700_000_000, 1_700_000_000);
    const before = lstatSync(path);
    const result = await verdicts(path, () => {
      writeFileSync(path, 'version 2');
      utimesSync(path, 1_700_000_000, 1_700_000_000);
    });
    assert.equal(lstatSync(path).mtimeMs, before.mtimeMs);
    assert.deepEqual(result, { full: 'changed', redo: 'refreshed', time: 'refreshed' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an edit that changes the size is a change everywhere; full does not need to read it', async () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'f');
    writeFileSync(path, 'short');
    const old = await extracted(path);
    await sleep(15);
    writeFileSync(path, 'much longer');
    const detector = await createChangeDetector('full');
    const verdict = detector.detect(old, entry(path), 'trusted');
    assert.equal(verdict.outcome, 'changed');
    assert.equal(detector.filesRead, 0);
    assert.equal((verdict as { record: FileRecord }).record.contentHash, undefined, 'the layer writer supplies the new hash');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('chmod and chown: full and redo see them, time misses them (documented)', async () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'f');
    writeFileSync(path, 'x');
    assert.deepEqual(await verdicts(path, () => chmodSync(path, 0o4755)), { full: 'changed', redo: 'changed', time: 'refreshed' });
    if (process.getuid?.() === 0) {
      assert.deepEqual(await verdicts(path, () => chownSync(path, 1234, 5678)), { full: 'changed', redo: 'changed', time: 'refreshed' });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a directory whose entries changed: not a change in full mode, a change for redo and time', async () => {
  const dir = tempDir();
  try {
    const sub = join(dir, 'sub');
    mkdirSync(sub);
    assert.deepEqual(await verdicts(sub, () => writeFileSync(join(sub, 'new'), 'x')), { full: 'refreshed', redo: 'changed', time: 'changed' });
    assert.deepEqual(await verdicts(sub, () => chmodSync(sub, 0o700)), { full: 'changed', redo: 'changed', time: 'refreshed' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a symlink pointed elsewhere and a file replaced by a directory are changes everywhere', async () => {
  const dir = tempDir();
  try {
    const link = join(dir, 'link');
    symlinkSync('a', link);
    const retarget = () => {
      rmSync(link);
      symlinkSync('b', link);
    };
    assert.deepEqual(await verdicts(link, retarget), { full: 'changed', redo: 'changed', time: 'changed' });
    const path = join(dir, 'f');
    writeFileSync(path, 'x');
    const toDir = () => {
      rmSync(path);
      mkdirSync(path);
    };
    assert.deepEqual(await verdicts(path, toDir), { full: 'changed', redo: 'changed', time: 'changed' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('full mode: a moved file without a content hash counts as changed; a rewritten identical file does not', async () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'f');
    writeFileSync(path, 'same');
    const withoutHash = recordOfEntry(entry(path));
    assert.equal((await verdicts(path, () => utimesSync(path, new Date(), new Date(Date.now() + 5000)), withoutHash)).full, 'changed');
    const rewrite = () => {
      rmSync(path);
      writeFileSync(path, 'same');
    };
    assert.equal((await verdicts(path, rewrite)).full, 'refreshed');
    const refreshed = (await createChangeDetector('full')).detect(withoutHash, entry(path), 'trusted');
    assert.equal(refreshed.outcome, 'changed');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a racy record is checked by content in full mode even when every field matches', async () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'f');
    writeFileSync(path, 'now');
    const seen = entry(path);
    // The same lstat, but content that was different when the record was taken.
    const old = recordOfEntry(seen, 'ffffffffffffffff');
    const detector = await createChangeDetector('full');
    assert.equal(detector.detect(old, seen, 'trusted').outcome, 'same');
    const verdict = detector.detect(old, seen, 'racy');
    assert.equal(verdict.outcome, 'changed');
    assert.equal((verdict as { record: FileRecord }).record.contentHash, (await ContentHasher.create()).hashBytes(readFileSync(path)));
    const right = recordOfEntry(seen, (await ContentHasher.create()).hashFile(path));
    assert.equal(detector.detect(right, seen, 'racy').outcome, 'same');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
