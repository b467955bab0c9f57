import { constants } from 'node:os';

/** The signals that stop a build: Ctrl-C, a cancelled CI job, a pod being stopped, a closed terminal. */
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

type Task = () => Promise<void> | void;

const tasks = new Set<Task>();
let installed = false;

/**
 * Runs `task` if kiln is stopped by a signal before the returned function is called. Node
 * would otherwise exit on the spot and leave kiln's work directory behind. kiln exits once
 * every task has settled, with 128 + the signal's number as a shell reports it; a second
 * signal meanwhile ends it at once.
 */
export function onInterrupt(task: Task): () => void {
  install();
  tasks.add(task);
  return () => {
    tasks.delete(task);
  };
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const signal of SIGNALS) process.once(signal, () => void interrupted(signal));
}

async function interrupted(signal: (typeof SIGNALS)[number]): Promise<void> {
  // The other handlers go too: another signal now takes node's default, an immediate exit.
  for (const other of SIGNALS) process.removeAllListeners(other);
  process.stderr.write(`kiln: error: stopped by ${signal}; the build did not finish.\n`);
  await Promise.allSettled([...tasks].map(async (task) => task()));
  process.exit(128 + constants.signals[signal]);
}
