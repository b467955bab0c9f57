import type { Writable } from 'node:stream';
import type { StageStep } from '../../dockerfile/index.js';
import type { ContainerConfig } from '../../oci/types.js';
import type { Logger } from '../../util/log.js';
import type { Isolation } from '../isolation/index.js';

/** What executing one instruction did to the root filesystem: the snapshotter's cue. */
export type CommandEffect =
  /** Only the image config changed: no snapshot, an empty-layer history entry. */
  | { kind: 'metadata' }
  /**
   * Exactly these image paths were written (COPY, ADD, WORKDIR, a RUN on an overlay): stat
   * only them and their subtrees, and `entries` without their subtrees.
   */
  | { kind: 'paths'; paths: string[]; entries?: string[] }
  /** A process ran: anything may have changed, walk the whole root. */
  | { kind: 'scan' };

/** What an instruction sees while it runs. */
export interface StepContext {
  step: StageStep;
  /** "Dockerfile:12", for messages. */
  where: string;
  rootDir: string;
  /** The image config so far; handlers return a new one rather than editing it. */
  config: ContainerConfig;
  isolation: Isolation;
  logger: Logger;
  /** Where a RUN's output goes (the build log). */
  output: { stdout: Writable; stderr: Writable };
  /** A RUN should have its isolation record what it changes (see RunSpec.recordChanges). */
  recordChanges?: boolean;
}

export interface StepOutcome {
  config: ContainerConfig;
  effect: CommandEffect;
  /** MAINTAINER sets the image's author. */
  author?: string;
}
