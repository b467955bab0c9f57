// Runs kiln's compiled command line the way a user or a pipeline does: a process of its own.
import { spawn } from 'node:child_process';
import { createReadStream, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The bundled CLI, as users and the executor image run it (see scripts/bundle.ts). */
export const KILN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'kiln.js');

export interface KilnRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface KilnRunOptions {
  /** Added to this process's environment. */
  env?: NodeJS.ProcessEnv;
  /** A file to pipe into kiln's stdin (`--context tar://stdin`); stdin is closed otherwise. */
  stdinFile?: string;
  /** Sends `signal` to kiln once its stderr so far matches `when` (a user pressing Ctrl-C). */
  interrupt?: { when: RegExp; signal: NodeJS.Signals };
}

export function runKiln(args: readonly string[], options: KilnRunOptions = {}): Promise<KilnRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [KILN, ...args], {
      stdio: [options.stdinFile ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...options.env },
    });
    if (options.stdinFile) createReadStream(options.stdinFile).pipe(child.stdin!);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (c: Buffer) => out.push(c));
    let interrupted = false;
    child.stderr!.on('data', (c: Buffer) => {
      err.push(c);
      const interrupt = options.interrupt;
      if (interrupt && !interrupted && interrupt.when.test(Buffer.concat(err).toString())) {
        interrupted = true;
        child.kill(interrupt.signal);
      }
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
  });
}

/** Writes (or rewrites) files of a build context under `dir`, creating directories; returns `dir`. */
export function writeContext(dir: string, files: Record<string, string>): string {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}
