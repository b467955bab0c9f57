// How `npm run bench:cache` prints its builds: each build's total, kiln's summary (phases,
// cache hits, bytes pulled and pushed) and, for the fully cached rebuild, where its time went
// — the gaps between kiln's own log records, largest first — since a rebuild runs no step
// and its time is all start-up, lookups, registry round trips and exit.
import type { KilnBuildRun } from './build-kiln.js';
import type { BuildahCacheRun } from './cache-buildah.js';
import { s } from './build-report.js';

const MB = 1e6;

const mb = (bytes: number): string => (bytes >= MB / 10 ? `${(bytes / MB).toFixed(1)} MB` : `${(bytes / 1e3).toFixed(1)} kB`);

export function kilnCacheReport(name: string, run: KilnBuildRun): string[] {
  const cache = run.cache ? `cache ${run.cache.hits} hits / ${run.cache.misses} misses` : 'cache off';
  const { uploaded, mounted, existing } = run.blobs;
  return [
    `  kiln ${name} ${s(run.seconds)} s: ${cache}; pulled ${mb(run.pulledBytes)}, pushed ${mb(run.pushedBytes)} ` +
      `(blobs: ${uploaded} uploaded, ${mounted} mounted, ${existing} already there)`,
    `    kiln's phases: ${Object.entries(run.phases).map(([phase, seconds]) => `${phase} ${s(seconds)}`).join(', ')}; ` +
      `steps ${run.steps.map((step) => (step.cached ? 'cached' : s(step.seconds))).join(' / ')}`,
    // What the phases leave out: before the first step, waiting after the last one (layers
    // still going to the cache), and exit (the root directory removed).
    `    start-up to the first step ${s(run.startSeconds)}, after the steps ${s(run.afterStepsSeconds)}, ` +
      `push ${s(run.pushSeconds)}, after the push to exit ${s(run.exitSeconds)}`,
  ];
}

export function buildahCacheReport(name: string, run: BuildahCacheRun): string[] {
  return [
    `  buildah ${name} ${s(run.seconds)} s: bud ${s(run.bud.seconds)} (start-up to the first step ${s(run.bud.beforeSeconds)}, ` +
      `after the last step ${s(run.bud.afterSeconds)}), push ${s(run.pushSeconds)}; ${run.cachedSteps} steps from its cache`,
    `    steps ${run.bud.steps.map((step) => s(step.seconds)).join(' / ')}`,
  ];
}

/** The fully cached rebuild must have run nothing and downloaded no layer. */
export function rebuildCheck(run: KilnBuildRun, steps: number): { ok: boolean; line: string } {
  const misses = run.cache?.misses ?? steps;
  const hits = run.cache?.hits ?? 0;
  const ok = run.cache !== null && misses === 0 && hits === steps && run.pulledBytes === 0;
  return {
    ok,
    line: `  kiln rebuild check (its JSON summary): ${hits} hits, ${misses} misses, ${run.pulledBytes} bytes of layers pulled — ${ok ? 'ok' : 'FAILED'}`,
  };
}

/**
 * The rebuild's time, gap by gap: from spawn to kiln's first record (node's start-up and
 * module loading), between consecutive records, and from the last record to exit. Each gap
 * is named by the record that ends it; the `limit` largest are shown in log order.
 */
export function rebuildTimeline(run: KilnBuildRun, limit = 12): string[] {
  interface Gap { from: number; seconds: number; what: string }
  const gaps: Gap[] = [];
  let previous = 0;
  for (const { at, record } of run.records) {
    const extra = record.ms !== undefined ? ` (${record.ms} ms)` : '';
    const first = gaps.length === 0 ? 'node start-up and kiln\'s modules, then: ' : '';
    gaps.push({ from: previous, seconds: at - previous, what: `${first}${record.msg.split('\n')[0]!.slice(0, 90)}${extra}` });
    previous = at;
  }
  gaps.push({ from: previous, seconds: run.seconds - previous, what: 'process exit' });
  const largest = new Set([...gaps].sort((a, b) => b.seconds - a.seconds).slice(0, limit));
  return [
    `    rebuild timeline (kiln's records; the ${largest.size} largest gaps of ${gaps.length}, each ending at the record named):`,
    ...gaps.filter((gap) => largest.has(gap)).map((gap) => `      ${s(gap.from).padStart(6)} +${s(gap.seconds)} s  ${gap.what}`),
  ];
}

/**
 * What the cache itself adds to a cold build, apart from the steps' own work (which the
 * machine's load moves far more than the cache does): the extra planning (keys, lookups),
 * waiting after the last step for layers still going to the cache, and the final push.
 */
export function coldCacheCost(cold: KilnBuildRun, nocache: KilnBuildRun): string {
  const delta = (a: number, b: number): string => `${a - b >= 0 ? '+' : ''}${s(a - b)}`;
  return (
    `  kiln cold with cache vs without, outside the steps: plan ${delta(cold.phases.plan ?? 0, nocache.phases.plan ?? 0)} s, ` +
    `after the steps ${delta(cold.afterStepsSeconds, nocache.afterStepsSeconds)} s, push ${delta(cold.pushSeconds, nocache.pushSeconds)} s, ` +
    `exit ${delta(cold.exitSeconds, nocache.exitSeconds)} s; steps ${s(stepSeconds(cold))} s vs ${s(stepSeconds(nocache))} s`
  );
}

const stepSeconds = (run: KilnBuildRun): number => run.steps.reduce((sum, step) => sum + step.seconds, 0);
