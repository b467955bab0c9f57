import { pino, type Logger as PinoLogger, type LevelWithSilent } from 'pino';

export type Logger = PinoLogger;
export type LogFormat = 'text' | 'color' | 'json';

export interface LoggerOptions {
  level?: LevelWithSilent | 'panic' | 'fatal';
  format?: LogFormat;
  timestamp?: boolean;
  destination?: NodeJS.WritableStream;
}

const LEVEL_ALIASES: Record<string, LevelWithSilent> = { panic: 'fatal' };

/**
 * Text output is written by a tiny formatter of our own rather than pino-pretty: kiln's
 * text lines are what users read in CI logs and must stay one short line each.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = LEVEL_ALIASES[options.level ?? 'info'] ?? (options.level as LevelWithSilent) ?? 'info';
  const destination = options.destination ?? process.stderr;
  const format = options.format ?? 'text';
  if (format === 'json') {
    return pino({ level, timestamp: options.timestamp !== false, base: undefined }, destination as never);
  }
  const color = format === 'color';
  const stream = {
    write(line: string) {
      const record = JSON.parse(line) as Record<string, unknown>;
      destination.write(formatTextLine(record, color, options.timestamp === true) + '\n');
    },
  };
  return pino({ level, timestamp: options.timestamp === true, base: undefined }, stream);
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const LEVEL_COLORS: Record<number, string> = { 10: '90', 20: '36', 30: '32', 40: '33', 50: '31', 60: '35' };

function formatTextLine(record: Record<string, unknown>, color: boolean, timestamp: boolean): string {
  const { level, msg, time, err, ...rest } = record;
  const levelNumber = Number(level);
  let name = (LEVEL_NAMES[levelNumber] ?? 'INFO').padEnd(5);
  if (color) name = `\x1b[${LEVEL_COLORS[levelNumber] ?? '0'}m${name}\x1b[0m`;
  const parts = [name, String(msg ?? '')];
  if (timestamp && typeof time === 'number') parts.unshift(new Date(time).toISOString());
  const extras = Object.entries(rest).map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  if (extras.length > 0) parts.push(extras.join(' '));
  if (err && typeof err === 'object' && 'stack' in err) parts.push('\n' + String((err as { stack: unknown }).stack));
  return parts.join(' ');
}

/** A logger that drops everything: the default for library calls and unit tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
