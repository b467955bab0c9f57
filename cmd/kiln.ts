#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { KilnError, describeError } from '../src/util/errors.js';
import { buildCommand } from './commands/build.js';
import { copyCommand } from './commands/copy.js';
import { warmCommand } from './commands/warm.js';

/** Exit status: 1 for a failed job, 2 for a command line kiln cannot run. */
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

export async function main(argv: string[]): Promise<number> {
  const debug = wantsDebug(argv);
  const parser = yargs(argv)
    .scriptName('kiln')
    // kaniko's flags include --no-push and --no-push-cache as flags of their own, and
    // booleans are written --flag=false: no yargs negation or camelCase aliases.
    .parserConfiguration({ 'boolean-negation': false, 'camel-case-expansion': false })
    .command(buildCommand as never)
    .command(copyCommand as never)
    .command(warmCommand as never)
    .demandCommand(1, 'name a command: kiln build, kiln copy or kiln warm (kiln --help lists them)')
    .strict()
    .help()
    .version(false)
    .wrap(Math.min(120, process.stdout.columns ?? 100))
    .fail((message, err) => {
      // Throwing stops yargs before any command handler runs.
      throw err ?? new KilnError('USAGE', rewordUsage(message));
    });
  try {
    await parser.parseAsync();
  } catch (err) {
    return report(err, debug);
  }
  return 0;
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
    const match = /^(?:--verbosity|-v)(?:=(.*))?$/.exec(argv[i]!);
    if (match && /^(debug|trace)$/.test(match[1] ?? argv[i + 1] ?? '')) return true;
  }
  return false;
}

/** yargs says "Unknown argument: foo"; kiln names the flag and where to look. */
function rewordUsage(message: string): string {
  const unknown = /^Unknown arguments?: (.+)$/.exec(message);
  if (unknown) {
    const names = unknown[1]!.split(', ').map((n) => (n.length === 1 ? `-${n}` : `--${n}`));
    return `unknown flag ${names.join(', ')}: kiln does not support it; see kiln --help for the flags it takes.`;
  }
  return message.endsWith('.') ? message : message + '.';
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/kiln.js')) {
  main(hideBin(process.argv)).then((code) => process.exit(code));
}
