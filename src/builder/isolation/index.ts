// How kiln starts a RUN command: `none` inside kiln's executor image (kaniko's model), or
// `chroot` into a root directory anywhere else. See ARCHITECTURE.md, "Isolation".
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chrootIsolation } from './chroot.js';
import { noneIsolation } from './none.js';
import type { Isolation, RunResult, RunSpec } from './types.js';

export type { Isolation, IsolationKind, RunResult, RunSpec, RunUser } from './types.js';
export { chrootIsolation, type ChrootOptions } from './chroot.js';
export { noneIsolation } from './none.js';
export { resolveInRoot, type RootPath } from './root-path.js';
export { DEFAULT_PATH } from './command.js';

/** The file kiln's executor image carries in its kaniko directory. */
export const EXECUTOR_MARKER = '.kiln-executor';

/**
 * `none` only inside kiln's executor image, where the marker file says that `/` is the
 * build's to overwrite; everywhere else `chroot`, so a workstation's `/` is never touched.
 */
export function defaultIsolation(options: { kanikoDir: string }): Isolation {
  return existsSync(join(options.kanikoDir, EXECUTOR_MARKER)) ? noneIsolation() : chrootIsolation();
}

/** Runs one command to its end; output streams to `spec.stdout` and `spec.stderr` as it comes. */
export function runCommand(isolation: Isolation, spec: RunSpec): Promise<RunResult> {
  return isolation.run(spec);
}
