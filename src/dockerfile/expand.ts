/**
 * Variable expansion of Dockerfile words, BuildKit-compatible: `$V`, `${V}`, `${V:-x}`, `${V-x}`,
 * `${V:+x}`, `${V+x}`, `${V:?msg}`, `${V?msg}`, `${V#p}`, `${V##p}`, `${V%p}`, `${V%%p}`,
 * `${V/p/r}`, `${V//p/r}`; the escape character; literal single quotes; expanding double quotes.
 *
 * Docker expands the words of ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME,
 * WORKDIR and the default values of ARG. RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK and ONBUILD are
 * left alone: a shell expands RUN at run time, and ONBUILD is expanded by the build that triggers it.
 */
import { KilnError } from '../util/errors.js';
import { dockerfileError, type SourceLocation } from './errors.js';
import { ExpansionError, lexWord, type EscapeChar } from './lex.js';
import type { Heredoc, Instruction, InstructionKind, KeyValue } from './types.js';

/** Variable names to values; what the lexer looks names up in. */
export type Variables = ReadonlyMap<string, string>;

export interface ExpandOptions {
  /** The Dockerfile's escape character (`# escape=`); a backslash by default. */
  escape?: EscapeChar;
  /** Where the text comes from, so an error can name the file and line. */
  at?: SourceLocation;
}

export const EXPANDED_KINDS: ReadonlySet<InstructionKind> = new Set<InstructionKind>([
  'add', 'copy', 'env', 'expose', 'from', 'label', 'stopsignal', 'user', 'volume', 'workdir', 'arg',
]);

function expansionFailure(err: ExpansionError, text: string, at: SourceLocation | undefined): Error {
  const sentence = err.requiredVariable
    ? `${err.message} (in "${text}"); set ${err.requiredVariable} with ARG and --build-arg, or with ENV.`
    : `cannot expand "${text}": ${err.message}; fix the variable reference or escape the $.`;
  return at ? dockerfileError(at, sentence, err) : new KilnError('DOCKERFILE', sentence, { cause: err });
}

function lexOrThrow(text: string, vars: Variables, options: ExpandOptions, literalQuotes = false) {
  try {
    return lexWord(text, vars, { escape: options.escape ?? '\\', ...(literalQuotes && { quotes: 'literal' as const }) });
  } catch (err) {
    if (err instanceof ExpansionError) throw expansionFailure(err, text, options.at);
    throw err;
  }
}

/** Expands one word; whitespace inside stays (ENV values, WORKDIR, COPY sources). */
export function expandString(text: string, vars: Variables, options: ExpandOptions = {}): string {
  return lexOrThrow(text, vars, options).text;
}

/** Expands and then splits into words on unquoted whitespace, as EXPOSE does. */
export function expandWords(text: string, vars: Variables, options: ExpandOptions = {}): string[] {
  return lexOrThrow(text, vars, options).words;
}

/**
 * A heredoc body of COPY/ADD with an unquoted delimiter: variables expand, quotes stay as
 * they are, and a backslash escapes whatever escape directive the Dockerfile has.
 */
export function expandHeredocBody(heredoc: Heredoc, vars: Variables, at?: SourceLocation): string {
  if (!heredoc.expand) return heredoc.body;
  return lexOrThrow(heredoc.body, vars, { escape: '\\', ...(at && { at }) }, true).text;
}

/**
 * The instruction with its words expanded as Docker expands them for that instruction; the
 * same object for instructions Docker does not expand. ARG defaults are expanded here; which
 * value an ARG finally takes (a --build-arg wins) is the stage walker's business.
 */
export function expandInstruction<T extends Instruction>(instruction: T, vars: Variables, escape: EscapeChar, file: string): T {
  const options: ExpandOptions = { escape, at: { file, line: instruction.line } };
  const one = (text: string): string => expandString(text, vars, options);
  const optional = (text: string | undefined): string | undefined => (text === undefined ? undefined : one(text));
  const pairs = (list: KeyValue[]): KeyValue[] => list.map(({ key, value }) => ({ key: one(key), value: one(value) }));
  const inline = (list: Heredoc[]): Heredoc[] => list.map((heredoc) => ({ ...heredoc, body: expandHeredocBody(heredoc, vars, options.at) }));
  const defined = <V>(key: string, value: V | undefined) => (value === undefined ? {} : { [key]: value });

  const ins: Instruction = instruction;
  switch (ins.kind) {
    case 'from':
      return { ...ins, image: one(ins.image), ...defined('platform', optional(ins.platform)) } as T;
    case 'copy':
    case 'add':
      return {
        ...ins,
        sources: ins.sources.map(one),
        inline: inline(ins.inline),
        dest: one(ins.dest),
        exclude: ins.exclude.map(one),
        ...defined('chown', optional(ins.chown)),
        ...defined('chmod', optional(ins.chmod)),
        ...(ins.kind === 'add' ? defined('checksum', optional(ins.checksum)) : {}),
      } as T;
    case 'env':
    case 'label':
      return { ...ins, pairs: pairs(ins.pairs) } as T;
    case 'arg':
      return {
        ...ins,
        args: ins.args.map((arg) => (arg.defaultValue === undefined ? arg : { name: arg.name, defaultValue: one(arg.defaultValue) })),
      } as T;
    case 'expose':
      return { ...ins, ports: ins.ports.flatMap((port) => expandWords(port, vars, options)) } as T;
    case 'volume': {
      const paths = ins.paths.map(one);
      if (paths.some((path) => path === '')) {
        throw dockerfileError(options.at!, `VOLUME expands to an empty path; make sure the variables it uses are set.`);
      }
      return { ...ins, paths } as T;
    }
    case 'user':
      return { ...ins, user: one(ins.user) } as T;
    case 'workdir':
      return { ...ins, path: one(ins.path) } as T;
    case 'stopsignal':
      return { ...ins, signal: one(ins.signal) } as T;
    default:
      return instruction;
  }
}
