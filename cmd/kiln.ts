#!/usr/bin/env node
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { KilnError, describeError } from '../src/util/errors.js';
import { buildCommand } from './commands/build.js';
import { copyCommand } from './commands/copy.js';
import { warmCommand } from './commands/warm.js';
import { normalizePflagArgv } from './options/compat-argv.js';

/** Exit status: 1 for a failed job, 2 for a command line kiln cannot run. */
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

/** What yargs needs of a command module; `handler` receives the parsed flags. */
export interface CommandModule {
  command: string;
  describe: string;
  builder: (argv: Argv) => Argv<unknown>;
  handler: (args: never) => Promise<void> | void;
}

export const COMMANDS: readonly CommandModule[] = [buildCommand, copyCommand, warmCommand] as unknown as CommandModule[];

export async function main(argv: string[]): Promise<number> {
  const debug = wantsDebug(argv);
  try {
    const words = kanikoArgv(argv, COMMANDS);
    const args = (await createParser(words, COMMANDS).parseAsync()) as Record<string, unknown>;
    await commandNamed(args)?.handler(args as never);
  } catch (err) {
    return report(err, debug);
  }
  return 0;
}

/**
 * Parses a command line exactly as `main` does, without running the command: the command's
 * name and its flags (and the help text, when the line asks for it), or the KilnError
 * `main` would report.
 */
export async function parseCommandLine(argv: readonly string[]): Promise<{ command: string; args: Record<string, unknown>; help?: string }> {
  let help = '';
  const words = kanikoArgv(argv, COMMANDS);
  // A callback keeps yargs from printing help or exiting the process.
  const args = (await createParser(words, COMMANDS)
    .exitProcess(false)
    .parseAsync(words, {}, (_err: unknown, _args: unknown, output: string) => {
      help = output;
    })) as Record<string, unknown>;
  if (help !== '') return { command: String(argv[0] ?? ''), args, help };
  const command = commandNamed(args);
  if (command !== undefined) return { command: command.command, args };
  throw new KilnError('USAGE', 'no command ran.');
}

/** The command a parsed line names (yargs has checked that it is one). */
function commandNamed(args: Record<string, unknown>): CommandModule | undefined {
  const name = String((args._ as unknown[] | undefined)?.[0] ?? '');
  return COMMANDS.find((command) => commandWord(command) === name);
}

function commandWord(command: CommandModule): string {
  return command.command.split(' ')[0]!;
}

export function createParser(argv: readonly string[], commands: readonly CommandModule[]): Argv {
  let parser = yargs([...argv])
    .scriptName('kiln')
    // kaniko's flags include --no-push and --no-push-cache as flags of their own, and
    // booleans are written --flag=false: no yargs negation or camelCase aliases. pflag gives
    // `--destination a b` one destination (and ignores b); yargs must not take both.
    .parserConfiguration({ 'boolean-negation': false, 'camel-case-expansion': false, 'greedy-arrays': false })
    // pflag keeps the last of a repeated single-valued flag; yargs would make an array of them.
    .middleware(lastValueWins as never, true);
  // yargs only parses; `main` runs the command afterwards, outside yargs' promise chain.
  for (const command of commands) parser = parser.command({ ...command, handler: undefined } as never);
  skipHelpCaching(parser);
  return parser
    .demandCommand(1, 'name a command: kiln build, kiln copy or kiln warm (kiln --help lists them)')
    .strict()
    .help()
    .alias('help', 'h')
    .version(false)
    .wrap(Math.min(120, process.stdout.columns ?? 100))
    .fail((message, err) => {
      // Throwing stops yargs before any command handler runs.
      throw err ?? new KilnError('USAGE', rewordUsage(message, argv));
    });
}

/**
 * yargs formats the whole help text whenever it runs a command, in case the command fails
 * and asks for it: tens of milliseconds for kiln's flags, on every build. kiln never shows
 * help after a failure (`fail` throws), so the text is made only when --help asks for it.
 */
function skipHelpCaching(parser: Argv): void {
  const internals = parser as unknown as { getInternalMethods?(): { getUsageInstance?(): { cacheHelpMessage?: () => void } } };
  const usage = internals.getInternalMethods?.().getUsageInstance?.();
  if (usage?.cacheHelpMessage !== undefined) usage.cacheHelpMessage = () => {};
}

