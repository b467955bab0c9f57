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
      for (const port of instruction.ports) {
        for (const key of exposedPorts(port, where)) next.ExposedPorts[key] = {};
      }
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

/**
 * One EXPOSE word as config keys: `80` is `80/tcp`, and a range `8000-8002/udp` is every port
 * in it, as Docker and BuildKit store them (the config has no notion of a range).
 */
export function exposedPorts(spec: string, where: string): string[] {
  const match = /^(\d+)(?:-(\d+))?(?:\/([a-z]+))?$/i.exec(spec);
  const refuse = (why: string): never => {
    throw new KilnError('DOCKERFILE', `${where}: EXPOSE ${spec} ${why}; write a port or range from 1 to 65535 with an optional /tcp, /udp or /sctp, e.g. 80, 53/udp or 8000-8002/tcp.`);
  };
  if (!match) return refuse(spec.includes(':') ? 'maps a host port, which EXPOSE cannot do' : 'is not a port');
  const protocol = (match[3] ?? 'tcp').toLowerCase();
  if (!['tcp', 'udp', 'sctp'].includes(protocol)) return refuse(`has the unknown protocol ${match[3]}`);
  const first = Number(match[1]);
  const last = match[2] === undefined ? first : Number(match[2]);
  if (first < 1 || first > 65535 || last < 1 || last > 65535) return refuse('is outside the port numbers');
  if (last < first) return refuse('is a range that ends before it starts');
  const keys: string[] = [];
  for (let port = first; port <= last; port++) keys.push(`${port}/${protocol}`);
  return keys;
}

export function splitEnv(entry: string): [string, string] {
  const at = entry.indexOf('=');
  return at < 0 ? [entry, ''] : [entry.slice(0, at), entry.slice(at + 1)];
}
