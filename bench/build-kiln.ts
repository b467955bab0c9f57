// kiln's CLI (dist/kiln.js, bundled) as a build benchmark runs it: `kiln build` in a child process,
// timed from spawn to exit, with `--log-format json` at debug level. kiln's own records give
// the times: its build summary (each step, each phase), its progress records (extractions,
// the push) and its debug records, which split a step's snapshot into the scan that found its
// changes and the write of its layer. kiln leaves deleting its work directory to a process
// of its own (src/util/discard.ts); the bench waits for that to finish, and reports how long
// it took, before anything else runs, so that the deletion never slows the next build.
import { readdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runTimed } from './build-process.js';
import { DISCARDED_PREFIX } from '../src/util/discard.js';

/** kiln's CLI in this build's output. */
export const KILN = join(dirname(fileURLToPath(import.meta.url)), '../kiln.js');

export interface KilnBuildOptions {
  contextDir: string;
  dockerfile: string;
  destination: string;
  /** kiln's `--root-dir`: stage roots and layers are written there. */
  workDir: string;
  /** A registry reached over plain HTTP, for pulls and pushes. */
  insecureRegistry: string;
  snapshotMode?: 'full' | 'redo' | 'time';
  /** More `kiln build` flags, e.g. `--cache`. */
  extraArgs?: string[];
}

export interface KilnStep {
  stage: number;
  text: string;
  /** The whole step, as kiln reports it. */
  seconds: number;
  /** Extracting the stage's root, which kiln does when the first step that needs it runs. */
  extractSeconds: number;
  /** Finding the step's changes (a walk of the root after RUN, the copied paths after COPY). */
  scanSeconds: number;
  /** Writing (and compressing) the step's layer. */
  layerSeconds: number;
  /** The rest: the command itself for RUN (start-up, run, teardown), the copy for COPY. */
  commandSeconds: number;
  /** kiln took the step's layer from its cache. */
  cached: boolean;
}

export interface KilnBuildRun {
  /** Spawn to exit. */
  seconds: number;
  digest: string;
  /** Node's start-up, the Dockerfile and the base's manifest and config, up to the first step. */
  startSeconds: number;
  /** Every root extraction, within steps or before them. */
  extractSeconds: number;
  steps: KilnStep[];
  /** Between the end of the last step and the start of the push (stage roots removed). */
  afterStepsSeconds: number;
  pushSeconds: number;
  /** After the push until the process exited (the summary logged, the work directory handed to its deleter). */
  exitSeconds: number;
  /** After the exit, until kiln's background deletion of its work directory finished. */
  discardSeconds: number;
  /** kiln's own seconds per phase (plan, pull, run, snapshot, push), from its summary. */
  phases: Record<string, number>;
  /** Cache hits and misses from kiln's summary; null when the build ran without --cache. */
  cache: { hits: number; misses: number } | null;
  /** Layer bytes kiln downloaded (base, cached layers) and uploaded, from its summary. */
  pulledBytes: number;
  pushedBytes: number;
  /** Blobs put in place at the destination, by how, from its summary. */
  blobs: { uploaded: number; mounted: number; existing: number };
  /** Every JSON record kiln logged, with when its line arrived (seconds since spawn). */
  records: { at: number; record: LogRecord }[];
}

export interface LogRecord {
  time: number;
  level?: number;
  msg: string;
  ms?: number;
  progress?: { phase: string; state: string; seconds?: number };
  summary?: {
    seconds: number;
    steps: { stage: number; seconds: number; cached: boolean | null }[];
    phases: Record<string, number>;
    cache?: { hits: number; misses: number } | null;
    pulledBytes?: number;
    pushedBytes?: number;
    blobs?: { uploaded: number; mounted: number; existing: number };
  };
  [field: string]: unknown;
}

export async function kilnBuild(options: KilnBuildOptions): Promise<KilnBuildRun> {
  await mkdir(options.workDir, { recursive: true });
  const args = [
    KILN, 'build',
    '--context', options.contextDir, '--dockerfile', options.dockerfile, '--destination', options.destination,
    '--insecure-registry', options.insecureRegistry,
    '--snapshot-mode', options.snapshotMode ?? 'full', '--isolation', 'chroot', '--root-dir', options.workDir,
    '--log-format', 'json', '--log-timestamp', '--verbosity', 'debug',
    ...(options.extraArgs ?? []),
  ];
  const result = await runTimed(process.execPath, args);
  const discardSeconds = await discardsFinished(options.workDir);
  // RUN commands' output shares stderr with the records: whatever does not parse is theirs.
  const parsed = result.lines.flatMap((line) => {
    if (line.stream !== 'stderr' || !line.text.startsWith('{')) return [];
    try {
      return [{ at: line.at, record: JSON.parse(line.text) as LogRecord }];
    } catch {
      return [];
    }
  });
  const records = parsed.map((entry) => entry.record);
  const digest = result.lines.find((line) => line.stream === 'stdout' && line.text.startsWith('sha256:'))?.text ?? '';
  // The epoch ms of the spawn, from the first record's time and the moment its line arrived.
  const first = parsed[0];
  const spawnedAt = first ? first.record.time - first.at * 1000 : Date.now() - result.seconds * 1000;
  return { seconds: result.seconds, digest, records: parsed, discardSeconds, ...phasesOf(records, spawnedAt, result.seconds) };
}

