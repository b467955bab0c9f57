import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { openBaseImageCache, type BaseImageCache } from '../cache/base-images.js';
import { formatExplain } from '../cache/key.js';
import { NOT_CACHED } from '../cache/lookup.js';
import { openLayerCache } from '../cache/open.js';
import type { LayerCache, ProbeResult, StepKey } from '../cache/types.js';
import { createIgnoreMatcher, parseDockerfile, planStage, resolveStages, type BuildPlan, type IgnoreMatcher, type StagePlan, type StageStep } from '../dockerfile/index.js';
import type { Image } from '../oci/image.js';
import { emptyImage, setContainerConfig, setCreated, zeroTimes } from '../oci/mutate.js';
import { formatPlatform, hostPlatform, parsePlatform } from '../oci/platform.js';
import type { Platform } from '../oci/types.js';
import type { RegistryClient } from '../registry/client.js';
import type { PushResult } from '../registry/push.js';
import { parseReference } from '../registry/reference.js';
import { fetchRemoteImage } from '../registry/remote.js';
import { extractImage } from '../snapshot/extract.js';
import { IgnoreList } from '../snapshot/ignore.js';
import { KilnError, describeError, isKilnError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { logOnlyProgress, type ProgressSink } from '../util/progress.js';
import { retryOperation } from '../util/retry.js';
import type { CopySources } from './commands/copy.js';
import { atLine } from './commands/located.js';
import { EXECUTOR_MARKER, chrootIsolation, noneIsolation } from './isolation/index.js';
import { wipeRoot } from './isolation/wipe.js';
import { discardTree } from '../util/discard.js';
import { onInterrupt } from '../util/interrupt.js';
import { stageKeys, stageStartKey, type PlannedKey, type StageStart } from './cache-keys.js';
import type { BuildOptions, CacheOptions } from './options.js';
import { writeOutputs } from './outputs.js';
import { BuildProgress, extractedLine } from './progress.js';
import { buildStage, stepsToRun, type StageCache, type StageEnvironment, type StageResult, type StepReport } from './stage.js';
import { summarizeBuild, type BuildSummary } from './summary.js';

export interface BuildResult {
  image: Image;
  pushed: PushResult[];
  stages: { index: number; name?: string; steps: StepReport[] }[];
  /** What the build did, for the report at its end. */
  summary: BuildSummary;
}

export interface BuildDependencies {
  client: RegistryClient;
  logger: Logger;
  output: { stdout: Writable; stderr: Writable };
  /** Where long work shows its progress; by default only its results are logged. */
  progress?: ProgressSink;
}

/**
 * One build: the Dockerfile planned into stages, every step's cache key computed and looked
 * up before anything runs, then the target stage built; an earlier stage is built only when
 * a later one needs its image or files. Nothing is pushed unless every step succeeded.
 */
export async function executeBuild(options: BuildOptions, deps: BuildDependencies): Promise<BuildResult> {
  const { logger, client } = deps;
  const started = performance.now();
  const progress = new BuildProgress(deps.progress ?? logOnlyProgress(logger));
  const plan = await progress.phases.time('plan', () => planBuild(options));
  const stagesToBuild = options.skipUnusedStages ? plan.required : plan.stages.slice(0, plan.target + 1).map((stage) => stage.index);
  const inPlace = options.isolation === 'none';
  if (inPlace && stagesToBuild.length > 1 && !existsSync(join(options.kanikoDir, EXECUTOR_MARKER))) {
    throw new KilnError('USAGE', `building ${stagesToBuild.length} stages with --isolation=none empties / between stages, which kiln does only inside its executor image; use --isolation=chroot or --skip-unused-stages.`);
  }
  // With --isolation none, `/` is the image: kiln's own files live in the executor's directory.
  const scratchBase = options.rootDir ?? (inPlace ? options.kanikoDir : tmpdir());
  await mkdir(scratchBase, { recursive: true });
  const workDir = await mkdtemp(join(scratchBase, 'kiln-build-'));
  const forgetInterrupt = onInterrupt(() => discardTree(workDir, scratchBase));
  if (options.cache && options.singleSnapshot) logger.warn('--cache is off with --single-snapshot: a stage\'s one layer has no per-step key.');
  const cache = options.cache && !options.singleSnapshot
    ? openLayerCache(options.cache.repo, { client, ttlMs: options.cache.ttlMs, push: options.cache.push, logger })
    : undefined;
  const results = new Map<number, Promise<StageResult>>();
  /** --isolation none: whether a stage has filled `/` already. */
  let slashInUse = false;
  const roots = new Map<number, Promise<string>>();
  /** kaniko's --cleanup: the next build in this container starts from an empty `/`. */
  let wipeAfter: IgnoreList | undefined;
  try {
    const ignore = await IgnoreList.create({
      rootDir: inPlace ? '/' : workDir,
      // The executor's directory is part of the root only when `/` is the image.
      kanikoDir: inPlace ? options.kanikoDir : null,
      ignoreVarRun: options.ignoreVarRun,
      ignorePaths: inPlace ? [...options.ignorePaths, workDir] : options.ignorePaths,
    });
    if (inPlace && options.cleanup) wipeAfter = ignore;
    const images = new ImageSource(options, deps, options.baseImageCache ? await openBaseImageCache(options.baseImageCache.dir, { ttlMs: options.baseImageCache.ttlMs, logger }) : undefined);
    const stageRoot = async (index: number): Promise<string> => {
      await stageResult(index);
      let root = roots.get(index);
      if (!root) {
        // The stage's own root is gone, or was never made (its steps came from the cache).
        root = (async () => {
          const dir = await mkdtemp(join(workDir, `stage-${index}-`));
          const image = (await stageResult(index)).image;
          const name = plan.stages[index]!.name;
          const label = name ? `stage ${index} (${name})` : `stage ${index}`;
          await progress.extract(image.layers, label, (layers) => extractImage({ ...image, layers }, { rootDir: dir, ignore, spoolDir: workDir, logger }), (stats) => extractedLine(label, stats));
          return dir;
        })();
        roots.set(index, root);
      }
      return root;
    };
    const env: StageEnvironment = {
      options,
      plan,
      ignore,
      isolation: inPlace ? noneIsolation() : chrootIsolation(),
      logger,
      output: deps.output,
      workDir,
      sources: copySources(options, stageRoot, images, await loadDockerignore(options), workDir, ignore, logger, progress),
      progress,
    };
    const stagePlans = await progress.phases.time('plan', () => planStages(plan, stagesToBuild, images, options));
    const caching = cache ? await progress.phases.time('plan', () => lookUpStages(cache, stagePlans, options.cache!, env, images)) : new Map<number, StageCache>();
    const lastUse = lastUseOfRoots(plan, stagesToBuild);

    const stageResult = (index: number): Promise<StageResult> => {
      let result = results.get(index);
      if (!result) {
        result = (async () => {
          const stage = plan.stages[index]!;
          const base = stage.base.kind === 'stage' ? (await stageResult(stage.base.index)).image : stagePlans.get(index)!.base;
          const stagePlan = stagePlans.get(index)!.plan;
          const stageCache = caching.get(index);
          if (stageCache) await progress.phases.time('plan', () => reportMisses(stageCache, logger));
          if (inPlace) {
            // `/` holds one stage at a time: files this stage copies from others are set aside first.
            const toRun = stepsToRun(stagePlan, stageCache);
            for (const [i, step] of stagePlan.steps.entries()) {
              if (toRun[i] && step.source?.kind === 'stage') await stageRoot(step.source.index);
            }
          }
          const built = await buildStage(env, index, base, stagePlan, {
            ...(inPlace ? { rootDir: '/', prepareRoot: async () => {
              if (slashInUse) await wipeRoot('/', ignore);
              slashInUse = true;
            } } : {}),
            ...(stageCache ? { cache: stageCache } : {}),
          });
          if (built.rootDir && !inPlace) roots.set(index, Promise.resolve(built.rootDir));
          // A stage's files are kept exactly as long as a later stage may still COPY --from them.
          if (!inPlace) {
            for (const [stage, last] of lastUse) {
              const root = last === index && stage !== plan.target ? roots.get(stage) : undefined;
              if (!root) continue;
              roots.delete(stage);
              discardTree(await root, scratchBase);
            }
          }
          return built;
        })();
        results.set(index, result);
      }
      return result;
    };
    // With the cache, a stage the target depends on is built only if the target needs it:
    // a COPY --from that hits the cache needs nothing of the stage it names.
    const dependencies = new Set(plan.required.filter((index) => index !== plan.target));
    for (const index of stagesToBuild) {
      if (!(cache && dependencies.has(index))) await stageResult(index);
    }
    let image = (await stageResult(plan.target)).image;
    if (options.labels.size > 0) {
      image = setContainerConfig(image, (config) => ({ ...config, Labels: { ...(config.Labels ?? {}), ...Object.fromEntries(options.labels) } }));
    }
    image = options.reproducible ? zeroTimes(image) : setCreated(image, new Date());
    const finished = image;
    const pushed = await progress.phases.time('push', () =>
      writeOutputs(finished, options, client, logger, cache ? (digest) => cache.blobLocation(digest) : undefined, progress),
    );
    const built = [...results.keys()].sort((a, b) => a - b);
    const stages = await Promise.all(built.map(async (index) => ({ index, ...(plan.stages[index]!.name ? { name: plan.stages[index]!.name } : {}), steps: (await results.get(index)!).steps })));
    const summary = summarizeBuild({
      dockerfileName: options.dockerfileName,
      stages,
      pushed,
      pulledBytes: progress.pulledBytes,
      phases: progress.phases.seconds(),
      seconds: (performance.now() - started) / 1000,
      digest: image.digest,
      cacheUsed: cache !== undefined,
    });
    return { image, pushed, stages, summary };
  } finally {
    // Cache uploads read layer files from workDir; the stage roots can go meanwhile.
    const removeRoots = inPlace ? [] : [...roots.values()].map((root) => root.then((dir) => discardTree(dir, scratchBase)).catch(() => undefined));
    await Promise.all([cache?.settle(), ...removeRoots]);
    try {
      discardTree(workDir, scratchBase);
    } catch (err) {
      logger.warn(`could not remove ${workDir}: ${describeError(err)}`);
    }
    forgetInterrupt();
    if (wipeAfter) await wipeRoot('/', wipeAfter);
  }
}

interface PlannedStage {
  /** The base image; for a stage built on an earlier stage, that stage's image is used instead. */
  base: Image;
  plan: StagePlan;
  start: StageStart;
}

/** Every stage's steps, planned before anything runs: a Dockerfile error stops the build before any work. */
async function planStages(plan: BuildPlan, stages: readonly number[], images: ImageSource, options: BuildOptions): Promise<Map<number, PlannedStage>> {
  const planned = new Map<number, PlannedStage>();
  for (const index of stages) {
    const stage = plan.stages[index]!;
    const platform = stage.platform ? parsePlatform(stage.platform) : options.platform;
    switch (stage.base.kind) {
      case 'scratch': {
        const base = emptyImage(platform, options.flavor);
        planned.set(index, { base, plan: planStage(plan, index, { kind: 'image', env: null, onBuild: null }), start: { kind: 'scratch', platform: formatPlatform(platform) } });
        break;
      }
      case 'stage': {
        const earlier = planned.get(stage.base.index);
        if (!earlier) throw new KilnError('INTERNAL', `stage ${index} needs stage ${stage.base.index}, which is not planned`);
        planned.set(index, { base: earlier.base, plan: planStage(plan, index, { kind: 'stage', exit: earlier.plan.exit }), start: { kind: 'stage', key: '' } });
        break;
      }
      case 'image': {
        const base = await images.base(stage.base.ref, platform).catch((err: unknown) => {
          throw atLine(err, `${options.dockerfileName}:${stage.from.line}`);
        });
        const config = base.config.config ?? {};
        planned.set(index, { base, plan: planStage(plan, index, { kind: 'image', env: config.Env ?? null, onBuild: config.OnBuild ?? null }), start: { kind: 'image', digest: base.digest } });
        break;
      }
    }
  }
  return planned;
}

/** Computes every stage's keys and looks them all up at once. */
async function lookUpStages(cache: LayerCache, stages: Map<number, PlannedStage>, cacheOptions: CacheOptions, env: StageEnvironment, images: ImageSource): Promise<Map<number, StageCache>> {
  const { options, plan, logger } = env;
  const layerFormat = `${options.compression}${options.compressionLevel !== undefined ? `-${options.compressionLevel}` : ''}${options.reproducible ? ' reproducible' : ''}`;
  const finalKeys = new Map<number, string>();
  const keysByStage = new Map<number, PlannedKey[]>();
  for (const [index, stage] of stages) {
    const base = plan.stages[index]!.base;
    const start = base.kind === 'stage' ? { kind: 'stage' as const, key: finalKeys.get(base.index)! } : stage.start;
    const startKey = stageStartKey(start, layerFormat);
    const name = plan.stages[index]!.name;
    const keys = await stageKeys(stage.plan.steps, startKey, {
      dockerfileName: options.dockerfileName,
      stageLabel: name ? `stage ${name}` : `stage ${index}`,
      sources: env.sources,
      stageKeys: finalKeys,
      imageDigest: async (ref) => (await images.remote(ref)).digest,
    });
    finalKeys.set(index, keys.at(-1)?.key.digest ?? startKey);
    keysByStage.set(index, keys);
    if (cacheOptions.explain) for (const { key } of keys) for (const line of formatExplain(key).split('\n')) logger.info(line);
  }
  const wanted = (step: StageStep, planned: PlannedKey): boolean => {
    if (planned.uncacheable) return false;
    const kind = step.expanded.kind;
    if (kind === 'copy' || kind === 'add') return cacheOptions.copyLayers;
    return (kind === 'run' || kind === 'workdir') && cacheOptions.runLayers;
  };
  const lookups: { index: number; step: number; key: StepKey }[] = [];
  for (const [index, keys] of keysByStage) {
    const steps = stages.get(index)!.plan.steps;
    keys.forEach((planned, step) => {
      if (wanted(steps[step]!, planned)) lookups.push({ index, step, key: planned.key });
    });
  }
  const started = performance.now();
  const answers = await cache.probe(lookups.map((lookup) => lookup.key));
  const hits = answers.filter((answer) => answer.kind === 'hit').length;
  logger.info(`cache ${cache.description}: ${hits} of ${lookups.length} steps cached (looked up in ${((performance.now() - started) / 1000).toFixed(2)} s)`);
  const result = new Map<number, StageCache>();
  for (const [index, keys] of keysByStage) {
    const probes: (ProbeResult | undefined)[] = keys.map(() => undefined);
    lookups.forEach((lookup, i) => {
      if (lookup.index === index) probes[lookup.step] = answers[i];
    });
    result.set(index, { cache, keys, probes });
  }
  return result;
}

/** One line per step the cache could not serve, saying why: the input that changed, where known. */
async function reportMisses(stage: StageCache, logger: Logger): Promise<void> {
  const lines = await Promise.all(
    stage.keys.map(async (planned, i) => {
      const probe = stage.probes[i];
      if (planned.uncacheable) return `cache skip ${planned.key.label}: ${planned.uncacheable}`;
      if (probe?.kind !== 'miss') return undefined;
      const reason = probe.reason === NOT_CACHED ? await stage.cache.explainMiss(planned.key) : probe.reason;
      return `cache miss ${planned.key.label}: ${reason}`;
    }),
  );
  for (const line of lines) if (line) logger.info(line);
}

async function planBuild(options: BuildOptions): Promise<BuildPlan> {
  let text: string;
  try {
    text = await readFile(options.dockerfilePath, 'utf8');
  } catch (err) {
    throw new KilnError('USAGE', `cannot read the Dockerfile ${options.dockerfilePath}: ${describeError(err)}; check --dockerfile and --context.`, { cause: err });
  }
  const dockerfile = parseDockerfile(text, options.dockerfileName);
  return resolveStages(dockerfile, {
    buildArgs: options.buildArgs,
    ...(options.target ? { target: options.target } : {}),
    platform: { build: hostPlatform(), target: options.platform },
  });
}

/** For each built stage, the last stage that reads its root filesystem (itself when none does). */
function lastUseOfRoots(plan: BuildPlan, built: readonly number[]): Map<number, number> {
  const last = new Map<number, number>(built.map((index) => [index, index]));
  for (const index of built) {
    for (const dependency of plan.stages[index]!.dependencies) {
      if (last.has(dependency)) last.set(dependency, Math.max(last.get(dependency)!, index));
    }
  }
  return last;
}

/** `<Dockerfile>.dockerignore` beside the Dockerfile wins over the context's `.dockerignore`. */
async function loadDockerignore(options: BuildOptions): Promise<IgnoreMatcher | undefined> {
  for (const [path, name] of [
    [`${options.dockerfilePath}.dockerignore`, `${options.dockerfileName}.dockerignore`],
    [join(options.contextDir, '.dockerignore'), '.dockerignore'],
  ] as const) {
    const text = await readFile(path, 'utf8').catch(() => undefined);
    if (text !== undefined) return createIgnoreMatcher(text, name);
  }
  return undefined;
}

function copySources(
  options: BuildOptions,
  stageRoot: (index: number) => Promise<string>,
  images: ImageSource,
  contextIgnore: IgnoreMatcher | undefined,
  workDir: string,
  ignore: IgnoreList,
  logger: Logger,
  progress: BuildProgress,
): CopySources {
  const imageRoots = new Map<string, Promise<string>>();
  return {
    contextDir: options.contextDir,
    contextIgnore,
    stageRoot,
    imageRoot(ref) {
      let root = imageRoots.get(ref);
      if (!root) {
        root = (async () => {
          const image = await images.remote(ref);
          const dir = await mkdtemp(join(workDir, 'from-image-'));
          const label = `COPY --from=${ref}`;
          await progress.extract(image.layers, label, (layers) => extractImage({ ...image, layers }, { rootDir: dir, ignore, spoolDir: workDir, logger }), (stats) => extractedLine(label, stats));
          return dir;
        })();
        imageRoots.set(ref, root);
      }
      return root;
    },
  };
}

/** Images the build reads: FROM bases (the warmer's --cache-dir first) and COPY --from images, each fetched once. */
class ImageSource {
  private readonly bases = new Map<string, Promise<Image>>();
  private readonly copied = new Map<string, Promise<Image>>();

  constructor(
    private readonly options: BuildOptions,
    private readonly deps: BuildDependencies,
    private readonly baseCache: BaseImageCache | undefined,
  ) {}

  base(ref: string, platform: Platform): Promise<Image> {
    const key = `${ref} ${formatPlatform(platform)}`;
    let image = this.bases.get(key);
    if (!image) {
      image = this.fetchBase(ref, platform);
      this.bases.set(key, image);
    }
    return image;
  }

  /** `COPY --from=<image>`: BuildKit's rule is that a --from naming no stage is an image. */
  remote(ref: string): Promise<Image> {
    let image = this.copied.get(ref);
    if (!image) {
      image = fetchRemoteImage(this.deps.client, parseReference(ref), { platform: this.options.platform }).then(
        (remote) => remote.image,
        (err: unknown) => {
          // Say both, or a typo in a stage name reads as a registry failure.
          if (!isKilnError(err)) throw err;
          throw new KilnError(err.code, `COPY --from=${ref}: no stage of the Dockerfile is named ${ref}, and pulling it as an image failed: ${err.message}`, { cause: err });
        },
      );
      this.copied.set(ref, image);
    }
    return image;
  }

  private async fetchBase(text: string, platform: Platform): Promise<Image> {
    const { logger, client } = this.deps;
    const ref = parseReference(text);
    const cached = await this.baseCache?.find(ref, platform);
    if (cached) {
      logger.info(`base image ${text} is ${cached.digest}, from ${this.baseCache!.dir}`);
      return cached;
    }
    return retryOperation(this.options.imageDownloadRetry, `pulling ${text}`, logger, async () => {
      const remote = await fetchRemoteImage(client, ref, { platform });
      logger.info(`base image ${text} is ${remote.resolved.digest}`);
      return remote.image;
    });
  }
}
