// The `none` isolation, kaniko's model: kiln's executor owns its container, the image is
// extracted into `/`, and a RUN command is started directly, without namespaces.
//
// Like kaniko, the command gets a process group of its own, and the group is killed when the
// command exits, so that processes it left running in the background end with the step.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { resolve } from 'node:path';
import { KilnError, describeError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { envObject, findExecutable } from './command.js';
import { hostTool } from './host-tools.js';
import { forward } from './output.js';
import type { Isolation, RunResult, RunSpec, RunUser } from './types.js';
import { ensureWorkdir } from './workdir.js';

/**
 * How long the output of an exited command may stay open: only a process that left the
 * command's process group and kept its stdout holds it longer, and its output is dropped.
 */
const OUTPUT_GRACE_MS = 2000;

export function noneIsolation(): Isolation {
  return { kind: 'none', run: runDirect };
}

async function runDirect(spec: RunSpec): Promise<RunResult> {
  if (resolve(spec.rootDir) !== '/') {
    throw new KilnError('ISOLATION', `The none isolation runs commands in / only, not in ${spec.rootDir}.`);
  }
  checkIdentity(spec.user);
  const env = envObject(spec.env);
  const workdir = await ensureWorkdir('/', spec.cwd, process.getuid?.() === 0 ? spec.user : undefined);
  const executable = await findExecutable('/', spec.argv[0] ?? '', env, workdir.imagePath);
  const options: SpawnOptions = { cwd: workdir.hostPath, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true };
  spec.logger.debug({ isolation: 'none', argv: spec.argv, user: spec.user, cwd: spec.cwd }, 'running a command');

  let child: ChildProcess;
  if (spec.user.groups.length > 0) {
    // Node can set uid and gid but clears supplementary groups; setpriv sets all three.
    const identity = ['--reuid', String(spec.user.uid), '--regid', String(spec.user.gid), '--groups', spec.user.groups.join(',')];
    child = spawn(hostTool('setpriv'), [...identity, '--', executable, ...spec.argv.slice(1)], options);
  } else {
    child = spawn(executable, spec.argv.slice(1), { ...options, argv0: spec.argv[0], uid: spec.user.uid, gid: spec.user.gid });
  }
  forward(child.stdout!, spec.stdout);
  forward(child.stderr!, spec.stderr);
  return await waitFor(child, executable, spec.logger);
}

/** Without root, kiln can run commands only as itself. */
function checkIdentity(user: RunUser): void {
  if (process.getuid?.() === 0) return;
  if (user.uid === process.getuid?.() && user.gid === process.getgid?.() && user.groups.length === 0) return;
  throw new KilnError('ISOLATION', `Running a command as ${user.uid}:${user.gid} needs kiln to run as root.`);
}

function waitFor(child: ChildProcess, executable: string, logger: Logger): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    let result: RunResult | undefined;
    let grace: NodeJS.Timeout | undefined;
    child.on('error', (error) => {
      clearTimeout(grace);
      reject(new KilnError('RUN_FAILED', `Cannot start ${executable}: ${describeError(error)}.`, { cause: error }));
    });
    child.on('exit', (code, signal) => {
      result = signal ? { kind: 'signaled', signal } : { kind: 'exited', code: code ?? 0 };
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* the group is already gone */ }
      grace = setTimeout(() => {
        logger.warn({ executable }, 'a background process of the command still holds its output; the rest of it is dropped');
        child.stdout?.destroy();
        child.stderr?.destroy();
      }, OUTPUT_GRACE_MS);
      grace.unref();
    });
    child.on('close', () => {
      clearTimeout(grace);
      if (result) resolvePromise(result);
    });
  });
}
