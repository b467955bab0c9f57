// Keeps one tool's cleanup from slowing the next tool's build. ext4 without a journal does not
// reuse an inode freed in the last 60 seconds — 360 while its inode-table block is dirty — and
// finds that out by looking at every such free inode on every file creation
// (fs/ext4/ialloc.c, recently_deleted). On this kind of machine, right after 40,000 files
// were deleted, creating 20,000 small files took 11.5 s of kernel time instead of about 0.6 s.
// A build that follows the deletion of the previous build's 100,000 files pays for that
// deletion, whichever tool made it; so on such a filesystem each build starts only once the
// last deletion is older than that window.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The kernel's longest window (RECENTCY_MIN + RECENTCY_DIRTY), and a little more. */
export const NO_JOURNAL_WINDOW_SECONDS = 365;

export class Settler {
  /** What ran before the bench is unknown: the first build waits too. */
  private lastDeletion = performance.now();

  private constructor(
    /** Seconds to leave between a deletion and the next build; 0 when nothing needs it. */
    readonly seconds: number,
    /** What the filesystem is, and so why (or why not) builds wait. */
    readonly reason: string,
  ) {}

  /** Waits only where `dir` is on ext4 without a journal, unless `seconds` says otherwise. */
  static forDirectory(dir: string, seconds?: number): Settler {
    const found = spawnSync('findmnt', ['-n', '-o', 'SOURCE,FSTYPE', '--target', dir], { encoding: 'utf8' }).stdout.trim();
    const [source = '', fsType = ''] = found.split(/\s+/);
    const noJournal = fsType === 'ext4' && journalTask(source) === '<none>';
    const reason = noJournal ? `ext4 without a journal (${source})` : `${fsType || 'unknown filesystem'}`;
    return new Settler(seconds ?? (noJournal ? NO_JOURNAL_WINDOW_SECONDS : 0), reason);
  }

  /** The tool under measurement, or its cleanup, has just deleted files. */
  deleted(): void {
    this.lastDeletion = performance.now();
  }

  /** Writes dirty pages back, then waits out the window; returns the seconds waited. */
  async settle(): Promise<number> {
    spawnSync('sync', [], { stdio: 'ignore' });
    const remaining = this.lastDeletion + this.seconds * 1000 - performance.now();
    if (remaining > 0) await sleep(remaining);
    return Math.max(0, remaining) / 1000;
  }
}

function journalTask(source: string): string {
  try {
    return readFileSync(`/sys/fs/ext4/${basename(source)}/journal_task`, 'utf8').trim();
  } catch {
    return '';
  }
}
