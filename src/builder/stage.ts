import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { DEFAULT_PATH, planStage, type BuildPlan, type StageExit, type StageInput, type StageStep } from '../dockerfile/index.js';
import type { Image } from '../oci/image.js';
import { flavorOfManifest } from '../oci/mediatypes.js';
import { appendHistory, appendLayers, setAuthor, setContainerConfig } from '../oci/mutate.js';
import type { ContainerConfig, History } from '../oci/types.js';
import { extractImage } from '../snapshot/extract.js';
import { FileIndex, type ChangeSet } from '../snapshot/file-index.js';
import type { IgnoreList } from '../snapshot/ignore.js';
import { writeLayer } from '../snapshot/layer-writer.js';
import { Snapshotter } from '../snapshot/snapshotter.js';
import { KilnError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { executeCopy, type CopySources } from './commands/copy.js';
import { applyMetadata } from './commands/metadata.js';
import { executeRun } from './commands/run.js';
import type { StepContext, StepOutcome } from './commands/types.js';
import { executeWorkdir } from './commands/workdir.js';
import type { Isolation } from './isolation/index.js';
import type { BuildOptions } from './options.js';

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
}

export interface StageResult {
  image: Image;
  /** The stage's root filesystem as its last step left it (for COPY --from). */
  rootDir: string;
  exit: StageExit;
  steps: StepReport[];
}

export interface StepReport {
  text: string;
  line: number;
  seconds: number;
  /** Compressed size of the layer the step added; undefined when it added none. */
  layerBytes?: number;
}

/**
 * Builds one stage: the base image's filesystem extracted into a root of its own, then each
 * instruction executed and, where it changed files, snapshotted into a layer.
 */
export async function buildStage(env: StageEnvironment, index: number, base: Image, input: StageInput, rootDir?: string): Promise<StageResult> {
  const { options, plan, logger } = env;
  const stage = plan.stages[index]!;
  const stageName = stage.name ? `stage ${index} (${stage.name})` : `stage ${index}`;
  const root = rootDir ?? (await mkdtemp(join(env.workDir, `root-${index}-`)));
  const fileIndex = new FileIndex();
  const extractStarted = performance.now();
  await extractImage(base, { rootDir: root, ignore: env.ignore, index: fileIndex, logger, spoolDir: env.workDir });
  logger.info(`${stageName}: extracted ${base.layers.length} layers of ${stage.image} in ${seconds(extractStarted)} s`);
  const snapshotter = new Snapshotter({ rootDir: root, ignore: env.ignore, mode: options.snapshotMode, logger });
  await snapshotter.init(fileIndex);

  // New layers take the base's manifest family, so an image never mixes Docker and OCI types.
  const layerOptions = {
    compression: options.compression,
    ...(options.compressionLevel !== undefined ? { level: options.compressionLevel } : {}),
    reproducible: options.reproducible,
    flavor: flavorOfManifest(base.mediaType),
    tmpDir: join(env.workDir, 'layers'),
    logger,
  };
  const stagePlan = planStage(plan, index, input);
  let image = base;
  // A base image's ONBUILD triggers run in this stage and are not passed on.
  let config: ContainerConfig = { ...(base.config.config ?? {}) };
  delete config.OnBuild;
  // A base without Env (scratch among them) gets Docker's PATH, as kaniko and BuildKit write it.
  if (config.Env == null) config.Env = [`PATH=${DEFAULT_PATH}`];
  let cmdSetInStage = false;
  const reports: StepReport[] = [];
  const pendingHistory: History[] = [];
  try {
    for (const [number, step] of stagePlan.steps.entries()) {
      const started = performance.now();
      const where = `${options.dockerfileName}:${step.instruction.line}`;
      const text = step.instruction.original;
      logger.info(`STEP ${number + 1}/${stagePlan.steps.length} of ${stageName}: ${text}`);
      const ctx: StepContext = { step, where, rootDir: root, config, isolation: env.isolation, logger, output: env.output };
      const outcome = await executeStep(step, ctx, env, cmdSetInStage);
      if (step.expanded.kind === 'cmd') cmdSetInStage = true;
      config = outcome.config;
      const history: History = { created: new Date().toISOString(), created_by: historyText(step) };
      if (outcome.author) history.author = outcome.author;
      let layerBytes: number | undefined;
      const changes = options.singleSnapshot ? undefined : await changesOf(outcome, snapshotter);
      if (changes && (changes.changed.length > 0 || changes.deleted.length > 0)) {
        const written = await writeLayer({ rootDir: root, changes, index: snapshotter.index }, layerOptions);
        if (written.kind === 'layer') {
          snapshotter.recordContent(written.contentHashes);
          image = appendLayers(withConfig(image, config), [{ layer: written.layer, history }]);
          layerBytes = written.layer.size;
        }
      }
      if (layerBytes === undefined) {
        if (options.singleSnapshot) pendingHistory.push({ ...history, empty_layer: true });
        else image = appendHistory(withConfig(image, config), { ...history, empty_layer: true });
      }
      if (outcome.author) image = setAuthor(image, outcome.author);
      reports.push({ text, line: step.instruction.line, seconds: Number(seconds(started)), ...(layerBytes !== undefined ? { layerBytes } : {}) });
    }
    image = withConfig(image, config);
    if (options.singleSnapshot) image = await singleSnapshot(image, pendingHistory, snapshotter, root, layerOptions);
  } finally {
    await snapshotter.close();
  }
  return { image, rootDir: root, exit: stagePlan.exit, steps: reports };
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
      return snapshotter.scanPaths(outcome.effect.paths);
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
