// Base images take seconds to build, so they are kept between test runs in a directory keyed
// by everything that shapes their content. Each is built in a temp directory and renamed into
// place, so concurrent test processes either see a complete image or build their own copy.
import { mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

const STALE_MS = 60 * 60 * 1000;

export function cacheRoot(): string {
  return process.env.KILN_TEST_CACHE || '/var/tmp/kiln-test-images';
}

/**
 * Returns `cacheRoot()/name`, calling `build(target, scratch)` first if it is missing.
 * `build` must create `target` (which does not exist yet); `scratch` is removed afterwards.
 */
export async function cachedDirectory(
  name: string,
  build: (target: string, scratch: string) => Promise<void>,
): Promise<string> {
  const root = cacheRoot();
  const final = join(root, name);
  if (await exists(final)) return final;
  await mkdir(root, { recursive: true });
  await removeStaleScratch(root);
  const scratch = await mkdtemp(join(root, `.tmp-${name}-`));
  try {
    const target = join(scratch, 'out');
    await build(target, scratch);
    try {
      await rename(target, final);
    } catch (error) {
      // Another process finished first; its copy is as good as ours.
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
    }
    return final;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Scratch left by a test process that was killed mid-build. */
async function removeStaleScratch(root: string): Promise<void> {
  for (const entry of await readdir(root)) {
    if (!entry.startsWith('.tmp-')) continue;
    const path = join(root, entry);
    try {
      if (Date.now() - (await stat(path)).mtimeMs > STALE_MS) await rm(path, { recursive: true, force: true });
    } catch { /* another process removed it */ }
  }
}
