import { chown, mkdir } from 'node:fs/promises';
import { posix, relative } from 'node:path';
import type { WorkdirInstruction } from '../../dockerfile/index.js';
import type { ContainerConfig } from '../../oci/types.js';
import { resolveInRoot } from '../isolation/index.js';
import { resolveUser } from '../users.js';
import type { StepContext, StepOutcome } from './types.js';

/** The config after WORKDIR, without touching the filesystem (a cached step needs only this). */
export function workdirConfig(instruction: WorkdirInstruction, config: ContainerConfig): ContainerConfig {
  return { ...config, WorkingDir: posix.resolve(config.WorkingDir || '/', instruction.path) };
}

/** WORKDIR: relative paths build on the previous one; the directory is created when missing. */
export async function executeWorkdir(instruction: WorkdirInstruction, ctx: StepContext): Promise<StepOutcome> {
  const config = workdirConfig(instruction, ctx.config);
  const path = config.WorkingDir!;
  const target = await resolveInRoot(ctx.rootDir, path);
  const created = await mkdir(target.hostPath, { recursive: true, mode: 0o755 });
  if (created === undefined) return { config, effect: { kind: 'metadata' } };
  // Like BuildKit, a directory WORKDIR creates belongs to the current USER.
  const user = await resolveUser(ctx.rootDir, ctx.config.User ?? '');
  if (user.uid !== 0 || user.gid !== 0) {
    for (let dir = target.hostPath; dir.length >= created.length; dir = posix.dirname(dir)) await chown(dir, user.uid, user.gid);
  }
  // The first directory mkdir created: scanning it covers every new level below.
  return { config, effect: { kind: 'paths', paths: ['/' + relative(ctx.rootDir, created)] } };
}
