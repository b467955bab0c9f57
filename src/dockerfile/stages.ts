/**
 * resolveStages: which stage is built from what, what the target needs, and the values of the
 * global ARGs. FROM lines are expanded here with the global scope only (global ARGs, --build-arg
 * values for them, and the automatic platform arguments), as Docker does.
 */
import { parsePlatform } from '../oci/platform.js';
import type { Platform } from '../oci/types.js';
import { isKilnError, KilnError } from '../util/errors.js';
import { PLATFORM_ARGS, PROXY_ARGS, platformArgs, resolveBuildArgValues } from './build-args.js';
import { dockerfileError, type SourceLocation } from './errors.js';
import { expandString } from './expand.js';
import type { Dockerfile, Instruction, Stage } from './types.js';

export interface ResolveOptions {
  /** `--build-arg K=V` as K → V; `--build-arg K` as K → undefined (the value comes from the environment). */
  buildArgs: ReadonlyMap<string, string | undefined>;
  /** `--target`: the last stage to build; the last stage of the file by default. */
  target?: string;
  platform: { build: Platform; target: Platform };
  /** Where a value-less `--build-arg K` is looked up; process.env by default. */
  environment?: Readonly<Record<string, string | undefined>>;
}

export type StageBase = { kind: 'image'; ref: string } | { kind: 'stage'; index: number } | { kind: 'scratch' };

/** Where COPY/ADD (or a RUN mount) reads from. */
export type StageSource = { kind: 'context' } | { kind: 'stage'; index: number } | { kind: 'image'; ref: string };

export interface ResolvedStage extends Stage {
  /** The FROM image after expansion with the global scope. */
  image: string;
  base: StageBase;
  /** `FROM --platform`, expanded; absent when the FROM line gives none. */
  platform?: string;
  /** Earlier stages this one needs: its base and the stages it copies or mounts from. */
  dependencies: number[];
}

export interface BuildPlan {
  dockerfile: Dockerfile;
  stages: ResolvedStage[];
  /** Index of the stage `--target` names (or the last stage). */
  target: number;
  /** Indexes of the stages the target needs, itself included, ascending: what --skip-unused-stages builds. */
  required: number[];
  /** The global scope: platform arguments and global ARGs with their values. */
  globalArgs: ReadonlyMap<string, string>;
  /** --build-arg values after environment look-ups. */
  buildArgs: ReadonlyMap<string, string>;
  /** --build-arg names no ARG declares (Docker warns that they were not consumed). */
  unusedBuildArgs: string[];
}

export function resolveStages(dockerfile: Dockerfile, options: ResolveOptions): BuildPlan {
  const buildArgs = resolveBuildArgValues(options.buildArgs, options.environment ?? process.env);
  const globalArgs = globalScope(dockerfile, buildArgs, options.platform);
  const stages: ResolvedStage[] = [];

  for (const stage of dockerfile.stages) {
    const at = { file: dockerfile.file, line: stage.from.line };
    const image = expandString(stage.from.image, globalArgs, { escape: dockerfile.escape, at });
    if (image === '') {
      throw dockerfileError(at, `FROM ${stage.from.image} expands to an empty image name; declare and set the ARG it uses before the first FROM.`);
    }
    const resolved: ResolvedStage = { ...stage, image, base: baseOf(image, stages), dependencies: [] };
    if (stage.from.platform !== undefined) resolved.platform = expandPlatform(stage.from.platform, globalArgs, dockerfile, at);
    stages.push(resolved);
  }
  for (const stage of stages) stage.dependencies = dependenciesOf(stage, stages, dockerfile.file);

  const target = targetIndex(stages, options.target, dockerfile.file);
  return {
    dockerfile,
    stages,
    target,
    required: requiredStages(stages, target),
    globalArgs,
    buildArgs,
    unusedBuildArgs: unusedBuildArgs(dockerfile, buildArgs),
  };
}

function globalScope(dockerfile: Dockerfile, buildArgs: ReadonlyMap<string, string>, platforms: ResolveOptions['platform']): Map<string, string> {
  const scope = platformArgs(platforms);
  for (const name of PLATFORM_ARGS) {
    const given = buildArgs.get(name);
    if (given !== undefined) scope.set(name, given);
  }
  for (const instruction of dockerfile.globalArgs) {
    const at = { file: dockerfile.file, line: instruction.line };
    for (const arg of instruction.args) {
      const given = buildArgs.get(arg.name);
      const value = given ?? (arg.defaultValue === undefined ? undefined : expandString(arg.defaultValue, scope, { escape: dockerfile.escape, at }));
      if (value !== undefined) scope.set(arg.name, value);
    }
  }
  return scope;
}

function expandPlatform(text: string, scope: ReadonlyMap<string, string>, dockerfile: Dockerfile, at: SourceLocation): string {
  const platform = expandString(text, scope, { escape: dockerfile.escape, at });
  if (platform === '') {
    throw dockerfileError(at, `--platform=${text} expands to nothing; set the ARG it uses, or write e.g. --platform=linux/amd64.`);
  }
  try {
    parsePlatform(platform);
  } catch (err) {
    if (!isKilnError(err)) throw err;
    throw dockerfileError(at, `--platform=${platform} is not a platform; write os/architecture[/variant], e.g. linux/arm64.`, err);
  }
  return platform;
}

