import { chown, mkdir } from 'node:fs/promises';
import { posix, relative } from 'node:path';
import type { WorkdirInstruction } from '../../dockerfile/index.js';
import { resolveInRoot } from '../isolation/index.js';
import { resolveUser } from '../users.js';
import type { StepContext, StepOutcome } from './types.js';

/** WORKDIR: relative paths build on the previous one; the directory is created when missing. */
export async function executeWorkdir(instruction: WorkdirInstruction, ctx: StepContext): Promise<StepOutcome> {
  const path = posix.resolve(ctx.config.WorkingDir || '/', instruction.path);
  const config = { ...ctx.config, WorkingDir: path };
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