/** Seconds until no tree kiln discarded under `dir` is left (at most a few minutes). */
async function discardsFinished(dir: string): Promise<number> {
  const started = performance.now();
  const pending = () => readdirSync(dir).some((name) => name.startsWith(DISCARDED_PREFIX));
  for (let waited = 0; pending() && waited < 300_000; waited += 50) await sleep(50);
  return (performance.now() - started) / 1000;
}

function phasesOf(records: LogRecord[], spawnedAt: number, totalSeconds: number): Omit<KilnBuildRun, 'seconds' | 'digest' | 'records' | 'discardSeconds'> {
  const summary = records.find((record) => record.summary)?.summary;
  if (!summary) throw new Error('kiln logged no build summary');
  let pushStart: number | undefined;
  let pushEnd: number | undefined;
  let pushSeconds = 0;
  let extractSeconds = 0;
  let firstExtractStart = Infinity;
  // Each STEP line opens a step; extractions, scans and layer writes logged before the next
  // one are its own.
  interface Open { stage: number; text: string; start: number; extractMs: number; scanMs: number; layerMs: number }
  const opened: Open[] = [];
  for (const record of records) {
    const step = /^STEP \d+\/\d+ of stage (\d+)[^:]*: (.*)$/s.exec(record.msg);
    const current = opened.at(-1);
    const { phase, state, seconds = 0 } = record.progress ?? {};
    if (step) opened.push({ stage: Number(step[1]), text: step[2]!, start: record.time, extractMs: 0, scanMs: 0, layerMs: 0 });
    else if (phase === 'extract' && state === 'end') {
      extractSeconds += seconds;
      firstExtractStart = Math.min(firstExtractStart, record.time - seconds * 1000);
      if (current) current.extractMs += seconds * 1000;
    } else if (phase === 'push' && state === 'start') pushStart ??= record.time;
    else if (phase === 'push' && state === 'end') {
      pushEnd = record.time;
      pushSeconds += seconds;
    } else if (!current) continue;
    else if (record.msg === 'snapshot scan done') current.scanMs += record.ms ?? 0;
    else if (record.msg === 'Layer written') current.layerMs += record.ms ?? 0;
  }
  const steps: KilnStep[] = opened.map((step) => {
    const nth = opened.filter((o) => o.stage === step.stage).indexOf(step);
    const summed = summary.steps.filter((s) => s.stage === step.stage)[nth];
    const seconds = summed?.seconds ?? 0;
    const [extract, scan, layer] = [step.extractMs / 1000, step.scanMs / 1000, step.layerMs / 1000];
    return {
      stage: step.stage, text: step.text, seconds, extractSeconds: extract, scanSeconds: scan, layerSeconds: layer,
      commandSeconds: Math.max(0, seconds - extract - scan - layer), cached: summed?.cached === true,
    };
  });

  const firstStep = Math.min(firstExtractStart, opened[0]?.start ?? Infinity);
  const stepsStart = Number.isFinite(firstStep) ? firstStep : spawnedAt;
  const last = opened.at(-1);
  const stepsEnd = last ? last.start + (steps.at(-1)?.seconds ?? 0) * 1000 : stepsStart;
  return {
    startSeconds: Math.max(0, (stepsStart - spawnedAt) / 1000),
    extractSeconds,
    steps,
    afterStepsSeconds: Math.max(0, ((pushStart ?? stepsEnd) - stepsEnd) / 1000),
    pushSeconds,
    exitSeconds: Math.max(0, totalSeconds - ((pushEnd ?? stepsEnd) - spawnedAt) / 1000),
    phases: summary.phases,
    cache: summary.cache ?? null,
    pulledBytes: summary.pulledBytes ?? 0,
    pushedBytes: summary.pushedBytes ?? 0,
    blobs: summary.blobs ?? { uploaded: 0, mounted: 0, existing: 0 },
  };
}
