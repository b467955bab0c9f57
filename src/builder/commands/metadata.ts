import type { CommandLine, Healthcheck, StageInstruction } from '../../dockerfile/index.js';
import type { ContainerConfig, HealthConfig } from '../../oci/types.js';
import { KilnError } from '../../util/errors.js';
import type { StepOutcome } from './types.js';

const DEFAULT_SHELL = ['/bin/sh', '-c'];

/** The shell-form wrapper in force: SHELL if set, else Docker's /bin/sh -c. */
export function shellOf(config: ContainerConfig): string[] {
  return config.Shell && config.Shell.length > 0 ? [...config.Shell] : [...DEFAULT_SHELL];
}

/** Exec form as given; shell form wrapped in the current SHELL, as Docker stores CMD and ENTRYPOINT. */
export function commandArgs(command: CommandLine, config: ContainerConfig): string[] {
  return command.form === 'exec' ? [...command.args] : [...shellOf(config), command.text];
}

/**
 * Instructions that only change the image config. Returns undefined for instructions that
 * touch the filesystem (RUN, COPY, ADD, WORKDIR), which have handlers of their own.
 */
export function applyMetadata(instruction: StageInstruction, config: ContainerConfig, where: string, cmdSetInStage: boolean): StepOutcome | undefined {
  const next: ContainerConfig = { ...config };
  const done = (extra: Partial<StepOutcome> = {}): StepOutcome => ({ config: next, effect: { kind: 'metadata' }, ...extra });
  switch (instruction.kind) {
    case 'env': {
      const env = new Map((config.Env ?? []).map((entry) => splitEnv(entry)));
      for (const { key, value } of instruction.pairs) env.set(key, value);
      next.Env = [...env].map(([key, value]) => `${key}=${value}`);
      return done();
    }
    case 'label':
      next.Labels = { ...(config.Labels ?? {}) };
      for (const { key, value } of instruction.pairs) next.Labels[key] = value;
      return done();
    case 'expose':
      next.ExposedPorts = { ...(config.ExposedPorts ?? {}) };
      for (const port of instruction.ports) next.ExposedPorts[normalizePort(port, where)] = {};
      return done();
    case 'volume':
      next.Volumes = { ...(config.Volumes ?? {}) };
      for (const path of instruction.paths) next.Volumes[path] = {};
      return done();
    case 'user':
      next.User = instruction.user;
      return done();
    case 'entrypoint':
      next.Entrypoint = commandArgs(instruction.command, config);
      // Docker: a new ENTRYPOINT drops the CMD inherited from the base image.
      if (!cmdSetInStage) next.Cmd = null;
      return done();
    case 'cmd':
      next.Cmd = commandArgs(instruction.command, config);
      return done();
    case 'shell':
      next.Shell = [...instruction.shell];
      return done();
    case 'healthcheck':
      next.Healthcheck = healthConfig(instruction.check);
      return done();
    case 'stopsignal':
      next.StopSignal = instruction.signal;
      return done();
    case 'onbuild':
      next.OnBuild = [...(config.OnBuild ?? []), instruction.expression];
      return done();
    case 'maintainer':
      return done({ author: instruction.maintainer });
    case 'arg':
      return done();
    default:
      return undefined;
  }
}

function healthConfig(check: Healthcheck): HealthConfig {
  if (check.type === 'none') return { Test: ['NONE'] };
  const test = check.command.form === 'exec' ? ['CMD', ...check.command.args] : ['CMD-SHELL', check.command.text];
  const health: HealthConfig = { Test: test };
  if (check.interval !== undefined) health.Interval = check.interval;
  if (check.timeout !== undefined) health.Timeout = check.timeout;
  if (check.startPeriod !== undefined) health.StartPeriod = check.startPeriod;
  if (check.startInterval !== undefined) health.StartInterval = check.startInterval;
  if (check.retries !== undefined) health.Retries = check.retries;
  return health;
}

function normalizePort(port: string, where: string): string {
  const match = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(port);
  if (!match) throw new KilnError('DOCKERFILE', `${where}: EXPOSE ${port} is not a port; write it as 80, 80/tcp or 53/udp.`);
  return `${match[1]}${match[2] ? `-${match[2]}` : ''}/${(match[3] ?? 'tcp').toLowerCase()}`;
}

export function splitEnv(entry: string): [string, string] {
  const at = entry.indexOf('=');
  return at < 0 ? [entry, ''] : [entry.slice(0, at), entry.slice(at + 1)];
}
