// How kiln's build benchmarks print one tool's run: its total and where the time went,
// kiln's per step split into command, snapshot scan and layer write.
import type { BudRun } from './buildah.js';
import type { KilnBuildRun, KilnStep } from './build-kiln.js';

export const s = (seconds: number): string => seconds.toFixed(2);

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  return [header, ...rows].map((row) => '    ' + row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
}

const short = (text: string): string => (text.length > 70 ? `${text.slice(0, 67)}...` : text);

export function kilnReport(run: KilnBuildRun): string[] {
  const stepsTotal = run.steps.reduce((sum, step) => sum + step.seconds, 0);
  return [
    `  kiln ${s(run.seconds)} s: start-up to the first step ${s(run.startSeconds)}, steps ${s(stepsTotal)} ` +
      `(of which base extract ${s(run.extractSeconds)}), after the steps ${s(run.afterStepsSeconds)}, push ${s(run.pushSeconds)}, exit ${s(run.exitSeconds)}; ` +
      `then ${s(run.discardSeconds)} of deleting its work directory in the background, waited for before anything else runs`,
    `    kiln's phases: ${Object.entries(run.phases).map(([phase, seconds]) => `${phase} ${s(seconds)}`).join(', ')}`,
    ...table(
      ['step s', 'extract', 'command', 'scan', 'layer', 'instruction'],
      run.steps.map((step) => [
        s(step.seconds), s(step.extractSeconds), step.cached ? 'cached' : s(step.commandSeconds), s(step.scanSeconds), s(step.layerSeconds), short(step.text),
      ]),
    ),
  ];
}

export function buildahReport(total: number, bud: BudRun, pushSeconds: number): string[] {
  return [
    `  buildah ${s(total)} s: bud ${s(bud.seconds)} (start-up to the first step ${s(bud.beforeSeconds)}, ` +
      `after the last step ${s(bud.afterSeconds)}), push ${s(pushSeconds)}`,
    ...table(['step s', 'instruction'], bud.steps.map((step) => [s(step.seconds), short(step.text)])),
  ];
}

export function findStep(run: KilnBuildRun, text: string): KilnStep {
  const step = run.steps.find((candidate) => candidate.text === text);
  if (!step) throw new Error(`kiln's log has no step "${text}"`);
  return step;
}
