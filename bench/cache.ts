// kiln's registry-shared layer cache against buildah's, on the node_modules Dockerfile
// (node-modules.ts): Debian base, a RUN making 100,000 files, a small RUN, a COPY, a RUN
// deleting a directory. Each run starts a registry of its own holding only the Debian base,
// so every cold build is cold; then
//   kiln cold:     `kiln build --cache --cache-copy-layers --cache-repo REG/bench/cache`;
//   kiln rebuild:  the same command in a new process on a new, empty `--root-dir`: another
//                  node building the same commit, with only the registry shared;
//   kiln nocache:  the cold build without --cache (for what filling the cache costs);
//   buildah cold:  `buildah bud --layers --cache-to REG/bench/buildah-cache --cache-from` (same
//                  repository) on fresh storage, then `buildah push`;
//   buildah rebuild: `buildah bud --layers --cache-from` on another fresh storage root (new
//                  --root and --runroot), then `buildah push`.
// Every build pushes its image to a repository of its own. Totals are spawn to exit (bud plus
// push for buildah). Who goes first alternates between runs; the summary takes medians.
// The last line is
//   cache: rebuild <s> s; <x> x buildah; cold-with-cache <y> x cold
// with x = kiln rebuild / buildah rebuild and y = kiln cold with cache / kiln cold without.
//
// Usage: node dist/bench/cache.js [--runs N]   (default 3)
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { skopeoInspect, type RunningRegistry } from '../integration/harness/index.js';
import { buildahVersion } from './buildah.js';
import type { KilnBuildRun } from './build-kiln.js';
import { startBenchRegistry } from './build-registry.js';
import { median, s } from './build-report.js';
import { buildahCacheBuild, type BuildahCacheRun } from './cache-buildah.js';
import { kilnCacheBuild, startUpSeconds, type KilnCacheBuild, type KilnCacheTarget } from './cache-kiln.js';
import { buildahCacheReport, coldCacheCost, kilnCacheReport, rebuildCheck, rebuildTimeline } from './cache-report.js';
import { DIRECTORIES, FILES_PER_DIRECTORY, writeNodeModulesContext } from './node-modules.js';

interface Run {
  kiln: Record<KilnCacheBuild, KilnBuildRun>;
  buildahCold: BuildahCacheRun;
  buildahRebuild: BuildahCacheRun;
}

/** Lets the kernel write back dirty pages now rather than during the next build. */
function settle(): void {
  spawnSync('sync', [], { stdio: 'ignore' });
}

async function layersOf(registry: RunningRegistry, repo: string): Promise<string[]> {
  const manifest = (await skopeoInspect(registry, `${repo}:latest`, { raw: true })) as { layers: { digest: string }[] };
  return manifest.layers.map((layer) => layer.digest);
}

async function runKiln(target: KilnCacheTarget, run: number): Promise<Record<KilnCacheBuild, KilnBuildRun>> {
  // The two cold builds take turns going first; the rebuild always follows the build that
  // filled the cache.
  const order: KilnCacheBuild[] = run % 2 === 1 ? ['cold', 'rebuild', 'nocache'] : ['nocache', 'cold', 'rebuild'];
  const done: Partial<Record<KilnCacheBuild, KilnBuildRun>> = {};
  for (const build of order) done[build] = await kilnCacheBuild(target, build, settle);
  return done as Record<KilnCacheBuild, KilnBuildRun>;
}

async function runBuildah(target: KilnCacheTarget): Promise<Pick<Run, 'buildahCold' | 'buildahRebuild'>> {
  const cacheRepo = `${target.registryHost}/bench/buildah-cache`;
  const destination = (name: string): string => `${target.registryHost}/bench/buildah-${name}:latest`;
  const buildahCold = await buildahCacheBuild(target.context, target.dir, destination('cold'), ['--cache-to', cacheRepo, '--cache-from', cacheRepo], settle);
  const buildahRebuild = await buildahCacheBuild(target.context, target.dir, destination('rebuild'), ['--cache-from', cacheRepo], settle);
  return { buildahCold, buildahRebuild };
}

