import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runScriptOf, type RunInstruction } from '../../dockerfile/index.js';
import { KilnError } from '../../util/errors.js';
import { runCommand, type RunResult } from '../isolation/index.js';
import { resolveUser } from '../users.js';
import { atLine } from './located.js';
import { shellOf } from './metadata.js';
import type { StepContext, StepOutcome } from './types.js';

/** RUN: the command as the image's USER, in its WORKDIR, with the step's environment. */
export async function executeRun(instruction: RunInstruction, ctx: StepContext): Promise<StepOutcome> {
  if (instruction.mounts.length > 0) {
    throw new KilnError('DOCKERFILE', `${ctx.where}: RUN --mount is not supported by kiln yet; copy what the step needs with COPY instead.`);
  }
  const user = await resolveUser(ctx.rootDir, ctx.config.User ?? '').catch((err: unknown) => { throw atLine(err, ctx.where); });
  // HOME from the user's passwd entry unless ENV or ARG set it, as runc (under BuildKit) and kaniko do.
  const env = [...ctx.step.processEnv];
  if (!env.some((entry) => entry.startsWith('HOME='))) env.push(`HOME=${user.home}`);
  const script = runScriptOf(instruction);
  let argv: string[];
  let scriptFile: string | undefined;
  if (script.kind === 'exec') {
    argv = script.args;
  } else if (script.kind === 'shell') {
    argv = [...shellOf(ctx.config), script.script];
  } else {
    // A heredoc with a #! line runs as its own executable; it lives in the root only while it runs.
    const name = `.kiln-run-${randomBytes(6).toString('hex')}`;
    scriptFile = join(ctx.rootDir, name);
    await writeFile(scriptFile, script.content, { mode: 0o755 });
    argv = [...shellOf(ctx.config), `/${name}`];
  }
  let result: RunResult;
  try {
    result = await runCommand(ctx.isolation, {
      rootDir: ctx.rootDir,
      argv,
      env,
      cwd: ctx.config.WorkingDir || '/',
      user,
      stdout: ctx.output.stdout,
      stderr: ctx.output.stderr,
      logger: ctx.logger,
      recordChanges: ctx.recordChanges,
    }).catch((err: unknown) => {
      throw atLine(err, ctx.where);
    });
    if (result.kind === 'signaled') {
      throw new KilnError('RUN_FAILED', `${ctx.where}: RUN was killed by ${result.signal}: ${abbreviate(instruction.original)}`);
    }
    if (result.code !== 0) {
      throw new KilnError('RUN_FAILED', `${ctx.where}: RUN exited with code ${result.code}: ${abbreviate(instruction.original)}`);
    }
  } finally {
    if (scriptFile) await rm(scriptFile, { force: true });
  }
  const changes = result.kind === 'exited' ? result.changes : undefined;
  return { config: ctx.config, effect: changes ? { kind: 'paths', paths: changes.subtrees, entries: changes.entries } : { kind: 'scan' } };
}

function abbreviate(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > 120 ? oneLine.slice(0, 117) + '...' : oneLine;
}
