import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { createIgnoreMatcher, parseDockerfile, resolveStages, type BuildPlan, type IgnoreMatcher, type StageInput } from '../dockerfile/index.js';
import type { Image } from '../oci/image.js';
import { emptyImage, setContainerConfig, setCreated, zeroTimes } from '../oci/mutate.js';
import { hostPlatform, parsePlatform } from '../oci/platform.js';
import type { RegistryClient } from '../registry/client.js';
import type { PushResult } from '../registry/push.js';
import { parseReference } from '../registry/reference.js';
import { fetchRemoteImage } from '../registry/remote.js';
import { extractImage } from '../snapshot/extract.js';
import { IgnoreList } from '../snapshot/ignore.js';
import { KilnError, describeError, isKilnError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { retryOperation } from '../util/retry.js';
import type { CopySources } from './commands/copy.js';
import { atLine } from './commands/located.js';
import { chrootIsolation, noneIsolation } from './isolation/index.js';
import type { BuildOptions } from './options.js';
import { writeOutputs } from './outputs.js';
import { buildStage, type StageEnvironment, type StageResult, type StepReport } from './stage.js';

export interface BuildResult {
  image: Image;
  pushed: PushResult[];
  stages: { index: number; name?: string; steps: StepReport[] }[];
}

export interface BuildDependencies {
  client: RegistryClient;
  logger: Logger;
  output: { stdout: Writable; stderr: Writable };
}

/**
 * One build: the Dockerfile planned into stages, each needed stage built on its base, then the
 * target stage's image written to every output. Nothing is pushed unless every step succeeded.
 */
export async function executeBuild(options: BuildOptions, deps: BuildDependencies): Promise<BuildResult> {
  const { logger, client } = deps;
  const plan = await planBuild(options);
  const stagesToBuild = options.skipUnusedStages ? plan.required : plan.stages.slice(0, plan.target + 1).map((stage) => stage.index);
  if (options.isolation === 'none' && stagesToBuild.length > 1) {
    throw new KilnError('USAGE', `building ${stagesToBuild.length} stages with --isolation=none is not supported yet; use --isolation=chroot or --skip-unused-stages.`);
  }
  const scratchBase = options.rootDir ?? tmpdir();
  await mkdir(scratchBase, { recursive: true });
  const workDir = await mkdtemp(join(scratchBase, 'kiln-build-'));
  const results = new Map<number, StageResult>();
  try {
    const ignore = await IgnoreList.create({
      rootDir: options.isolation === 'none' ? '/' : workDir,
      kanikoDir: options.kanikoDir,
      ignoreVarRun: options.ignoreVarRun,
      ignorePaths: options.ignorePaths,
    });
    const env: StageEnvironment = {
      options,
      plan,
      ignore,
      isolation: options.isolation === 'none' ? noneIsolation() : chrootIsolation(),
      logger,
      output: deps.output,
      workDir,
      sources: copySources(options, results, await loadDockerignore(options), workDir, ignore, deps),
    };
    const lastUse = lastUseOfRoots(plan, stagesToBuild);
    const pulled = new Map<string, Promise<Image>>();
    for (const index of stagesToBuild) {
      const { base, input } = await stageBase(plan, index, results, options, deps, pulled);
      const rootDir = options.isolation === 'none' ? '/' : undefined;
      results.set(index, await buildStage(env, index, base, input, rootDir));
      // A stage's files are kept exactly as long as a later stage may still COPY --from them.
      for (const [stage, last] of lastUse) {
        if (last === index && options.isolation !== 'none') await rm(results.get(stage)!.rootDir, { recursive: true, force: true });
      }
    }
    let image = results.get(plan.target)!.image;
    if (options.labels.size > 0) {
      image = setContainerConfig(image, (config) => ({ ...config, Labels: { ...(config.Labels ?? {}), ...Object.fromEntries(options.labels) } }));
    }
    image = options.reproducible ? zeroTimes(image) : setCreated(image, new Date());
    const pushed = await writeOutputs(image, options, client, logger);
    return {
      image,
      pushed,
      stages: stagesToBuild.map((index) => ({ index, ...(plan.stages[index]!.name ? { name: plan.stages[index]!.name } : {}), steps: results.get(index)!.steps })),
    };
  } finally {
    await rm(workDir, { recursive: true, force: true }).catch((err: unknown) => logger.warn(`could not remove ${workDir}: ${describeError(err)}`));
  }
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

async function stageBase(
  plan: BuildPlan,
  index: number,
  results: Map<number, StageResult>,
  options: BuildOptions,
  deps: BuildDependencies,
  pulled: Map<string, Promise<Image>>,
): Promise<{ base: Image; input: StageInput }> {
  const stage = plan.stages[index]!;
  const platform = stage.platform ? parsePlatform(stage.platform) : options.platform;
  switch (stage.base.kind) {
    case 'scratch':
      return { base: emptyImage(platform, options.flavor), input: { kind: 'image', env: null, onBuild: null } };
    case 'stage': {
      const earlier = results.get(stage.base.index);
      if (!earlier) throw new KilnError('INTERNAL', `stage ${index} needs stage ${stage.base.index}, which was not built`);
      return { base: earlier.image, input: { kind: 'stage', exit: earlier.exit } };
    }
    case 'image': {
      const baseRef = stage.base.ref;
      const key = `${baseRef} ${JSON.stringify(platform)}`;
      let image = pulled.get(key);
      if (!image) {
        const ref = parseReference(baseRef);
        image = retryOperation(options.imageDownloadRetry, `pulling ${baseRef}`, deps.logger, async () => {
          const remote = await fetchRemoteImage(deps.client, ref, { platform });
          deps.logger.info(`base image ${baseRef} is ${remote.resolved.digest}`);
          return remote.image;
        });
        pulled.set(key, image);
      }
      const base = await image.catch((err: unknown) => {
        throw atLine(err, `${options.dockerfileName}:${stage.from.line}`);
      });
      const config = base.config.config ?? {};
      return { base, input: { kind: 'image', env: config.Env ?? null, onBuild: config.OnBuild ?? null } };
    }
  }
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

function copySources(options: BuildOptions, results: Map<number, StageResult>, contextIgnore: IgnoreMatcher | undefined, workDir: string, ignore: IgnoreList, deps: BuildDependencies): CopySources {
  const imageRoots = new Map<string, Promise<string>>();
  return {
    contextDir: options.contextDir,
    contextIgnore,
    stageRoot(index) {
      const result = results.get(index);
      if (!result) throw new KilnError('INTERNAL', `COPY --from stage ${index}, which was not built`);
      return result.rootDir;
    },
    imageRoot(ref) {
      let root = imageRoots.get(ref);
      if (!root) {
        root = (async () => {
          const remote = await fetchRemoteImage(deps.client, parseReference(ref), { platform: options.platform }).catch((err: unknown) => {
            // BuildKit's rule: a --from that names no stage is an image. Say both, or a typo in a
            // stage name reads as a registry failure.
            if (!isKilnError(err)) throw err;
            throw new KilnError(err.code, `COPY --from=${ref}: no stage of the Dockerfile is named ${ref}, and pulling it as an image failed: ${err.message}`, { cause: err });
          });
          const dir = await mkdtemp(join(workDir, 'from-image-'));
          await extractImage(remote.image, { rootDir: dir, ignore, spoolDir: workDir, logger: deps.logger });
          return dir;
        })();
        imageRoots.set(ref, root);
      }
      return root;
    },
  };
}

