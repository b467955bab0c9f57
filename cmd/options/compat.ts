import type { Argv } from 'yargs';
import { KilnError } from '../../src/util/errors.js';

/**
 * kaniko v1.23.2 flags that kiln has no option of its own for. A pipeline moving from kaniko
 * keeps its command line, so each of them is either accepted (where kaniko's behaviour is
 * already what kiln does) or refused by name with what to do instead; none is ever
 * "unknown", and none is silently dropped. kaniko flags kiln implements, and their old
 * spellings, are ordinary options of `kiln build` and `kiln warm`.
 */
export interface KanikoOnlyFlag {
  name: string;
  shorthand?: string;
  type: 'boolean' | 'string' | 'number';
  /** kaniko's executor (`kiln build`) and/or its warmer (`kiln warm`). */
  commands: readonly CompatCommand[];
  /**
   * `no-op`: accepted whatever its value, as kiln already behaves as the flag asks.
   * `default-only`: accepted at kaniko's default, which is what kiln does; refused otherwise.
   * `refused`: refused whenever it is given.
   */
  handling: 'no-op' | 'default-only' | 'refused';
  kanikoDefault?: boolean | number;
  /** For `no-op`: why it changes nothing. Otherwise: why kiln refuses it and what to do, after "not supported by kiln: ". */
  reason: string;
}

export type CompatCommand = 'build' | 'warm';

export const KANIKO_ONLY_FLAGS: readonly KanikoOnlyFlag[] = [
  {
    name: 'use-new-run',
    type: 'boolean',
    commands: ['build'],
    handling: 'default-only',
    kanikoDefault: false,
    reason: "kiln finds what a RUN changed with its own snapshotter, not kaniko's experimental run; remove it, and pick how changes are found with --snapshot-mode",
  },
  {
    name: 'skip-push-permission-check',
    type: 'boolean',
    commands: ['build'],
    handling: 'no-op',
    reason: 'kiln never probes push access before building; a refused push fails the build when it happens',
  },
  {
    name: 'image-fs-extract-retry',
    type: 'number',
    commands: ['build'],
    handling: 'default-only',
    kanikoDefault: 0,
    reason: 'kiln retries each registry request on transient failures and a whole pull with --image-download-retry, but never a whole extraction; use --image-download-retry instead',
  },
  {
    name: 'force-build-metadata',
    type: 'boolean',
    commands: ['build'],
    handling: 'default-only',
    kanikoDefault: false,
    reason: 'kiln never adds a layer for a step that changes only metadata; remove it',
  },
  {
    name: 'push-ignore-immutable-tag-errors',
    type: 'boolean',
    commands: ['build'],
    handling: 'default-only',
    kanikoDefault: false,
    reason: 'a push refused because the tag is immutable fails the build; push to a new tag instead',
  },
  {
    name: 'bucket',
    shorthand: 'b',
    type: 'string',
    commands: ['build'],
    handling: 'refused',
    reason: 'kiln reads no build context from a cloud bucket; download the archive and pass --context tar://FILE, or give --context an https:// URL of it',
  },
  {
    // Registered by a vendored package into kaniko's global flag set (hidden in kaniko's help).
    name: 'azure-container-registry-config',
    type: 'string',
    commands: ['build', 'warm'],
    handling: 'refused',
    reason: 'kiln reads registry credentials from the docker config.json only; put the credentials for the registry in $DOCKER_CONFIG/config.json instead',
  },
];

const GROUP = 'kaniko compatibility:';

/** Adds the kaniko-only flags of `command` to its parser, and refuses those kiln cannot honour. */
export function withKanikoCompat<T>(argv: Argv<T>, command: CompatCommand): Argv<T> {
  const flags = KANIKO_ONLY_FLAGS.filter((flag) => flag.commands.includes(command));
  let chain = argv;
  for (const flag of flags) {
    chain = chain.option(flag.name, {
      type: flag.type,
      ...(flag.shorthand ? { alias: flag.shorthand } : {}),
      // Refused flags stay out of --help; accepted ones say they change nothing.
      hidden: flag.handling === 'refused',
      describe: flag.handling === 'no-op' ? `Accepted for kaniko; no effect: ${flag.reason}` : `Accepted for kaniko at ${String(flag.kanikoDefault)} only`,
      group: GROUP,
    }) as Argv<T>;
  }
  return chain.check((args) => {
    for (const flag of flags) refuseUnsupported(flag, (args as Record<string, unknown>)[flag.name]);
    return true;
  });
}

/** Throws the one-sentence refusal for `flag` given `value` (undefined: not given). */
export function refuseUnsupported(flag: KanikoOnlyFlag, value: unknown): void {
  if (value === undefined || flag.handling === 'no-op') return;
  if (flag.handling === 'default-only' && value === flag.kanikoDefault) return;
  const shown = flag.type === 'boolean' && value === true ? '' : `=${String(value)}`;
  throw new KilnError('USAGE', `--${flag.name}${shown} is not supported by kiln: ${flag.reason}.`);
}
