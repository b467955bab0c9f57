import type { Argv } from 'yargs';
import { createLogger, type LogFormat, type Logger } from '../../src/util/log.js';

export const VERBOSITY_LEVELS = ['panic', 'fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type Verbosity = (typeof VERBOSITY_LEVELS)[number];

export interface LoggingArgs {
  verbosity: Verbosity;
  'log-format': LogFormat;
  'log-timestamp': boolean;
}

/** kaniko's logging flags. */
export function withLoggingOptions<T>(argv: Argv<T>): Argv<T & LoggingArgs> {
  return argv
    // kaniko takes any case and `warning` for warn (logrus's ParseLevel).
    .option('verbosity', { alias: 'v', choices: VERBOSITY_LEVELS, default: 'info' as Verbosity, coerce: normalizeLevel, describe: 'Log level', group: 'Logging:' })
    .option('log-format', { choices: ['text', 'color', 'json'] as const, default: 'color' as LogFormat, describe: 'Log format (text, color or json)', group: 'Logging:' })
    .option('log-timestamp', { type: 'boolean', default: false, describe: 'Prefix each log line with a timestamp', group: 'Logging:' }) as unknown as Argv<T & LoggingArgs>;
}

function normalizeLevel(value: unknown): unknown {
  // Given twice, the last one counts (as everywhere in kiln's parser).
  const last = Array.isArray(value) ? value.at(-1) : value;
  if (typeof last !== 'string') return last;
  const level = last.toLowerCase();
  return level === 'warning' ? 'warn' : level;
}

export function loggerFromArgs(args: LoggingArgs): Logger {
  // Colour only makes sense on a terminal; CI logs get plain text.
  const format = args['log-format'] === 'color' && !process.stderr.isTTY ? 'text' : args['log-format'];
  return createLogger({ level: args.verbosity, format, timestamp: args['log-timestamp'] });
}
