import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { DEFAULT_PATH, type BuildPlan, type StageExit, type StagePlan, type StageStep } from '../dockerfile/index.js';
import type { Image } from '../oci/image.js';
import { flavorOfManifest } from '../oci/mediatypes.js';
import { appendHistory, appendLayers, setAuthor, setContainerConfig } from '../oci/mutate.js';
import type { ContainerConfig, History } from '../oci/types.js';
import { extractImage, extractLayer } from '../snapshot/extract.js';
import { FileIndex, type ChangeSet } from '../snapshot/file-index.js';
import type { IgnoreList } from '../snapshot/ignore.js';
import { writeLayer } from '../snapshot/layer-writer.js';
import { Snapshotter } from '../snapshot/snapshotter.js';
import type { CachedResult, LayerCache, ProbeResult } from '../cache/types.js';
import { KilnError } from '../util/errors.js';
import { formatBytes } from '../util/format.js';
import type { Logger } from '../util/log.js';
import { executeCopy, type CopySources } from './commands/copy.js';
import { applyMetadata } from './commands/metadata.js';
import { executeRun } from './commands/run.js';
import type { StepContext, StepOutcome } from './commands/types.js';
import { executeWorkdir, workdirConfig } from './commands/workdir.js';
import type { PlannedKey } from './cache-keys.js';
import type { Isolation } from './isolation/index.js';
import type { BuildOptions } from './options.js';
import { extractedLine, type BuildProgress } from './progress.js';

export interface StageEnvironment {
  options: BuildOptions;
  plan: BuildPlan;
  ignore: IgnoreList;
  isolation: Isolation;
  logger: Logger;
  output: { stdout: Writable; stderr: Writable };
  /** Where layers and stage roots are written. */
  workDir: string;
  /** Files COPY/ADD read from: the context, earlier stages' roots, other images. */
  sources: CopySources;
  /** Shows pulls, extractions and snapshots as they run, and times them for the summary. */
  progress: BuildProgress;
}

export interface StageResult {
  image: Image;
  /**
   * The stage's root filesystem as its last step left it, for COPY --from; undefined when no
   * step had to run there (everything came from the cache) and the files were never extracted.
   */
  rootDir?: string;
  exit: StageExit;
  steps: StepReport[];
}

export interface StepReport {
  text: string;
  line: number;
  seconds: number;
  /** Compressed size of the layer the step added; undefined when it added none. */
  layerBytes?: number;
  /** How the cache answered for this step; undefined when the cache was not asked. */
  cache?: 'hit' | 'miss';
}

/** The cache's part in one stage: every step's key and what the probe answered for it. */
export interface StageCache {
  cache: LayerCache;
  keys: readonly PlannedKey[];
  /** Per step: the probe's answer, or undefined when the step was not looked up. */
  probes: readonly (ProbeResult | undefined)[];
}

/** Steps that change files; the others only change the image config. */
const FILESYSTEM_STEPS = new Set(['run', 'copy', 'add', 'workdir']);

/**
 * Builds one stage: each instruction executed and, where it changed files, snapshotted into a
 * layer; or, for a step the cache holds, the cached layer taken as it is. The root filesystem
 * is extracted only when a step has to run, and holds only what that step needs.
 */
export interface StageBuildOptions {
  /** Build in this directory (`/` with `--isolation none`) instead of a new one. */
  rootDir?: string;
  /** Called once, before the root is first filled: `/` is emptied of an earlier stage's files. */
  prepareRoot?: () => Promise<void>;
  cache?: StageCache;
}

