/**
 * Heredoc markers (`<<EOF`, `<<-EOF`, `<<'EOF'`, `3<<EOF`) the way BuildKit recognises them:
 * a whole shell word of the line, found with quotes kept, whose delimiter is then read once with
 * quotes removed. A quoted delimiter (any part of it) turns expansion of the body off.
 */
import { ExpansionError, lexWord } from './lex.js';

export interface HeredocMarker {
  /** The delimiter with quotes removed; the body ends at a line equal to it. */
  name: string;
  /** `<<-`: leading tabs are stripped from body lines and from the terminator line. */
  stripTabs: boolean;
  /** False when the delimiter was quoted, which disables variable expansion of the body. */
  expand: boolean;
  /** The file descriptor written before `<<`, as in `3<<EOF`; absent when none was written. */
  fd?: number;
}

const MARKER = /^(\d*)<<(-?)([^<]*)$/;
const NO_VARS = new Map<string, string>();

/**
 * Reads one word as a heredoc marker; undefined when it is not one. Throws ExpansionError when
 * the delimiter is malformed (an unterminated quote).
 */
export function parseHeredocMarker(word: string): HeredocMarker | undefined {
  const match = MARKER.exec(word);
  if (!match) return undefined;
  const [, fd, dash, rest] = match as unknown as [string, string, string, string];
  if (rest.length === 0) return undefined;

  const unquoted = lexWord(rest, NO_VARS, { escape: '\\', unset: 'keep' }).words;
  if (unquoted.length !== 1) return undefined;
  const quoted = lexWord(rest, NO_VARS, { escape: '\\', unset: 'keep', quotes: 'keep' }).words;
  if (quoted.length !== 1) throw new ExpansionError(`the heredoc delimiter ${rest} is ambiguous`);

  const name = unquoted[0]!;
  const quoteCount = (text: string): number => (text.match(/['"]/g) ?? []).length;
  const marker: HeredocMarker = { name, stripTabs: dash === '-', expand: quoteCount(name) === quoteCount(quoted[0]!) };
  if (fd !== '') marker.fd = Number.parseInt(fd, 10);
  return marker;
}

/** Every heredoc marker on a logical line, in order of appearance. */
export function heredocMarkersOf(line: string): HeredocMarker[] {
  let words: string[];
  try {
    words = lexWord(line, NO_VARS, { escape: '\\', unset: 'keep', quotes: 'keep', rawEscapes: true }).words;
  } catch {
    return []; // a line that does not lex as shell words has no heredocs, as in BuildKit
  }
  const markers: HeredocMarker[] = [];
  for (const word of words) {
    const marker = parseHeredocMarker(word);
    if (marker) markers.push(marker);
  }
  return markers;
}

/** `<<-`: removes the leading tabs of every line. */
export function stripLeadingTabs(body: string): string {
  return body.replace(/^\t+/gm, '');
}

/** A heredoc's terminator line: the delimiter alone, after the line ending (and for `<<-` the tabs) are removed. */
export function isTerminator(rawLine: string, marker: HeredocMarker): boolean {
  let candidate = rawLine.replace(/[\r\n]+$/, '');
  if (marker.stripTabs) candidate = candidate.replace(/^\t+/, '');
  return candidate === marker.name;
}