/** The command line with pflag's forms rewritten for yargs (see compat-argv.ts). */
function kanikoArgv(argv: readonly string[], commands: readonly CommandModule[]): string[] {
  const command = commands.find((c) => c.command === argv[0]);
  if (!command) return [...argv];
  // The command's own option table says which flags take a value.
  const options = optionTable(command.builder(yargs([]).help().alias('help', 'h')));
  const valued = new Map<string, boolean>();
  for (const name of Object.keys(options.key)) {
    const takes = !options.boolean.includes(name);
    for (const spelling of [name, ...(options.alias[name] ?? [])]) valued.set(spelling, takes);
  }
  return [argv[0]!, ...normalizePflagArgv(argv.slice(1), (name) => valued.get(name))];
}

function lastValueWins(args: Record<string, unknown>, parser: Argv): void {
  const arrays = new Set(optionTable(parser).array);
  for (const [key, value] of Object.entries(args)) {
    if (key !== '_' && Array.isArray(value) && !arrays.has(key)) args[key] = value.at(-1);
  }
}

function report(err: unknown, debug: boolean): number {
  if (err instanceof KilnError) {
    process.stderr.write(`kiln: error: ${err.message}\n`);
    if (debug && err.cause) process.stderr.write(`caused by: ${err.cause instanceof Error ? err.cause.stack : String(err.cause)}\n`);
    return err.code === 'USAGE' ? EXIT_USAGE : EXIT_FAILURE;
  }
  process.stderr.write(`kiln: internal error: ${describeError(err)} (run with --verbosity=debug for details)\n`);
  if (debug && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  return EXIT_FAILURE;
}

/** Whether --verbosity asks for debug output; read before parsing so parse errors honour it too. */
function wantsDebug(argv: readonly string[]): boolean {
  for (let i = 0; i < argv.length; i++) {
    // --verbosity=debug, --verbosity debug, -v debug, -v=debug, -vdebug (pflag's forms).
    const match = /^(?:--verbosity(?:=(.*))?|-v=?(.*))$/.exec(argv[i]!);
    if (match && /^(debug|trace)$/i.test(match[1] ?? (match[2] || argv[i + 1]) ?? '')) return true;
  }
  return false;
}

/** The parser's table of options: yargs keeps it at run time but leaves it out of its types. */
function optionTable(parser: Argv<unknown>): OptionTable {
  return (parser as unknown as { getOptions(): OptionTable }).getOptions();
}

interface OptionTable {
  key: Record<string, unknown>;
  alias: Record<string, string[]>;
  boolean: string[];
  array: string[];
}

/** yargs says "Unknown argument: foo"; kiln names the flag (or the stray word) and where to look. */
function rewordUsage(message: string, argv: readonly string[]): string {
  const unknown = /^Unknown arguments?: (.+)$/.exec(message);
  if (unknown) {
    const names = unknown[1]!.split(', ');
    // yargs reports a word that is no flag's value by itself: `--destination a b` leaves b.
    const stray = names.find((name) => argv.includes(name) && !argv.some((arg) => isFlagNamed(arg, name)));
    if (stray !== undefined) {
      return `unexpected argument "${stray}": kiln ${argv[0] ?? ''} takes flags only; give each value its own flag (--destination a --destination b) and quote values with spaces.`;
    }
    const flags = names.map((n) => (n.length === 1 ? `-${n}` : `--${n}`));
    return `unknown flag ${flags.join(', ')}: kiln does not support it; see kiln --help for the flags it takes.`;
  }
  // "Invalid values:\n  Argument: snapshot-mode, Given: "fast", Choices: "full", "redo", "time""
  const invalid = /Argument: ([^,]+), Given: (.+), Choices: (.+)$/m.exec(message);
  if (message.startsWith('Invalid values:') && invalid) {
    return `--${invalid[1]}=${invalid[2]!.replace(/^"|"$/g, '')} is not one of ${invalid[3]!.replace(/"/g, '')}; give one of those.`;
  }
  return message.endsWith('.') ? message : message + '.';
}

function isFlagNamed(arg: string, name: string): boolean {
  const flag = name.length === 1 ? `-${name}` : `--${name}`;
  return arg === flag || arg.startsWith(`${flag}=`) || (name.length === 1 && /^-[A-Za-z]+$/.test(arg) && arg.includes(name));
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/kiln.js')) {
  main(hideBin(process.argv)).then((code) => process.exit(code));
}
