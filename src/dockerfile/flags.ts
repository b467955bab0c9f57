/**
 * Instruction flags (`COPY --from=build`): which instruction takes which flag and of what type,
 * checked the way BuildKit's BFlags does — `=value` required for string flags, `--flag`,
 * `--flag=true|false` for booleans, repeatable flags collected in order.
 */
import { dockerfileError, type SourceLocation } from './errors.js';

type FlagType = 'string' | 'strings' | 'bool';

const FLAG_SPECS: Readonly<Record<string, Readonly<Record<string, FlagType>>>> = {
  from: { platform: 'string' },
  run: { mount: 'strings', network: 'string', security: 'string' },
  copy: { from: 'string', chown: 'string', chmod: 'string', link: 'bool', parents: 'bool', exclude: 'strings' },
  add: { chown: 'string', chmod: 'string', checksum: 'string', 'keep-git-dir': 'bool', link: 'bool', exclude: 'strings' },
  healthcheck: { interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string' },
};

export class InstructionFlags {
  private readonly strings = new Map<string, string>();
  private readonly lists = new Map<string, string[]>();
  private readonly bools = new Map<string, boolean>();

  string(name: string): string | undefined {
    return this.strings.get(name);
  }

  list(name: string): string[] {
    return this.lists.get(name) ?? [];
  }

  bool(name: string): boolean {
    return this.bools.get(name) ?? false;
  }

  static parse(keyword: string, words: readonly string[], at: SourceLocation): InstructionFlags {
    const instruction = keyword.toLowerCase();
    const spec = FLAG_SPECS[instruction];
    const upper = keyword.toUpperCase();
    const flags = new InstructionFlags();
    const seen = new Set<string>();

    for (const word of words) {
      if (word === '--') break;
      const body = word.slice(2);
      const equals = body.indexOf('=');
      const name = equals < 0 ? body : body.slice(0, equals);
      const value = equals < 0 ? undefined : body.slice(equals + 1);
      const type = spec?.[name];
      if (!type) throw dockerfileError(at, unknownFlagSentence(upper, name));
      if (seen.has(name) && type !== 'strings') throw dockerfileError(at, `--${name} is given more than once; give it once.`);
      seen.add(name);

      if (type === 'bool') {
        if (value === '') throw dockerfileError(at, `--${name}= has no value; write --${name}, --${name}=true or --${name}=false.`);
        const lowered = value?.toLowerCase();
        if (lowered !== undefined && lowered !== 'true' && lowered !== 'false') {
          throw dockerfileError(at, `--${name}=${value} is not a boolean; write --${name}, --${name}=true or --${name}=false.`);
        }
        flags.bools.set(name, lowered !== 'false');
        continue;
      }
      if (value === undefined) throw dockerfileError(at, `--${name} needs a value; write --${name}=<value>.`);
      if (type === 'string') flags.strings.set(name, value);
      else flags.lists.set(name, [...flags.list(name), value]);
    }
    return flags;
  }
}

function unknownFlagSentence(instruction: string, name: string): string {
  const spec = FLAG_SPECS[instruction.toLowerCase()];
  const owners = Object.entries(FLAG_SPECS)
    .filter(([, flags]) => name in flags)
    .map(([owner]) => owner.toUpperCase());
  if (!spec) {
    return `${instruction} takes no flags, but --${name} was given; remove it.`;
  }
  const accepted = Object.keys(spec).map((flag) => `--${flag}`).join(', ');
  if (owners.length > 0) {
    return `--${name} is a flag of ${owners.join(' and ')}, not of ${instruction}; remove it (${instruction} takes ${accepted}).`;
  }
  return `unknown flag --${name} on ${instruction}; ${instruction} takes ${accepted}.`;
}
