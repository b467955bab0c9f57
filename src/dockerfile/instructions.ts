/**
 * Builds one typed Instruction from one logical line, with the argument rules Docker applies to
 * each instruction: which take the JSON (exec) form, which split on whitespace, which keep the
 * whole rest as one string, and how many arguments each needs.
 */
import { parseGoDuration } from '../util/duration.js';
import { dockerfileError, type SourceLocation } from './errors.js';
import { InstructionFlags } from './flags.js';
import { parseHeredocMarker, stripLeadingTabs } from './heredoc.js';
import type { HeredocBody, LogicalLine } from './lines.js';
import { ExpansionError, lexWord, type EscapeChar } from './lex.js';
import type {
  ArgDeclaration,
  CommandLine,
  Healthcheck,
  HealthcheckOptions,
  Heredoc,
  Instruction,
  InstructionKind,
  InstructionSource,
  KeyValue,
  RunInstruction,
  TriggerInstruction,
} from './types.js';
import { parseJsonArgs, splitCommand, splitFirstWord, splitPlainWords, splitQuotedWords, trimGoSpace } from './words.js';

const KINDS: readonly InstructionKind[] = [
  'from', 'run', 'copy', 'add', 'env', 'arg', 'label', 'expose', 'volume', 'user', 'workdir',
  'entrypoint', 'cmd', 'shell', 'healthcheck', 'stopsignal', 'onbuild', 'maintainer',
];

/** Instructions for which `[...]` means the exec (JSON) form; elsewhere it is refused. */
const TAKES_JSON = new Set<InstructionKind>(['run', 'cmd', 'entrypoint', 'shell', 'healthcheck', 'copy', 'add', 'volume', 'onbuild']);

interface LineContext {
  at: SourceLocation;
  source: InstructionSource;
  flags: InstructionFlags;
  rest: string;
  heredocs: HeredocBody[];
  escape: EscapeChar;
}

export function buildInstruction(line: LogicalLine, file: string, escape: EscapeChar): Instruction {
  return buildFromText(line.text, line, file, escape);
}

function buildFromText(text: string, line: LogicalLine, file: string, escape: EscapeChar): Instruction {
  const at = { file, line: line.startLine };
  const { keyword, flags: flagWords, rest } = splitCommand(text);
  const kind = keyword.toLowerCase() as InstructionKind;
  if (!KINDS.includes(kind)) throw dockerfileError(at, unknownInstructionSentence(keyword));

  if (!TAKES_JSON.has(kind) && parseJsonArgs(rest).kind === 'strings') {
    throw dockerfileError(at, `${kind.toUpperCase()} does not take the JSON form; write its arguments without [ ] and quotes, e.g. ${exampleOf(kind)}.`);
  }
  const ctx: LineContext = {
    at,
    source: { line: line.startLine, endLine: line.endLine, original: trimGoSpace(text) },
    flags: InstructionFlags.parse(kind, flagWords, at),
    rest,
    heredocs: line.heredocs,
    escape,
  };

  switch (kind) {
    case 'from':
      return buildFrom(ctx);
    case 'run':
      return { kind, ...ctx.source, ...buildRunParts(ctx) };
    case 'cmd':
    case 'entrypoint':
      return { kind, ...ctx.source, command: requireCommand(ctx, kind, commandLine(ctx)) };
    case 'shell':
      return { kind, ...ctx.source, shell: buildShell(ctx) };
    case 'copy':
      return buildCopy(ctx);
    case 'add':
      return buildAdd(ctx);
    case 'env':
    case 'label':
      return { kind, ...ctx.source, pairs: buildPairs(ctx, kind) } as Instruction;
    case 'arg':
      return { kind, ...ctx.source, args: buildArgs(ctx) };
    case 'expose':
      return { kind, ...ctx.source, ports: requireWords(ctx, kind, splitPlainWords(ctx.rest), '80/tcp') };
    case 'volume':
      return { kind, ...ctx.source, paths: buildVolumes(ctx) };
    case 'user':
      return { kind, ...ctx.source, user: wholeRest(ctx, kind, 'app') };
    case 'workdir':
      return { kind, ...ctx.source, path: wholeRest(ctx, kind, '/app') };
    case 'stopsignal':
      return { kind, ...ctx.source, signal: wholeRest(ctx, kind, 'SIGTERM') };
    case 'maintainer':
      return { kind, ...ctx.source, maintainer: wholeRest(ctx, kind, 'name <mail@example.com>') };
    case 'healthcheck':
      return { kind, ...ctx.source, check: buildHealthcheck(ctx) };
    case 'onbuild':
      return buildOnbuild(ctx, line, file);
  }
}

