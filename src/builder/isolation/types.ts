import type { Writable } from 'node:stream';
import type { Logger } from '../../util/log.js';

/** The identity a RUN command runs as, numeric as in the image (see `resolveUser`). */
export interface RunUser {
  uid: number;
  gid: number;
  /** Supplementary groups; the primary `gid` need not be listed. */
  groups: number[];
}

export interface RunSpec {
  /** The image's root directory on the host; `/` for the `none` isolation. */
  rootDir: string;
  /** The command; `argv[0]` without a slash is looked up in the `PATH` of `env`. */
  argv: string[];
  /** `KEY=VALUE` entries: exactly the command's environment, nothing of kiln's is added. */
  env: string[];
  /** Working directory inside the image; created, owned by `user`, when missing. */
  cwd: string;
  user: RunUser;
  stdout: Writable;
  stderr: Writable;
  logger: Logger;
  /**
   * Record what the command changes (RunResult.changes) where the isolation can: the root
   * is large enough that walking it afterwards would cost more. Running on an overlay makes
   * each file the command writes dearer (about half as much again on ext4 and tmpfs), so a
   * small root is rather walked.
   */
  recordChanges?: boolean;
}

/**
 * What a command changed, image paths, when the isolation saw it write (on an overlay):
 * `subtrees` are new, replaced or deleted, everything below them included; `entries` are
 * single paths, directories among them changed only in what the lists name below them.
 */
export interface RunChanges {
  subtrees: string[];
  entries: string[];
}

/** `changes` only when the command exited 0 and the isolation knows them; otherwise the root must be walked. */
export type RunResult = { kind: 'exited'; code: number; changes?: RunChanges } | { kind: 'signaled'; signal: string };

export type IsolationKind = 'none' | 'chroot';

/** How a RUN command is started; everything else about a build is the same in each mode. */
export interface Isolation {
  readonly kind: IsolationKind;
  run(spec: RunSpec): Promise<RunResult>;
}