async function oneRun(parent: string, run: number): Promise<{ run: Run; ok: boolean }> {
  const bench = await startBenchRegistry();
  const dir = join(parent, `run-${run}`);
  try {
    await mkdir(dir);
    const context = await writeNodeModulesContext(join(dir, 'context'), bench.baseRef);
    const host = bench.registry.host;
    const target: KilnCacheTarget = { context, registryHost: host, cacheRepo: `${host}/bench/cache`, dir };
    let kiln: Run['kiln'];
    let buildah: Pick<Run, 'buildahCold' | 'buildahRebuild'>;
    if (run % 2 === 1) {
      kiln = await runKiln(target, run);
      buildah = await runBuildah(target);
    } else {
      buildah = await runBuildah(target);
      kiln = await runKiln(target, run);
    }
    for (const build of ['cold', 'rebuild', 'nocache'] as const) for (const line of kilnCacheReport(build, kiln[build])) console.log(line);
    console.log(coldCacheCost(kiln.cold, kiln.nocache));
    const check = rebuildCheck(kiln.rebuild, context.steps.length);
    console.log(check.line);
    // The point of the cache: the rebuilt image carries the very layers the cold build made.
    const [cold, rebuilt] = await Promise.all([layersOf(bench.registry, 'bench/kiln-cold'), layersOf(bench.registry, 'bench/kiln-rebuild')]);
    const sameLayers = cold.length === context.steps.length + 1 && cold.join() === rebuilt.join();
    console.log(`  kiln rebuild pushed the cold build's ${cold.length} layers: ${sameLayers ? 'yes' : 'NO'}`);
    const floor = startUpSeconds();
    console.log(`    start-up floor, measured now: node -e 0 ${s(floor.node)} s; kiln build --help ${s(floor.kilnHelp)} s`);
    for (const line of rebuildTimeline(kiln.rebuild)) console.log(line);
    for (const line of buildahCacheReport('cold', buildah.buildahCold)) console.log(line);
    for (const line of buildahCacheReport('rebuild', buildah.buildahRebuild)) console.log(line);
    const buildahOk = buildah.buildahRebuild.cachedSteps === context.steps.length;
    if (!buildahOk) console.log(`  buildah's rebuild took ${buildah.buildahRebuild.cachedSteps} of ${context.steps.length} steps from its cache: its time is not a cached rebuild's`);
    const result: Run = { kiln, ...buildah };
    console.log(
      `  run ${run}: kiln cold ${s(kiln.cold.seconds)} s, rebuild ${s(kiln.rebuild.seconds)} s, nocache ${s(kiln.nocache.seconds)} s; ` +
        `buildah cold ${s(buildah.buildahCold.seconds)} s, rebuild ${s(buildah.buildahRebuild.seconds)} s; ` +
        `rebuild ratio ${(kiln.rebuild.seconds / buildah.buildahRebuild.seconds).toFixed(2)}, cold-with-cache ratio ${(kiln.cold.seconds / kiln.nocache.seconds).toFixed(2)}`,
    );
    return { run: result, ok: check.ok && sameLayers && buildahOk };
  } finally {
    await bench.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const at = argv.indexOf('--runs');
  const runs = at === -1 ? 3 : Number(argv[at + 1]);
  if (!Number.isInteger(runs) || runs < 1) throw new Error('usage: cache.js [--runs N]');
  const version = await buildahVersion();
  const parent = await mkdtemp(join(process.env.KILN_BENCH_DIR ?? tmpdir(), 'kiln-bench-cache-'));
  const results: Run[] = [];
  let ok = true;
  try {
    const fsType = spawnSync('stat', ['-f', '-c', '%T', parent], { encoding: 'utf8' }).stdout.trim();
    console.log(`Dockerfile: FROM Debian bookworm (a local registry of its own per run), ${DIRECTORIES * FILES_PER_DIRECTORY} files in ${DIRECTORIES} directories, then 3 small steps; ${version}; in ${parent} (${fsType})`);
    for (let run = 1; run <= runs; run++) {
      console.log(`run ${run}/${runs}: load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
      const one = await oneRun(parent, run);
      results.push(one.run);
      ok &&= one.ok;
    }
  } finally {
    await rm(parent, { recursive: true, force: true });
  }
  const m = (pick: (run: Run) => number): number => median(results.map(pick));
  const rebuild = m((r) => r.kiln.rebuild.seconds);
  const cold = m((r) => r.kiln.cold.seconds);
  const nocache = m((r) => r.kiln.nocache.seconds);
  const buildahCold = m((r) => r.buildahCold.seconds);
  const buildahRebuild = m((r) => r.buildahRebuild.seconds);
  const x = rebuild / buildahRebuild;
  const y = cold / nocache;
  console.log(
    `medians of ${runs}: kiln cold with cache ${s(cold)} s, rebuild ${s(rebuild)} s, cold without cache ${s(nocache)} s; ` +
      `buildah cold with --cache-to ${s(buildahCold)} s, rebuild with --cache-from ${s(buildahRebuild)} s`,
  );
  const met = (yes: boolean): string => (yes ? 'met' : 'MISSED');
  console.log(`targets: rebuild ≤ 1 s ${met(rebuild <= 1)}; ≤ 0.2 x buildah ${met(x <= 0.2)}; cold-with-cache ≤ 1.1 x cold ${met(y <= 1.1)}${ok ? '' : '; a check above FAILED'}`);
  console.log(`cache: rebuild ${s(rebuild)} s; ${x.toFixed(2)} x buildah; cold-with-cache ${y.toFixed(2)} x cold`);
  if (!ok) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack ?? err.message : String(err));
  process.exitCode = 1;
});
