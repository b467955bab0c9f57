import { open, stat, unlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { KilnError, describeError } from '../util/errors.js';

export interface FileLockOptions {
  /** Give up waiting after this long. */
  timeoutMs?: number;
  /**
   * A lock file older than this was left by a writer that died: it is removed. Holders keep
   * the lock for milliseconds, so a minute is far beyond any live holder.
   */
  staleMs?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_STALE_MS = 60_000;
const MIN_WAIT_MS = 2;
const MAX_WAIT_MS = 50;

/**
 * Runs `fn` while holding the lock file at `path`, created with O_EXCL so that exactly one
 * process (or one caller in this process) holds it at a time, on any local filesystem and on
 * NFSv3+. Waiters poll with a growing, jittered delay.
 */
export async function withFileLock<T>(path: string, fn: () => Promise<T>, options: FileLockOptions = {}): Promise<T> {
  await acquire(path, options.timeoutMs ?? DEFAULT_TIMEOUT_MS, options.staleMs ?? DEFAULT_STALE_MS);
  try {
    return await fn();
  } finally {
    await unlink(path).catch(() => undefined);
  }
}

async function acquire(path: string, timeoutMs: number, staleMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(`${process.pid}\n`).finally(() => handle.close());
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new KilnError('IO', `Cannot create the lock file ${path}: ${describeError(err)}.`, { cause: err });
      }
    }
    const held = await stat(path).catch(() => undefined);
    if (held && Date.now() - held.mtimeMs > staleMs) {
      await unlink(path).catch(() => undefined);
      continue;
    }
    if (Date.now() >= deadline) {
      throw new KilnError('IO', `Another writer has held the lock file ${path} for more than ${Math.round(timeoutMs / 1000)} s; remove it if no kiln is running.`);
    }
    const ceiling = Math.min(MAX_WAIT_MS, MIN_WAIT_MS << Math.min(attempt, 5));
    await sleep(MIN_WAIT_MS + Math.random() * ceiling);
  }
}
