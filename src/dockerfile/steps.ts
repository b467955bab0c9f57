/**
 * planStage: a stage's instructions, expanded, each with the ARG values and ENV it sees — what
 * the executor runs and what the cache key hashes. Docker's scoping, as BuildKit implements it:
 *
 * - A stage starts from its base image's ENV (PATH added when missing), or from everything an
 *   earlier stage it is built on had: ENV, and ARGs too.
 * - `ARG NAME` takes the --build-arg value, else the default (expanded), else, when there is no
 *   default, the global ARG of that name. ARGs are visible to later instructions and to RUN's
 *   environment, never to the image config.
 * - ENV sets both the image config and what later instructions see; the last ARG or ENV of a
 *   name wins. All pairs of one ENV are expanded with the values from before that ENV.
 * - ONBUILD triggers of the base run first.
 * - Proxy build args reach RUN's environment without being declared.
 */
import { PROXY_ARGS } from './build-args.js';
import { dockerfileError, type SourceLocation } from './errors.js';
import { expandInstruction, expandString } from './expand.js';
import { buildInstruction } from './instructions.js';
import { scanDockerfile } from './lines.js';
import { resolveStageSource, type BuildPlan, type StageSource } from './stages.js';
import type { AddInstruction, ArgDeclaration, ArgInstruction, CopyInstruction, Instruction, StopsignalInstruction, TriggerInstruction } from './types.js';

/** The PATH Docker gives a Linux image config that has none. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export type StageInstruction = Exclude<Instruction, { kind: 'from' }>;

/** What a stage starts from. */
export type StageInput =
  /** A base image's config (`{}` for scratch): its Env and its ONBUILD triggers. */
  | { kind: 'image'; env?: readonly string[] | null; onBuild?: readonly string[] | null }
  /** An earlier stage of this build. */
  | { kind: 'stage'; exit: StageExit };

/** The state a stage ends in, for stages built on it and for the image config. */
export interface StageExit {
  /** The image config's Env. */
  env: ReadonlyMap<string, string>;
  /** ENV and ARG values together, as later instructions see them. */
  vars: ReadonlyMap<string, string>;
  args: ReadonlyMap<string, string>;
  /** This stage's own ONBUILD expressions, for the image config (the base's triggers are consumed). */
  onBuild: readonly string[];
}

export interface StageStep {
  /** As written. Triggers from the base carry the stage's FROM line. */
  instruction: StageInstruction;
  /** Words expanded as Docker expands them; for ARG, `defaultValue` holds the value the ARG takes. */
  expanded: StageInstruction;
  origin: 'dockerfile' | 'onbuild-trigger';
  /** ARGs with a value, visible to this instruction. */
  args: ReadonlyMap<string, string>;
  /** The image config's ENV as this instruction sees it. */
  env: ReadonlyMap<string, string>;
  /** KEY=VALUE pairs a RUN process at this point gets: ENV and ARGs, then undeclared proxy build args. */
  processEnv: readonly string[];
  /** For COPY and ADD: where the sources are read from. */
  source?: StageSource;
}

export interface StagePlan {
  steps: StageStep[];
  exit: StageExit;
}

function parseEnvList(list: readonly string[] | null | undefined): Map<string, string> {
  const env = new Map<string, string>();
  for (const entry of list ?? []) {
    const equals = entry.indexOf('=');
    if (equals < 0) env.set(entry, '');
    else env.set(entry.slice(0, equals), entry.slice(equals + 1));
  }
  if (!env.has('PATH')) env.set('PATH', DEFAULT_PATH);
  return env;
}

export function planStage(plan: BuildPlan, stageIndex: number, input: StageInput): StagePlan {
  const stage = plan.stages[stageIndex];
  if (!stage) throw new RangeError(`stage ${stageIndex} does not exist`);
  const { file, escape } = plan.dockerfile;
  const fromAt = { file, line: stage.from.line };

  const env = input.kind === 'image' ? parseEnvList(input.env) : new Map(input.exit.env);
  const vars = input.kind === 'image' ? new Map(env) : new Map(input.exit.vars);
  const args = input.kind === 'image' ? new Map<string, string>() : new Map(input.exit.args);
  const triggers = input.kind === 'image' ? (input.onBuild ?? []) : input.exit.onBuild;
  const onBuild: string[] = [];
  const steps: StageStep[] = [];

  const work: { instruction: StageInstruction; origin: StageStep['origin'] }[] = [
    ...triggers.map((text) => ({ instruction: parseTrigger(text, fromAt) as StageInstruction, origin: 'onbuild-trigger' as const })),
    ...stage.instructions.map((instruction) => ({ instruction, origin: 'dockerfile' as const })),
  ];

  for (const { instruction, origin } of work) {
    const at = { file, line: instruction.line };
    const step: StageStep = {
      instruction,
      expanded: instruction,
      origin,
      args: new Map(args),
      env: new Map(env),
      processEnv: processEnvOf(vars, plan.buildArgs),
    };

    switch (instruction.kind) {
      case 'arg':
        step.expanded = declareArgs(instruction, plan, args, vars);
        break;
      case 'env': {
        const expanded = expandInstruction(instruction, vars, escape, file);
        for (const { key, value } of expanded.pairs) {
          env.set(key, value);
          vars.set(key, value);
        }
        step.expanded = expanded;
        break;
      }
      case 'onbuild':
        onBuild.push(instruction.expression);
        break;
      case 'copy':
      case 'add': {
        const expanded = expandInstruction(instruction, vars, escape, file);
        checkCopyFlags(expanded, at);
        step.expanded = expanded;
        step.source = resolveStageSource(instruction.kind === 'copy' ? instruction.from : undefined, stageIndex, plan.stages, at);
        break;
      }
      case 'stopsignal': {
        const expanded = expandInstruction(instruction, vars, escape, file);
        checkSignal(expanded, at);
        step.expanded = expanded;
        break;
      }
      default:
        step.expanded = expandInstruction(instruction, vars, escape, file);
    }
    steps.push(step);
  }
  return { steps, exit: { env, vars, args, onBuild } };
}

