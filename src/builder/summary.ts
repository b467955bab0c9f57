import type { PushResult } from '../registry/push.js';
import { formatBytes } from '../util/format.js';
import type { Logger } from '../util/log.js';
import { PHASES, PHASE_NAMES, type Phase } from './progress-phases.js';
import type { StepReport } from './stage.js';

/** What a build did, as the summary at its end reports it; also its JSON record's fields. */
export interface BuildSummary {
  /** The image's manifest digest: what `kiln build` prints on stdout. */
  digest: string;
  seconds: number;
  steps: SummaryStep[];
  /** Layer bytes downloaded from registries (base images, COPY --from images, cached layers). */
  pulledBytes: number;
  /** Bytes uploaded to the destinations; blobs mounted or already there cost none. */
  pushedBytes: number;
  /** Blobs put in place at the destinations (layers and config), by how. */
  blobs: { uploaded: number; mounted: number; existing: number };
  /** Steps the layer cache served and could not serve; null when the cache was off. */
  cache: { hits: number; misses: number } | null;
  /** Seconds per phase: plan (and cache lookup), pull (and extract), run, snapshot, push. */
  phases: Record<Phase, number>;
}

export interface SummaryStep {
  stage: number;
  stageName?: string;
  /** `Dockerfile:7`. */
  where: string;
  text: string;
  seconds: number;
  /** Compressed size of the step's layer; null when the step added none. */
  layerBytes: number | null;
  /** Whether the cache served the step; null when the cache was not asked. */
  cached: boolean | null;
}

export interface SummaryInput {
  dockerfileName: string;
  stages: readonly { index: number; name?: string; steps: readonly StepReport[] }[];
  pushed: readonly PushResult[];
  pulledBytes: number;
  phases: Record<Phase, number>;
  seconds: number;
  digest: string;
  /** Whether the build used the layer cache (--cache). */
  cacheUsed: boolean;
}

export function summarizeBuild(input: SummaryInput): BuildSummary {
  const steps = input.stages.flatMap((stage) =>
    stage.steps.map((step): SummaryStep => ({
      stage: stage.index,
      ...(stage.name ? { stageName: stage.name } : {}),
      where: `${input.dockerfileName}:${step.line}`,
      text: step.text,
      seconds: round(step.seconds),
      layerBytes: step.layerBytes ?? null,
      cached: step.cache === undefined ? null : step.cache === 'hit',
    })),
  );
  const blobs = input.pushed.flatMap((push) => push.blobs);
  const asked = steps.filter((step) => step.cached !== null);
  return {
    digest: input.digest,
    seconds: round(input.seconds),
    steps,
    pulledBytes: input.pulledBytes,
    pushedBytes: input.pushed.reduce((sum, push) => sum + push.uploadedBytes, 0),
    blobs: {
      uploaded: blobs.filter((blob) => blob.result.kind === 'uploaded').length,
      mounted: blobs.filter((blob) => blob.result.kind === 'mounted').length,
      existing: blobs.filter((blob) => blob.result.kind === 'exists').length,
    },
    cache: !input.cacheUsed ? null : { hits: asked.filter((step) => step.cached).length, misses: asked.filter((step) => !step.cached).length },
    phases: Object.fromEntries(PHASES.map((phase) => [phase, round(input.phases[phase])])) as Record<Phase, number>,
  };
}

/** Longest instruction text a summary line shows. */
const TEXT_WIDTH = 60;

/**
 * The summary as log lines: a heading, one aligned line per step (stage, Dockerfile line,
 * seconds, layer size, whether the cache served it), the totals, and the digest last.
 */
export function formatSummary(summary: BuildSummary): string[] {
  const rows = summary.steps.map((step) => [
    step.stageName ? `stage ${step.stage} (${step.stageName})` : `stage ${step.stage}`,
    step.where,
    `${step.seconds.toFixed(2)} s`,
    step.layerBytes === null ? 'no layer' : formatBytes(step.layerBytes),
    step.cached ? 'cached' : '',
    oneLine(step.text),
  ]);
  const widths = [0, 1, 2, 3, 4].map((column) => Math.max(0, ...rows.map((row) => row[column]!.length)));
  const lines = [`build summary: ${summary.steps.length} ${summary.steps.length === 1 ? 'step' : 'steps'} in ${summary.seconds.toFixed(2)} s`];
  for (const row of rows) {
    const cells = row.map((cell, column) => (column === 2 ? cell.padStart(widths[column]!) : column < 5 ? cell.padEnd(widths[column]!) : cell));
    lines.push(`  ${cells.filter((cell, column) => column !== 4 || widths[4]! > 0).join('  ')}`);
  }
  lines.push(`${transfers(summary)}, ${cacheTotals(summary)}, phases: ${PHASES.map((phase) => `${PHASE_NAMES[phase]} ${summary.phases[phase].toFixed(2)} s`).join(', ')}`);
  lines.push(`built ${summary.digest}`);
  return lines;
}

/** Logs the summary: lines for a person to read, or one record (`summary`) with --log-format json. */
export function logSummary(logger: Logger, summary: BuildSummary, json: boolean): void {
  if (json) {
    logger.info({ summary }, `built ${summary.digest}`);
    return;
  }
  for (const line of formatSummary(summary)) logger.info(line);
}

function transfers(summary: BuildSummary): string {
  const { mounted, existing } = summary.blobs;
  const reused = [`${mounted} ${mounted === 1 ? 'blob' : 'blobs'} mounted`, ...(existing > 0 ? [`${existing} already there`] : [])];
  const pushed = summary.blobs.uploaded + mounted + existing > 0 ? `pushed ${formatBytes(summary.pushedBytes)} (${reused.join(', ')})` : 'pushed nothing';
  return `pulled ${formatBytes(summary.pulledBytes)}, ${pushed}`;
}

function cacheTotals(summary: BuildSummary): string {
  if (!summary.cache) return 'cache off';
  const { hits, misses } = summary.cache;
  return `cache ${hits} ${hits === 1 ? 'hit' : 'hits'} / ${misses} ${misses === 1 ? 'miss' : 'misses'}`;
}

/** A step's text on one line (heredocs and continuations span several), cut to TEXT_WIDTH. */
function oneLine(text: string): string {
  const flat = text.replace(/\s*\\?\n\s*/g, ' ').trim();
  return flat.length <= TEXT_WIDTH ? flat : `${flat.slice(0, TEXT_WIDTH - 1).trimEnd()}…`;
}

function round(seconds: number): number {
  return Math.round(seconds * 100) / 100;
}
