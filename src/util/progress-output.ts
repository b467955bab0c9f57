import { Writable } from 'node:stream';
import { createLogger, type LogFormat, type Logger, type LoggerOptions } from './log.js';
import { StatusLine } from './progress-line.js';
import { jsonProgress } from './progress-json.js';
import { plainProgress } from './progress-plain.js';
import { terminalProgress } from './progress-terminal.js';
import { systemClock, type ProgressClock, type ProgressSink } from './progress.js';

export interface BuildOutputOptions {
  level: NonNullable<LoggerOptions['level']>;
  format: LogFormat;
  timestamp: boolean;
  /** Where logs, progress and commands' output go: kiln's stderr. */
  stream: NodeJS.WriteStream;
  clock?: ProgressClock;
}

/** Everything a build writes to stderr, made once so that its parts never write over each other. */
export interface BuildOutput {
  logger: Logger;
  progress: ProgressSink;
  /** For RUN output: on a terminal, it makes way for the status line like log lines do. */
  commandOutput: Writable;
  /** Whether logs are JSON records (the build summary is then one record too). */
  json: boolean;
  /** Erases the status line; call once the build is over, before any error is printed. */
  close(): void;
}

/** Levels at which info lines, and so progress, are shown. */
const SHOWS_INFO = new Set(['info', 'debug', 'trace']);

/**
 * The logger and the progress sink for a build: a live status line when stderr is a terminal
 * and logs are text, plain progress lines when it is not (a CI log), JSON records with
 * --log-format json. Colour only on a terminal.
 */
export function createBuildOutput(options: BuildOutputOptions): BuildOutput {
  const { stream, level, timestamp } = options;
  const clock = options.clock ?? systemClock;
  const tty = stream.isTTY === true;
  if (options.format === 'json') {
    const logger = createLogger({ level, format: 'json', timestamp, destination: stream });
    const progress = jsonProgress(logger, clock);
    return { logger, progress, commandOutput: stream as unknown as Writable, json: true, close: () => progress.close() };
  }
  const format = options.format === 'color' && !tty ? 'text' : options.format;
  if (!tty || !SHOWS_INFO.has(level)) {
    const logger = createLogger({ level, format, timestamp, destination: stream });
    const progress = plainProgress(logger, clock);
    return { logger, progress, commandOutput: stream as unknown as Writable, json: false, close: () => progress.close() };
  }
  const line = new StatusLine(stream, clock);
  const logger = createLogger({ level, format, timestamp, destination: { write: (text: string) => line.write(text) } as unknown as NodeJS.WritableStream });
  const progress = terminalProgress(line, logger, clock);
  return { logger, progress, commandOutput: statusLineWritable(line, stream), json: false, close: () => progress.close() };
}

/** A Writable into the status line's terminal that waits when the terminal does. */
function statusLineWritable(line: StatusLine, stream: NodeJS.WriteStream): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (line.write(chunk)) callback();
      else stream.once('drain', () => callback());
    },
  });
}
