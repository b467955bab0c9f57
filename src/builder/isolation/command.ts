// What both isolations need before starting a RUN command: its environment as Node wants it,
// and its executable found inside the image the way Docker finds it.
import { lstat } from 'node:fs/promises';
import { posix } from 'node:path';
import { KilnError } from '../../util/errors.js';
import { absoluteImagePath, resolveInRoot } from './root-path.js';

/** Docker's PATH for a container whose environment sets none. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** `KEY=VALUE` entries as an object in their order; a later entry for a key wins. */
export function envObject(env: string[]): Record<string, string> {
  const result: Record<string, string> = {};
  for (const entry of env) {
    const at = entry.indexOf('=');
    if (at <= 0) throw new KilnError('RUN_FAILED', `The environment entry "${entry}" is not of the form KEY=VALUE.`);
    const key = entry.slice(0, at);
    delete result[key];
    result[key] = entry.slice(at + 1);
  }
  return result;
}

/**
 * The image path to execute for `argv0`: a name without a slash is searched in the PATH of
 * `env` (Docker's default PATH when it sets none), any other path is taken from `cwd`. The
 * unresolved path is returned so that a busybox-style applet link keeps its name.
 */
export async function findExecutable(rootDir: string, argv0: string, env: Record<string, string>, cwd: string): Promise<string> {
  if (argv0 === '') throw new KilnError('RUN_FAILED', 'The command to run is empty.');
  if (argv0.includes('/')) {
    const path = absoluteImagePath(argv0, cwd);
    if (await isExecutableFile(rootDir, path)) return path;
    throw new KilnError('RUN_FAILED', `The executable ${argv0} was not found in the image (or is not an executable file).`);
  }
  const searchPath = env.PATH ?? DEFAULT_PATH;
  for (const dir of searchPath.split(':')) {
    const path = absoluteImagePath(posix.join(dir === '' ? '.' : dir, argv0), cwd);
    if (await isExecutableFile(rootDir, path)) return path;
  }
  throw new KilnError('RUN_FAILED', `The executable ${argv0} was not found in the image's PATH (${searchPath}).`);
}

async function isExecutableFile(rootDir: string, imagePath: string): Promise<boolean> {
  const { hostPath } = await resolveInRoot(rootDir, imagePath);
  const stats = await lstat(hostPath).catch(() => undefined);
  return stats !== undefined && stats.isFile() && (stats.mode & 0o111) !== 0;
}