export async function buildStage(env: StageEnvironment, index: number, base: Image, stagePlan: StagePlan, options: StageBuildOptions = {}): Promise<StageResult> {
  const { plan, logger } = env;
  const buildOptions = env.options;
  const stage = plan.stages[index]!;
  const stageName = stage.name ? `stage ${index} (${stage.name})` : `stage ${index}`;
  // New layers take the base's manifest family, so an image never mixes Docker and OCI types.
  const layerOptions = {
    compression: buildOptions.compression,
    ...(buildOptions.compressionLevel !== undefined ? { level: buildOptions.compressionLevel } : {}),
    reproducible: buildOptions.reproducible,
    flavor: flavorOfManifest(base.mediaType),
    tmpDir: join(env.workDir, 'layers'),
    logger,
  };
  const steps = stagePlan.steps;
  const hits = steps.map((_, i) => {
    const probe = options.cache?.probes[i];
    return probe?.kind === 'hit' ? probe : undefined;
  });
  const mustRun = stepsToRun(stagePlan, options.cache);
  const lastToRun = buildOptions.singleSnapshot ? steps.length : mustRun.lastIndexOf(true);

  let image = base;
  // A base image's ONBUILD triggers run in this stage and are not passed on.
  let config: ContainerConfig = { ...(base.config.config ?? {}) };
  delete config.OnBuild;
  // A base without Env (scratch among them) gets Docker's PATH, as kaniko and BuildKit write it.
  if (config.Env == null) config.Env = [`PATH=${DEFAULT_PATH}`];
  let cmdSetInStage = false;
  const reports: StepReport[] = [];
  const pendingHistory: History[] = [];
  // `reindex`: cached layers were extracted under the snapshotter. `behind`: cached layers
  // after the last step that runs were not extracted, so the root lacks them.
  let root: { dir: string; snapshotter: Snapshotter; reindex: boolean; behind: boolean } | undefined;
  /** The root filesystem holding everything the image has so far, extracted on first need. */
  const materialize = async () => {
    if (root) {
      // The snapshotter adopts the index the extracted cached layers updated.
      if (root.reindex) await root.snapshotter.init(root.snapshotter.index);
      root.reindex = false;
      return root;
    }
    const dir = options.rootDir ?? (await mkdtemp(join(env.workDir, `root-${index}-`)));
    await options.prepareRoot?.();
    const fileIndex = new FileIndex();
    const extracting = image;
    await env.progress.extract(
      extracting.layers,
      stageName,
      (layers) => extractImage({ ...extracting, layers }, { rootDir: dir, ignore: env.ignore, index: fileIndex, logger, spoolDir: env.workDir }),
      (stats) => extractedLine(stageName, stats),
    );
    const snapshotter = new Snapshotter({ rootDir: dir, ignore: env.ignore, mode: buildOptions.snapshotMode, logger });
    await snapshotter.init(fileIndex);
    // In the executor's own `/`, files that were there before the base image are where the
    // first step starts, not changes it made.
    if (dir === '/') snapshotter.adoptUntracked();
    root = { dir, snapshotter, reindex: false, behind: false };
    return root;
  };
  try {
    if (buildOptions.singleSnapshot) await materialize();
    for (const [number, step] of steps.entries()) {
      const started = performance.now();
      const where = `${buildOptions.dockerfileName}:${step.instruction.line}`;
      const text = step.instruction.original;
      logger.info(`STEP ${number + 1}/${steps.length} of ${stageName}: ${text}`);
      const history: History = { created: new Date().toISOString(), created_by: historyText(step) };
      const hit = hits[number];
      let author: string | undefined;
      let layerBytes: number | undefined;
      let cacheReport: StepReport['cache'];
      if (hit) {
        cacheReport = 'hit';
        if (step.expanded.kind === 'workdir') config = workdirConfig(step.expanded, config);
        if (hit.result.kind === 'layer') {
          const layer = hit.result.layer;
          image = appendLayers(withConfig(image, config), [{ layer, history }]);
          layerBytes = layer.size;
          // A later step runs on these files: they go into the root now.
          if (root && number < lastToRun) {
            const into = root;
            await env.progress.extract([layer], `${where} (cached layer)`, ([counted]) => extractLayer(counted!, { rootDir: into.dir, ignore: env.ignore, index: into.snapshotter.index, logger }));
            root.reindex = true;
          } else if (root) {
            root.behind = true;
          }
        }
        logger.info(`${where}: cache hit, ${hit.result.kind === 'layer' ? `layer ${hit.result.layer.digest.slice(7, 19)} (${formatBytes(hit.result.layer.size)})` : 'no layer'}`);
      } else {
        if (options.cache?.probes[number]) cacheReport = 'miss';
        const current = mustRun[number] ? await materialize() : undefined;
        const recordChanges = current !== undefined && !buildOptions.singleSnapshot && current.snapshotter.rootIsLarge();
        const ctx: StepContext = { step, where, rootDir: current?.dir ?? '', config, isolation: env.isolation, logger, output: env.output, recordChanges };
        const outcome = await env.progress.phases.time('run', () => executeStep(step, ctx, env, cmdSetInStage));
        config = outcome.config;
        if (outcome.author) {
          history.author = outcome.author;
          author = outcome.author;
        }
        let written: CachedResult | undefined = current && !buildOptions.singleSnapshot ? { kind: 'empty' } : undefined;
        const layer = current && !buildOptions.singleSnapshot && outcome.effect.kind !== 'metadata'
          ? await env.progress.snapshot(`${stageName} step ${number + 1}`, async () => {
            const changes = await changesOf(outcome, current.snapshotter);
            if (!changes || (changes.changed.length === 0 && changes.deleted.length === 0)) return undefined;
            return writeLayer({ rootDir: current.dir, changes, index: current.snapshotter.index }, layerOptions);
          })
          : undefined;
        if (current && layer?.kind === 'layer') {
          current.snapshotter.recordContent(layer.contentHashes);
          image = appendLayers(withConfig(image, config), [{ layer: layer.layer, history }]);
          layerBytes = layer.layer.size;
          written = { kind: 'layer', layer: layer.layer };
        }
        if (written && cacheReport === 'miss') options.cache!.cache.put(options.cache!.keys[number]!.key, written);
      }
      if (step.expanded.kind === 'cmd') cmdSetInStage = true;
      if (layerBytes === undefined) {
        if (buildOptions.singleSnapshot) pendingHistory.push({ ...history, empty_layer: true });
        else image = appendHistory(withConfig(image, config), { ...history, empty_layer: true });
      }
      if (author) image = setAuthor(image, author);
      reports.push({ text, line: step.instruction.line, seconds: Number(seconds(started)), ...(layerBytes !== undefined ? { layerBytes } : {}), ...(cacheReport ? { cache: cacheReport } : {}) });
    }
    image = withConfig(image, config);
    if (buildOptions.singleSnapshot) {
      const whole = image;
      image = await env.progress.snapshot(stageName, () => singleSnapshot(whole, pendingHistory, root!.snapshotter, root!.dir, layerOptions));
    }
  } finally {
    await root?.snapshotter.close();
  }
  return { image, ...(root && !root.behind ? { rootDir: root.dir } : {}), exit: stagePlan.exit, steps: reports };
}

