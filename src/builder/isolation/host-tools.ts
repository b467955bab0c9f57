// The util-linux programs the isolations start. They are looked up once, on the host, by
// absolute path: the processes that run them get the command's environment, not kiln's.
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { KilnError } from '../../util/errors.js';

export type HostTool = 'unshare' | 'setpriv' | 'nsenter' | 'mount';

/** sbin directories are searched too: a non-root user's PATH often lacks them. */
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

const found = new Map<HostTool, string>();

export function hostTool(name: HostTool): string {
  const cached = found.get(name);
  if (cached) return cached;
  const dirs = [...(process.env.PATH ?? '').split(':').filter((dir) => dir.startsWith('/')), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      found.set(name, path);
      return path;
    } catch {
      // not in this directory
    }
  }
  throw new KilnError('ISOLATION', `Cannot find ${name} on this machine; install util-linux to run RUN commands.`);
}
