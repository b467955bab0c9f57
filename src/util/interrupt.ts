import { constants } from 'node:os';

/** The signals that stop a build: Ctrl-C, a cancelled CI job, a pod being stopped, a closed terminal. */
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Synchronous: nothing else of kiln runs between a task and the exit. */
type Task = () => void;

const tasks = new Set<Task>();
let installed = false;

/**
 * Runs `task` if kiln is stopped by a signal before the returned function is called. Node
 * would otherwise exit on the spot and leave kiln's work directory behind. kiln exits once
 * every task has run, with 128 + the signal's number as a shell reports it.
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
  for (const signal of SIGNALS) process.once(signal, () => interrupted(signal));
}

function interrupted(signal: (typeof SIGNALS)[number]): void {
  process.stderr.write(`kiln: error: stopped by ${signal}; the build did not finish.\n`);
  for (const task of tasks) {
    try {
      task();
    } catch {
      // The exit matters more than one task's failure.
    }
  }
  process.exit(128 + constants.signals[signal]);
}
