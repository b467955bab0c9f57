// Temp directories of the harness. A test process killed by a signal runs no exit hook, so
// each directory names its owner's PID, and the next harness run removes the ones whose
// owner is gone.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeOnExit } from './process.js';

const FAMILY = 'kiln-harness-';
const OWNER_FILE = '.owner-pid';

export interface TempDir {
  path: string;
  remove(): Promise<void>;
}

export async function makeTempDir(label: string): Promise<TempDir> {
  await sweepOrphans();
  const path = await mkdtemp(join(tmpdir(), `${FAMILY}${label}-`));
  await writeFile(join(path, OWNER_FILE), String(process.pid));
  const forget = removeOnExit(path);
  return {
    path,
    async remove() {
      await rm(path, { recursive: true, force: true });
      forget();
    },
  };
}

async function sweepOrphans(): Promise<void> {
  let entries: string[];
  try { entries = await readdir(tmpdir()); } catch { return; }
  for (const entry of entries) {
    if (!entry.startsWith(FAMILY)) continue;
    const path = join(tmpdir(), entry);
    let owner: number;
    try { owner = Number(await readFile(join(path, OWNER_FILE), 'utf8')); } catch { continue; }
    if (owner > 0 && !alive(owner)) await rm(path, { recursive: true, force: true }).catch(() => {});
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
