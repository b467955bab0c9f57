// Child processes of the harness: one-shot tools (openssl, skopeo, umoci) and long-running
// servers (docker-registry). Servers are stopped by their PID. Two guards keep a registry from
// outliving a test process that crashed or was killed: an exit hook, and a parent-death signal
// set with util-linux's setpriv, which then execs the server under the same PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

export interface RunResult {
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string | Buffer;
  /** Text replaced by `***` in error messages (passwords passed on a command line). */
  secrets?: string[];
}

/** Runs a tool to completion; rejects with its stderr when it exits non-zero. */
export function run(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    if (options.input !== undefined) child.stdin!.end(options.input);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (code === 0) return resolve({ stdout, stderr });
      const shown = redact([command, ...args].join(' '), options.secrets);
      const error = new Error(
        `${shown} exited with ${code ?? signal}: ${redact(stderr.trim() || stdout.trim(), options.secrets)}`,
      ) as Error & RunResult & { exitCode: number | null };
      error.stdout = stdout;
      error.stderr = stderr;
      error.exitCode = code;
      reject(error);
    });
  });
}

function redact(text: string, secrets: string[] | undefined): string {
  let result = text;
  for (const secret of secrets ?? []) if (secret) result = result.split(secret).join('***');
  return result;
}

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) if (child.pid !== undefined) try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
    for (const dir of tempDirs) try { rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ }
  });
}

/** Removes `dir` when the test process exits without having removed it; call the result once it has. */
export function removeOnExit(dir: string): () => void {
  installExitHook();
  tempDirs.add(dir);
  return () => tempDirs.delete(dir);
}

/** Starts a long-running server process and remembers it until it exits. */
export function spawnServer(command: string, args: string[], cwd?: string): ChildProcess {
  installExitHook();
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', command, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  child.on('exit', () => live.delete(child));
  return child;
}

/** SIGTERM by PID, SIGKILL if it has not exited after `graceMs`; resolves once it has exited. */
export async function stopProcess(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const pid = child.pid;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try { process.kill(pid, 'SIGTERM'); } catch { return; }
  const timer = setTimeout(() => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }, graceMs);
  await exited;
  clearTimeout(timer);
}