/** Per step: whether it has to run here, rather than being metadata only or served by the cache. */
export function stepsToRun(stagePlan: StagePlan, cache: StageCache | undefined): boolean[] {
  return stagePlan.steps.map((step, i) => FILESYSTEM_STEPS.has(step.expanded.kind) && cache?.probes[i]?.kind !== 'hit');
}

async function executeStep(step: StageStep, ctx: StepContext, env: StageEnvironment, cmdSetInStage: boolean): Promise<StepOutcome> {
  const instruction = step.expanded;
  switch (instruction.kind) {
    case 'run':
      return executeRun(instruction, ctx);
    case 'copy':
    case 'add':
      return executeCopy(instruction, ctx, env.sources, env.ignore, env.workDir);
    case 'workdir':
      return executeWorkdir(instruction, ctx);
    default: {
      const outcome = applyMetadata(instruction, ctx.config, ctx.where, cmdSetInStage);
      if (!outcome) throw new KilnError('INTERNAL', `${ctx.where}: no handler for ${instruction.kind}`);
      return outcome;
    }
  }
}

async function changesOf(outcome: StepOutcome, snapshotter: Snapshotter): Promise<ChangeSet | undefined> {
  switch (outcome.effect.kind) {
    case 'metadata':
      return undefined;
    case 'paths':
      return snapshotter.scanPaths(outcome.effect.paths, outcome.effect.entries);
    case 'scan':
      return snapshotter.scan();
  }
}

/**
 * The stage's config replaces the image's whole: keys the stage removed (the base's OnBuild)
 * must not come back from the base, as setContainerConfig's partial update would bring them.
 */
function withConfig(image: Image, config: ContainerConfig): Image {
  return setContainerConfig(image, () => ({ ...config }));
}

/** --single-snapshot: one layer for the whole stage, taken after its last instruction. */
async function singleSnapshot(image: Image, history: History[], snapshotter: Snapshotter, root: string, layerOptions: Parameters<typeof writeLayer>[1]): Promise<Image> {
  const changes = await snapshotter.scan();
  let result = image;
  const last = history.pop();
  for (const entry of history) result = appendHistory(result, entry);
  if (!last) return result;
  const written = changes.changed.length > 0 || changes.deleted.length > 0
    ? await writeLayer({ rootDir: root, changes, index: snapshotter.index }, layerOptions)
    : ({ kind: 'empty' } as const);
  if (written.kind === 'empty') return appendHistory(result, last);
  return appendLayers(result, [{ layer: written.layer, history: { ...last, empty_layer: false } }]);
}

/** History text: the instruction as written (RUN with its expanded command), marked as kiln's like BuildKit marks its own. */
function historyText(step: StageStep): string {
  const instruction = step.expanded;
  if (instruction.kind === 'run') {
    const command = instruction.command.form === 'exec' ? JSON.stringify(instruction.command.args) : instruction.command.text;
    return `RUN ${command} # kiln`;
  }
  return `${step.instruction.original} # kiln`.replace(/^(\w+)/, (keyword) => keyword.toUpperCase());
}

function seconds(since: number): string {
  return ((performance.now() - since) / 1000).toFixed(2);
}
