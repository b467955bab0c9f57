// A cold build of the node_modules Dockerfile (node-modules.ts) by kiln against buildah, in
// the same run, from the same context and base, each pushing to the same local registry:
//   kiln:    `kiln build --snapshot-mode full --isolation chroot`, pushing as it ends;
//   buildah: `buildah bud --layers --isolation chroot` on a fresh overlay storage root, then
//            `buildah push` — a layer per step on both sides.
// Totals are wall-clock, process start to exit, on both sides; setting up and removing
// buildah's storage root is left out. kiln's per-step times come from its own log (command,
// snapshot scan, layer write); buildah's from when its STEP lines arrive. The trivial step
// (`RUN echo hello`) is kiln's per-step overhead after a big one: its command plus a
// snapshot of the whole root. Who builds first alternates between runs; the summary takes
// medians. The work directory is $KILN_BENCH_DIR (default the system's temp directory):
// creating 100,000 files is bound by the filesystem, so both tools always share one. Each
// build starts on a settled filesystem (settle.ts): written back, and where the filesystem
// needs it, long enough after the previous build's cleanup that it does not slow this one.
//
// Usage: node dist/bench/build.js [--runs N] [--settle-seconds S]   (default 3 runs; S by filesystem)
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { skopeoInspect, type RunningRegistry } from '../integration/harness/index.js';
import { Buildah, buildahVersion, type BudRun } from './buildah.js';
import { kilnBuild, type KilnBuildRun } from './build-kiln.js';
import { startBenchRegistry } from './build-registry.js';
import { Settler } from './settle.js';
import { buildahReport, findStep, kilnReport, median, s } from './build-report.js';
import { DIRECTORIES, FILES_PER_DIRECTORY, TRIVIAL_RUN, writeNodeModulesContext, type BenchContext } from './node-modules.js';

const MB = 1e6;

interface BuildahRun {
  seconds: number;
  bud: BudRun;
  pushSeconds: number;
}

async function runKiln(context: BenchContext, registry: RunningRegistry, dir: string, run: number, settler: Settler): Promise<KilnBuildRun> {
  await settler.settle();
  const workDir = join(dir, `kiln-${run}`);
  try {
    return await kilnBuild({
      contextDir: context.dir,
      dockerfile: context.dockerfile,
      destination: `${registry.host}/bench/kiln-${run}:latest`,
      workDir,
      insecureRegistry: registry.host,
    });
  } finally {
    await rm(workDir, { recursive: true, force: true });
    settler.deleted();
  }
}

async function runBuildah(context: BenchContext, registry: RunningRegistry, dir: string, run: number, settler: Settler): Promise<BuildahRun> {
  const buildah = await Buildah.create(dir);
  try {
    await settler.settle();
    const tag = `localhost/bench/buildah-${run}:latest`;
    const bud = await buildah.bud({ contextDir: context.dir, dockerfile: context.dockerfile, tag });
    const push = await buildah.push(tag, `${registry.host}/bench/buildah-${run}:latest`);
    return { seconds: bud.seconds + push.seconds, bud, pushSeconds: push.seconds };
  } finally {
    await buildah.remove();
    settler.deleted();
  }
}

/** What was pushed, as the registry holds it: both images must carry a layer per step. */
async function describeImage(registry: RunningRegistry, repo: string, expectedLayers: number): Promise<string> {
  const manifest = (await skopeoInspect(registry, `${repo}:latest`, { raw: true })) as { layers: { size: number }[] };
  const bytes = manifest.layers.reduce((sum, layer) => sum + layer.size, 0);
  if (manifest.layers.length !== expectedLayers) throw new Error(`${repo} has ${manifest.layers.length} layers, not ${expectedLayers}`);
  return `${repo}: ${manifest.layers.length} layers, ${(bytes / MB).toFixed(1)} MB`;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const option = (name: string) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : undefined);
  const runs = option('--runs') ?? 3;
  const settleSeconds = option('--settle-seconds');
  if (!Number.isInteger(runs) || runs < 1 || (settleSeconds !== undefined && !(settleSeconds >= 0))) {
    throw new Error('usage: build.js [--runs N] [--settle-seconds S]');
  }
  const version = await buildahVersion();
  const bench = await startBenchRegistry();
  const dir = await mkdtemp(join(process.env.KILN_BENCH_DIR ?? tmpdir(), 'kiln-bench-build-'));
  try {
    const context = await writeNodeModulesContext(join(dir, 'context'), bench.baseRef);
    const layers = 1 + context.steps.length;
    console.log(`Dockerfile: FROM ${bench.baseRef}, ${DIRECTORIES * FILES_PER_DIRECTORY} files in ${DIRECTORIES} directories, then ${context.steps.length - 1} small steps; ${version}; in ${dir}`);
    const settler = Settler.forDirectory(dir, settleSeconds);
    console.log(`each build starts ${settler.seconds} s after the last cleanup: ${settler.reason}`);
    const kiln: KilnBuildRun[] = [];
    const buildah: BuildahRun[] = [];
    for (let run = 1; run <= runs; run++) {
      console.log(`run ${run}/${runs}: load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
      const order = run % 2 === 1 ? (['kiln', 'buildah'] as const) : (['buildah', 'kiln'] as const);
      for (const tool of order) {
        if (tool === 'kiln') kiln.push(await runKiln(context, bench.registry, dir, run, settler));
        else buildah.push(await runBuildah(context, bench.registry, dir, run, settler));
      }
      const k = kiln.at(-1)!;
      const b = buildah.at(-1)!;
      for (const line of kilnReport(k)) console.log(line);
      for (const line of buildahReport(b.seconds, b.bud, b.pushSeconds)) console.log(line);
      console.log(`  pushed ${await describeImage(bench.registry, `bench/kiln-${run}`, layers)}; ${await describeImage(bench.registry, `bench/buildah-${run}`, layers)}`);
      console.log(`  run ${run}: kiln ${s(k.seconds)} s, buildah ${s(b.seconds)} s, ratio ${(k.seconds / b.seconds).toFixed(2)}`);
    }
    const trivial = kiln.map((run) => findStep(run, TRIVIAL_RUN));
    const kilnSeconds = median(kiln.map((run) => run.seconds));
    const buildahSeconds = median(buildah.map((run) => run.seconds));
    console.log(
      `kiln's trivial step (${TRIVIAL_RUN}), median of ${runs}: ${s(median(trivial.map((t) => t.seconds)))} s ` +
        `(command ${s(median(trivial.map((t) => t.commandSeconds)))}, scan ${s(median(trivial.map((t) => t.scanSeconds)))}, ` +
        `layer ${s(median(trivial.map((t) => t.layerSeconds)))}); target 0.5 s`,
    );
    console.log(`build: kiln ${s(kilnSeconds)} s; buildah ${s(buildahSeconds)} s; ratio ${(kilnSeconds / buildahSeconds).toFixed(2)}`);
  } finally {
    await bench.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack ?? err.message : String(err));
  process.exitCode = 1;
});
