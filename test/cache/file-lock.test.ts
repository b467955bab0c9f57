import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { withFileLock } from '../../src/cache/file-lock.js';
import { isKilnError } from '../../src/util/errors.js';
import { withTempDir } from '../temp-dir.js';

const withDir = <T>(fn: (dir: string) => Promise<T>): Promise<T> => withTempDir('lock', fn);

test('holders of one lock file never overlap, and the lock is gone afterwards', () =>
  withDir(async (dir) => {
    const lock = join(dir, 'x.lock');
    let inside = 0;
    let most = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        withFileLock(lock, async () => {
          inside++;
          most = Math.max(most, inside);
          await sleep(2);
          order.push(i);
          inside--;
        }),
      ),
    );
    assert.equal(most, 1);
    assert.equal(order.length, 12);
    await assert.rejects(stat(lock), { code: 'ENOENT' });
  }));

test('the lock is released when the holder throws', () =>
  withDir(async (dir) => {
    const lock = join(dir, 'x.lock');
    await assert.rejects(withFileLock(lock, async () => { throw new Error('boom'); }), /boom/);
    assert.equal(await withFileLock(lock, async () => 'second'), 'second');
  }));

test('a stale lock left by a dead writer is taken over; a live one times out', () =>
  withDir(async (dir) => {
    const lock = join(dir, 'x.lock');
    await writeFile(lock, '99999\n');
    const old = new Date(Date.now() - 120_000);
    await utimes(lock, old, old);
    assert.equal(await withFileLock(lock, async () => 'taken', { staleMs: 60_000 }), 'taken');

    await writeFile(lock, '99999\n');
    await assert.rejects(withFileLock(lock, async () => 'never', { timeoutMs: 100, staleMs: 60_000 }), (err) => isKilnError(err, 'IO') && /x\.lock/.test(err.message));
  }));