function exampleOf(kind: InstructionKind): string {
  const examples: Partial<Record<InstructionKind, string>> = {
    from: 'FROM alpine:3.20', env: 'ENV KEY=value', arg: 'ARG NAME=value', label: 'LABEL key=value',
    expose: 'EXPOSE 8080', user: 'USER app', workdir: 'WORKDIR /app', stopsignal: 'STOPSIGNAL SIGTERM',
    maintainer: 'LABEL org.opencontainers.image.authors=…',
  };
  return examples[kind] ?? kind.toUpperCase();
}

function unknownInstructionSentence(keyword: string): string {
  const upper = keyword.toUpperCase();
  const closest = KINDS.map((kind) => kind.toUpperCase())
    .map((name) => ({ name, distance: editDistance(upper, name) }))
    .sort((a, b) => a.distance - b.distance)[0]!;
  if (closest.distance <= 2) return `unknown instruction "${keyword}"; write ${closest.name} if that is what you meant.`;
  return `unknown instruction "${keyword}"; the instructions are ${KINDS.map((kind) => kind.toUpperCase()).join(', ')}.`;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

function missingArguments(ctx: LineContext, kind: InstructionKind, example: string): never {
  throw dockerfileError(ctx.at, `${kind.toUpperCase()} has no arguments; write e.g. ${kind.toUpperCase()} ${example}.`);
}

function wholeRest(ctx: LineContext, kind: InstructionKind, example: string): string {
  if (ctx.rest === '') missingArguments(ctx, kind, example);
  return ctx.rest;
}

function requireWords(ctx: LineContext, kind: InstructionKind, words: string[], example: string): string[] {
  if (words.length === 0) missingArguments(ctx, kind, example);
  return words;
}

/** Shell or exec form; a JSON array holding anything but strings is a mistake, not shell form. */
function commandLine(ctx: LineContext, rest = ctx.rest): CommandLine | undefined {
  const json = parseJsonArgs(rest);
  if (json.kind === 'not-strings') {
    throw dockerfileError(ctx.at, `the JSON form must be an array of strings only; quote every element, e.g. ["echo", "1"].`);
  }
  if (json.kind === 'strings') return { form: 'exec', args: json.values };
  return rest === '' ? undefined : { form: 'shell', text: rest };
}

function requireCommand(ctx: LineContext, kind: InstructionKind, command: CommandLine | undefined): CommandLine {
  if (!command) missingArguments(ctx, kind, kind === 'run' ? 'apk add curl' : '["/app/server"]');
  return command;
}

function toHeredoc(body: HeredocBody): Heredoc {
  const { marker, raw } = body;
  const heredoc: Heredoc = {
    name: marker.name,
    body: marker.stripTabs ? stripLeadingTabs(raw) : raw,
    stripTabs: marker.stripTabs,
    expand: marker.expand,
  };
  if (marker.fd !== undefined) heredoc.fd = marker.fd;
  return heredoc;
}

function buildFrom(ctx: LineContext): Instruction {
  const words = splitPlainWords(ctx.rest);
  const named = words.length === 3 && words[1]!.toLowerCase() === 'as';
  if (words.length !== 1 && !named) {
    throw dockerfileError(ctx.at, `FROM takes an image and optionally "AS name", but got ${words.length} words; write FROM image[:tag] [AS name].`);
  }
  const platform = ctx.flags.string('platform');
  const from = { kind: 'from' as const, ...ctx.source, image: words[0]!, ...(platform !== undefined && { platform }) };
  if (!named) return from;
  const stageName = words[2]!.toLowerCase();
  if (!/^[a-z][a-z0-9-_.]*$/.test(stageName)) {
    throw dockerfileError(ctx.at, `"${words[2]}" is not a valid stage name; start it with a letter and use only letters, digits, "-", "_" and ".".`);
  }
  return { ...from, stageName };
}

function buildRunParts(ctx: LineContext): Omit<RunInstruction, 'kind' | keyof InstructionSource> {
  const command = requireCommand(ctx, 'run', commandLine(ctx));
  const network = ctx.flags.string('network');
  if (network !== undefined && network !== 'default' && network !== 'none' && network !== 'host') {
    throw dockerfileError(ctx.at, `--network=${network} is not a network mode; use default, none or host.`);
  }
  const security = ctx.flags.string('security');
  if (security !== undefined && security !== 'sandbox' && security !== 'insecure') {
    throw dockerfileError(ctx.at, `--security=${security} is not a security mode; use sandbox or insecure.`);
  }
  return {
    command,
    heredocs: ctx.heredocs.map(toHeredoc),
    mounts: ctx.flags.list('mount'),
    ...(network !== undefined && { network }),
    ...(security !== undefined && { security }),
  };
}

function buildShell(ctx: LineContext): string[] {
  const json = parseJsonArgs(ctx.rest);
  if (json.kind !== 'strings' || json.values.length === 0) {
    throw dockerfileError(ctx.at, `SHELL needs the JSON form with at least one element; write e.g. SHELL ["/bin/bash", "-c"].`);
  }
  return json.values;
}

/** Sources and destination of COPY/ADD: JSON form, or whitespace-separated words with heredoc markers. */
function sourcesAndDest(ctx: LineContext, kind: 'copy' | 'add'): { sources: string[]; inline: Heredoc[]; dest: string } {
  const json = parseJsonArgs(ctx.rest);
  if (json.kind === 'not-strings') {
    throw dockerfileError(ctx.at, `the JSON form must be an array of strings only; quote every element, e.g. ["src", "/dest/"].`);
  }
  const words = json.kind === 'strings' ? json.values : splitPlainWords(ctx.rest);
  const upper = kind.toUpperCase();
  if (words.length < 2) {
    throw dockerfileError(ctx.at, `${upper} needs at least one source and a destination; write ${upper} <src>... <dest>.`);
  }
  const dest = words[words.length - 1]!;
  const marker = (word: string) => {
    if (json.kind === 'strings') return undefined;
    try {
      return parseHeredocMarker(word);
    } catch (err) {
      if (!(err instanceof ExpansionError)) throw err;
      throw dockerfileError(ctx.at, `a heredoc delimiter has an unclosed quote (${err.message}); close it, e.g. <<"EOF".`);
    }
  };
  if (marker(dest)) {
    throw dockerfileError(ctx.at, `${upper} cannot write to a heredoc; put the destination path last.`);
  }
  const sources: string[] = [];
  const inline: Heredoc[] = [];
  for (const word of words.slice(0, -1)) {
    const found = marker(word);
    if (!found) {
      sources.push(word);
      continue;
    }
    const body = [...ctx.heredocs].reverse().find((heredoc) => heredoc.marker.name === found.name);
    inline.push(toHeredoc(body ?? { marker: found, raw: '' }));
  }
  return { sources, inline, dest };
}

/** Docker refuses variables in `COPY --from`: they would hide which stages a stage depends on. */
function checkCopyFrom(ctx: LineContext, from: string): void {
  let unchanged: boolean;
  try {
    unchanged = lexWord(from, new Map(), { escape: ctx.escape }).text === from;
  } catch {
    unchanged = false;
  }
  if (!unchanged) {
    throw dockerfileError(
      ctx.at,
      `--from=${from} uses a variable, which Docker does not expand in --from; add a stage "FROM <image> AS <name>" that uses the global ARG and copy --from=<name>.`,
    );
  }
}

function buildCopy(ctx: LineContext): Instruction {
  const { flags } = ctx;
  const from = flags.string('from');
  if (from !== undefined) checkCopyFrom(ctx, from);
  const chown = flags.string('chown');
  const chmod = flags.string('chmod');
  return {
    kind: 'copy',
    ...ctx.source,
    ...sourcesAndDest(ctx, 'copy'),
    ...(from !== undefined && { from }),
    ...(chown !== undefined && { chown }),
    ...(chmod !== undefined && { chmod }),
    link: flags.bool('link'),
    parents: flags.bool('parents'),
    exclude: flags.list('exclude'),
  };
}

function buildAdd(ctx: LineContext): Instruction {
  const { flags } = ctx;
  const chown = flags.string('chown');
  const chmod = flags.string('chmod');
  const checksum = flags.string('checksum');
  return {
    kind: 'add',
    ...ctx.source,
    ...sourcesAndDest(ctx, 'add'),
    ...(chown !== undefined && { chown }),
    ...(chmod !== undefined && { chmod }),
    ...(checksum !== undefined && { checksum }),
    keepGitDir: flags.bool('keep-git-dir'),
    link: flags.bool('link'),
    exclude: flags.list('exclude'),
  };
}

/** `KEY=value ...`, or the legacy `KEY value with spaces` when the first word has no `=`. */
function buildPairs(ctx: LineContext, kind: 'env' | 'label'): KeyValue[] {
  const upper = kind.toUpperCase();
  const words = splitQuotedWords(ctx.rest, ctx.escape);
  if (words.length === 0) missingArguments(ctx, kind, 'KEY=value');
  if (!words[0]!.includes('=')) {
    const [key, value] = splitFirstWord(ctx.rest);
    if (value === undefined) {
      throw dockerfileError(ctx.at, `${upper} ${key} has no value; write ${upper} ${key}=<value>.`);
    }
    return [{ key, value }];
  }
  return words.map((word) => {
    const equals = word.indexOf('=');
    if (equals < 0) {
      throw dockerfileError(ctx.at, `"${word}" has no "="; write every ${upper} entry as name=value.`);
    }
    if (equals === 0) throw dockerfileError(ctx.at, `${upper} has an entry without a name ("${word}"); write name=value.`);
    return { key: word.slice(0, equals), value: word.slice(equals + 1) };
  });
}

function buildArgs(ctx: LineContext): ArgDeclaration[] {
  const words = splitQuotedWords(ctx.rest, ctx.escape);
  if (words.length === 0) missingArguments(ctx, 'arg', 'NAME=default');
  return words.map((word) => {
    const equals = word.indexOf('=');
    if (equals < 0) return { name: word };
    if (equals === 0) throw dockerfileError(ctx.at, `ARG has an entry without a name ("${word}"); write ARG NAME or ARG NAME=default.`);
    return { name: word.slice(0, equals), defaultValue: word.slice(equals + 1) };
  });
}

function buildVolumes(ctx: LineContext): string[] {
  const json = parseJsonArgs(ctx.rest);
  if (json.kind === 'not-strings') {
    throw dockerfileError(ctx.at, `the JSON form must be an array of strings only; write e.g. VOLUME ["/data"].`);
  }
  const paths = json.kind === 'strings' ? json.values : splitPlainWords(ctx.rest);
  if (paths.length === 0) missingArguments(ctx, 'volume', '/data');
  return paths.map((path) => {
    const trimmed = trimGoSpace(path);
    if (trimmed === '') throw dockerfileError(ctx.at, `VOLUME has an empty path; give every volume a path.`);
    return trimmed;
  });
}

const HEALTHCHECK_DURATIONS = [
  ['interval', 'interval'],
  ['timeout', 'timeout'],
  ['start-period', 'startPeriod'],
  ['start-interval', 'startInterval'],
] as const;

function buildHealthcheck(ctx: LineContext): Healthcheck {
  const split = /^(\S+)\s*([\s\S]*)$/.exec(ctx.rest);
  if (!split) missingArguments(ctx, 'healthcheck', 'CMD curl -f http://localhost/');
  const type = split[1]!.toUpperCase();
  const rest = split[2]!;
  if (type === 'NONE') {
    if (rest !== '') throw dockerfileError(ctx.at, `HEALTHCHECK NONE takes no arguments; remove "${rest}".`);
    return { type: 'none' };
  }
  if (type !== 'CMD') {
    throw dockerfileError(ctx.at, `"${split[1]}" is not a HEALTHCHECK type; write HEALTHCHECK CMD <command> or HEALTHCHECK NONE.`);
  }
  const command = commandLine(ctx, rest);
  if (!command) throw dockerfileError(ctx.at, `HEALTHCHECK CMD has no command; write e.g. HEALTHCHECK CMD curl -f http://localhost/.`);

  const options: HealthcheckOptions = {};
  for (const [flag, field] of HEALTHCHECK_DURATIONS) {
    const text = ctx.flags.string(flag);
    if (text === undefined || text === '') continue;
    const nanoseconds = parseGoDuration(text);
    if (nanoseconds === undefined) throw dockerfileError(ctx.at, `--${flag}=${text} is not a duration; write e.g. 30s, 1m30s or 500ms.`);
    if (nanoseconds !== 0 && nanoseconds < 1e6) throw dockerfileError(ctx.at, `--${flag}=${text} is shorter than 1ms; use at least 1ms, or 0 for the default.`);
    options[field] = nanoseconds;
  }
  const retries = ctx.flags.string('retries');
  if (retries !== undefined && retries !== '') {
    if (!/^[+-]?\d+$/.test(retries) || Math.abs(Number(retries)) > 2 ** 31 - 1) {
      throw dockerfileError(ctx.at, `--retries=${retries} is not a whole number; write e.g. --retries=3.`);
    }
    if (Number(retries) < 0) throw dockerfileError(ctx.at, `--retries=${retries} is negative; use 0 or more.`);
    options.retries = Number(retries);
  }
  return { type: 'cmd', command, ...options };
}

const TRIGGER_REFUSED = new Set(['onbuild', 'from', 'maintainer']);

function buildOnbuild(ctx: LineContext, line: LogicalLine, file: string): Instruction {
  if (ctx.rest === '') missingArguments(ctx, 'onbuild', 'RUN make');
  const triggerKeyword = splitCommand(ctx.rest).keyword.toLowerCase();
  if (triggerKeyword === 'onbuild') {
    throw dockerfileError(ctx.at, `ONBUILD ONBUILD is not allowed; give ONBUILD one ordinary instruction.`);
  }
  if (TRIGGER_REFUSED.has(triggerKeyword)) {
    throw dockerfileError(ctx.at, `${triggerKeyword.toUpperCase()} cannot be an ONBUILD trigger; trigger another instruction.`);
  }
  const trigger = buildFromText(ctx.rest, line, file, ctx.escape) as TriggerInstruction;
  const expression =
    ctx.source.original.replace(/^\s*ONBUILD\s*/i, '') +
    line.heredocs.map((heredoc) => `\n${toHeredoc(heredoc).body}${heredoc.marker.name}`).join('');
  return { kind: 'onbuild', ...ctx.source, trigger, expression };
}