function baseOf(image: string, earlier: readonly ResolvedStage[]): StageBase {
  const lowered = image.toLowerCase();
  if (lowered === 'scratch') return { kind: 'scratch' };
  const stage = earlier.find((candidate) => candidate.name === lowered);
  return stage ? { kind: 'stage', index: stage.index } : { kind: 'image', ref: image };
}

/**
 * Resolves `COPY --from` (or a RUN mount's `from=`): an earlier stage's name or index, else an
 * image. Docker does not expand variables here.
 */
export function resolveStageSource(
  from: string | undefined,
  stageIndex: number,
  stages: readonly Pick<ResolvedStage, 'index' | 'name' | 'from'>[],
  at: SourceLocation,
): StageSource {
  if (from === undefined) return { kind: 'context' };
  const byName = stages.find((stage) => stage.name !== undefined && stage.name === from.toLowerCase());
  const byIndex = /^[0-9]+$/.test(from) ? Number(from) : undefined;
  if (byIndex !== undefined && byIndex >= stages.length) {
    throw dockerfileError(at, `--from=${from} names stage ${byIndex}, but the Dockerfile has ${stages.length} stages (counted from 0); use an earlier stage's index or name.`);
  }
  const stage = byName ?? (byIndex === undefined ? undefined : stages[byIndex]);
  if (!stage) return { kind: 'image', ref: from };
  if (stage.index >= stageIndex) {
    throw dockerfileError(at, `--from=${from} names the stage on line ${stage.from.line}, which is not earlier than this one; a stage can only use stages defined before it.`);
  }
  return { kind: 'stage', index: stage.index };
}

/** The `from=` field of a `--mount` value (comma-separated, fields may be double-quoted). */
export function mountSource(mount: string): string | undefined {
  for (const field of mount.match(/("[^"]*"|[^,])+/g) ?? []) {
    const unquoted = field.replace(/"([^"]*)"/g, '$1');
    const equals = unquoted.indexOf('=');
    if (equals > 0 && unquoted.slice(0, equals).trim().toLowerCase() === 'from') return unquoted.slice(equals + 1);
  }
  return undefined;
}

/** The stage sources an instruction reads: COPY/ADD --from, RUN --mount from=, and ONBUILD's trigger. */
export function sourcesOf(instruction: Instruction, stageIndex: number, stages: readonly ResolvedStage[], file: string): StageSource[] {
  const at = { file, line: instruction.line };
  switch (instruction.kind) {
    case 'copy':
      return [resolveStageSource(instruction.from, stageIndex, stages, at)];
    case 'run':
      return instruction.mounts.map((mount) => resolveStageSource(mountSource(mount), stageIndex, stages, at));
    default:
      return [];
  }
}

function dependenciesOf(stage: ResolvedStage, stages: readonly ResolvedStage[], file: string): number[] {
  const needed = new Set<number>();
  if (stage.base.kind === 'stage') {
    needed.add(stage.base.index);
    // A stage's ONBUILD triggers run in the stages built on it, and may read other stages.
    for (const instruction of stages[stage.base.index]!.instructions) {
      if (instruction.kind !== 'onbuild') continue;
      for (const source of sourcesOf(instruction.trigger, stage.index, stages, file)) if (source.kind === 'stage') needed.add(source.index);
    }
  }
  for (const instruction of stage.instructions) {
    for (const source of sourcesOf(instruction, stage.index, stages, file)) if (source.kind === 'stage') needed.add(source.index);
  }
  return [...needed].sort((a, b) => a - b);
}

function targetIndex(stages: readonly ResolvedStage[], target: string | undefined, file: string): number {
  if (target === undefined) return stages.length - 1;
  const stage = stages.find((candidate) => candidate.name === target.toLowerCase());
  if (stage) return stage.index;
  const names = stages.flatMap((candidate) => (candidate.name === undefined ? [] : [candidate.name]));
  const known = names.length > 0 ? `its named stages are ${names.join(', ')}` : 'it has no named stages (name one with FROM image AS name)';
  throw new KilnError('USAGE', `--target "${target}" is not a stage of ${file}; ${known}.`);
}

function requiredStages(stages: readonly ResolvedStage[], target: number): number[] {
  const needed = new Set<number>();
  const visit = (index: number): void => {
    if (needed.has(index)) return;
    needed.add(index);
    for (const dependency of stages[index]!.dependencies) visit(dependency);
  };
  visit(target);
  return [...needed].sort((a, b) => a - b);
}

function unusedBuildArgs(dockerfile: Dockerfile, buildArgs: ReadonlyMap<string, string>): string[] {
  const declared = new Set<string>(PLATFORM_ARGS);
  const collect = (instruction: Instruction): void => {
    if (instruction.kind === 'arg') for (const arg of instruction.args) declared.add(arg.name);
    if (instruction.kind === 'onbuild') collect(instruction.trigger);
  };
  dockerfile.globalArgs.forEach(collect);
  for (const stage of dockerfile.stages) stage.instructions.forEach(collect);
  return [...buildArgs.keys()].filter((name) => !declared.has(name) && !PROXY_ARGS.has(name));
}
