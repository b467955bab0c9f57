import { KilnError } from './errors.js';

/**
 * Go's time.ParseDuration, which HEALTHCHECK's --interval and friends use: `30s`, `1m30s`,
 * `1.5h`, `500ms`, `0`. Returns nanoseconds, or undefined when the text is not a duration.
 */
const UNIT_NANOSECONDS: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  'µs': 1e3, // U+00B5 micro sign
  'μs': 1e3, // U+03BC Greek mu
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

const PIECE = /^([0-9]*)(?:\.([0-9]*))?([^0-9.]*)/;

export function parseGoDuration(text: string): number | undefined {
  let rest = text;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    sign = rest.startsWith('-') ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') return undefined;

  let total = 0;
  while (rest !== '') {
    const match = PIECE.exec(rest)!;
    const [whole, integer, fraction, unit] = match as unknown as [string, string, string | undefined, string];
    if (integer === '' && !fraction) return undefined; // no digits at all, e.g. ".s"
    const scale = UNIT_NANOSECONDS[unit];
    if (scale === undefined) return undefined; // missing or unknown unit
    total += Number(`${integer || '0'}.${fraction ?? ''}0`) * scale;
    rest = rest.slice(whole.length);
  }
  if (total > 2 ** 63 - 1) return undefined;
  return sign * Math.round(total);
}


const NANOSECONDS_PER_MILLISECOND = 1e6;

/**
 * A duration flag such as `--cache-ttl`, written the way kaniko (Go) takes it: `336h`, `30m`,
 * `1h30m`, `0`. Returns milliseconds; a negative or malformed value is a USAGE error naming
 * the flag.
 */
export function parseDurationFlag(flag: string, text: string): number {
  const nanoseconds = parseGoDuration(text.trim());
  if (nanoseconds === undefined) {
    throw new KilnError('USAGE', `--${flag}=${text} is not a duration; write it as Go does, e.g. 336h, 30m or 1h30m.`);
  }
  if (nanoseconds < 0) throw new KilnError('USAGE', `--${flag}=${text} is negative; give a duration of 0 or more, e.g. 24h.`);
  return Math.floor(nanoseconds / NANOSECONDS_PER_MILLISECOND);
}
