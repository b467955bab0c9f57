// A build tool run as a child process, timed from spawn to exit, with every output line
// stamped as it arrives: buildah prints no step times of its own, so the stamps are where its
// per-step times come from. Both streams are read; their interleaving is arrival order.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface TimedLine {
  /** Seconds since the process was spawned. */
  at: number;
  stream: 'stdout' | 'stderr';
  text: string;
}

export interface TimedRun {
  seconds: number;
  lines: TimedLine[];
}

export function runTimed(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<TimedRun> {
  const started = performance.now();
  const at = (): number => (performance.now() - started) / 1000;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: TimedLine[] = [];
    const closed = [child.stdout, child.stderr].map((input, i) => {
      const stream = i === 0 ? 'stdout' : 'stderr';
      const reader = createInterface({ input, crlfDelay: Infinity });
      reader.on('line', (text) => lines.push({ at: at(), stream, text }));
      return new Promise<void>((done) => reader.once('close', done));
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      const seconds = at();
      void Promise.all(closed).then(() => {
        if (code === 0) return resolve({ seconds, lines });
        const tail = lines.slice(-30).map((line) => line.text).join('\n');
        reject(new Error(`${command} ${args.join(' ')} exited with ${code ?? signal}:\n${tail}`));
      });
    });
  });
}