/**
 * An ARG takes the --build-arg value, else its expanded default, else the global ARG's value.
 * Unlike the pairs of one ENV, each ARG of a line sees the ones before it.
 */
function declareArgs(instruction: ArgInstruction, plan: BuildPlan, args: Map<string, string>, vars: Map<string, string>): ArgInstruction {
  const at = { file: plan.dockerfile.file, line: instruction.line };
  const declared: ArgDeclaration[] = [];
  for (const arg of instruction.args) {
    const value =
      plan.buildArgs.get(arg.name) ??
      (arg.defaultValue !== undefined
        ? expandString(arg.defaultValue, vars, { escape: plan.dockerfile.escape, at })
        : plan.globalArgs.get(arg.name));
    if (value === undefined) {
      declared.push({ name: arg.name });
      continue;
    }
    declared.push({ name: arg.name, defaultValue: value });
    args.set(arg.name, value);
    vars.set(arg.name, value);
  }
  return { ...instruction, args: declared };
}

function processEnvOf(vars: ReadonlyMap<string, string>, buildArgs: ReadonlyMap<string, string>): string[] {
  const entries = [...vars].map(([key, value]) => `${key}=${value}`);
  for (const [name, value] of buildArgs) {
    if (PROXY_ARGS.has(name) && !vars.has(name)) entries.push(`${name}=${value}`);
  }
  return entries;
}

const TRIGGER_REFUSED = new Set(['from', 'onbuild', 'maintainer']);

/**
 * Parses one ONBUILD trigger of the base, as a line of its own (so with the default escape
 * character); its errors point at the FROM line that pulled it in.
 */
function parseTrigger(text: string, fromAt: SourceLocation): TriggerInstruction {
  const lines = scanDockerfile(text, fromAt.file).lines;
  if (lines.length !== 1) {
    throw dockerfileError(fromAt, `the base image has an ONBUILD trigger that is not one instruction ("${text}"); rebuild the base image or use another one.`);
  }
  const instruction = buildInstruction({ ...lines[0]!, startLine: fromAt.line, endLine: fromAt.line }, fromAt.file, '\\');
  if (TRIGGER_REFUSED.has(instruction.kind)) {
    throw dockerfileError(fromAt, `the base image has an ONBUILD trigger "${text}", and ${instruction.kind.toUpperCase()} cannot be a trigger; use another base image.`);
  }
  return instruction as TriggerInstruction;
}

const OCTAL_MODE = /^[0-7]{1,4}$/;
const SYMBOLIC_MODE = /^[ugoa]*[-+=]([rwxXst]*|[ugo])([-+=]([rwxXst]*|[ugo]))*(,[ugoa]*[-+=]([rwxXst]*|[ugo])([-+=]([rwxXst]*|[ugo]))*)*$/;
const CHECKSUM = /^(sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128}|[a-f0-9]{40}|[a-f0-9]{64})$/;

function checkCopyFlags(expanded: CopyInstruction | AddInstruction, at: SourceLocation): void {
  if (expanded.chmod !== undefined && !OCTAL_MODE.test(expanded.chmod) && !SYMBOLIC_MODE.test(expanded.chmod)) {
    throw dockerfileError(at, `--chmod=${expanded.chmod} is not a file mode; write an octal mode up to 7777 (e.g. 755) or a symbolic one (e.g. u+x).`);
  }
  if (expanded.kind === 'add' && expanded.checksum !== undefined && !CHECKSUM.test(expanded.checksum)) {
    throw dockerfileError(at, `--checksum=${expanded.checksum} is not a digest; write e.g. --checksum=sha256:<64 hex digits>.`);
  }
}

const SIGNALS = new Set([
  'ABRT', 'ALRM', 'BUS', 'CHLD', 'CLD', 'CONT', 'FPE', 'HUP', 'ILL', 'INT', 'IO', 'IOT', 'KILL', 'PIPE', 'POLL', 'PROF', 'PWR',
  'QUIT', 'SEGV', 'STKFLT', 'STOP', 'SYS', 'TERM', 'TRAP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'USR1', 'USR2', 'VTALRM', 'WINCH',
  'XCPU', 'XFSZ', 'RTMIN', 'RTMAX',
  ...Array.from({ length: 15 }, (_, i) => `RTMIN+${i + 1}`),
  ...Array.from({ length: 14 }, (_, i) => `RTMAX-${i + 1}`),
]);

function checkSignal(expanded: StopsignalInstruction, at: SourceLocation): void {
  const signal = expanded.signal;
  const number = /^[0-9]+$/.test(signal) ? Number(signal) : undefined;
  const valid = number !== undefined ? number > 0 && number <= 64 : SIGNALS.has(signal.toUpperCase().replace(/^SIG/, ''));
  if (!valid) throw dockerfileError(at, `STOPSIGNAL ${signal} is not a signal; write a name such as SIGTERM or a number such as 15.`);
}
