import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/util/log.js';

export interface CapturedLog {
  logger: Logger;
  /** Messages logged at warn level, in order. */
  warnings(): string[];
}

/** A logger that keeps what it logs, so tests can count warnings. */
export function captureLogger(): CapturedLog {
  const records: { level: number; msg: string }[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) records.push(JSON.parse(line));
      callback();
    },
  });
  const logger = createLogger({ format: 'json', level: 'debug', destination });
  return { logger, warnings: () => records.filter((r) => r.level === 40).map((r) => r.msg) };
}
