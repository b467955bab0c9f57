/**
 * How Docker cuts one logical Dockerfile line into an instruction keyword, its `--flags` and
 * its argument words, before any variable is expanded (BuildKit's parser/line_parsers.go and
 * split_command.go). Quotes and escapes are kept in the words here; expansion removes them.
 */
import { isGoSpace, type EscapeChar } from './lex.js';

/** Go's regexp `[\t\v\f\r ]+`, the separator Docker uses between plain words. */
const WHITESPACE_RUN = /[\t\v\f\r ]+/;

/** Go's strings.TrimSpace. */
export function trimGoSpace(text: string): string {
  const chars = Array.from(text);
  let start = 0;
  let end = chars.length;
  while (start < end && isGoSpace(chars[start]!)) start++;
  while (end > start && isGoSpace(chars[end - 1]!)) end--;
  return chars.slice(start, end).join('');
}

function trimGoSpaceStart(text: string): string {
  const chars = Array.from(text);
  let start = 0;
  while (start < chars.length && isGoSpace(chars[start]!)) start++;
  return chars.slice(start).join('');
}

export interface SplitLine {
  /** The keyword as written (`run`, `RUN`, `Run`). */
  keyword: string;
  /** Leading `--name[=value]` words, quotes and backslashes already resolved. */
  flags: string[];
  /** Everything after the keyword and the flags, trimmed. */
  rest: string;
}

/** Splits a logical line into keyword, flags and the rest (BuildKit's splitCommand). */
export function splitCommand(line: string): SplitLine {
  const trimmed = trimGoSpace(line);
  const match = WHITESPACE_RUN.exec(trimmed);
  if (!match) return { keyword: trimmed, flags: [], rest: '' };
  const keyword = trimmed.slice(0, match.index);
  const { rest, flags } = extractFlags(trimmed.slice(match.index + match[0].length));
  return { keyword, flags, rest: trimGoSpace(rest) };
}

/**
 * Takes the leading words that start with `--`. Quotes group, a backslash escapes the next
 * character (always a backslash here, whatever the escape directive says), and a bare `--` ends
 * the flags.
 */
export function extractFlags(line: string): { rest: string; flags: string[] } {
  const flags: string[] = [];
  type Phase = 'spaces' | 'word' | 'quote';
  let phase: Phase = 'spaces';
  let word = '';
  let quote = '';
  let blankOK = false;

  for (let pos = 0; pos <= line.length; pos++) {
    let ch = pos < line.length ? line[pos]! : '';
    if (phase === 'spaces') {
      if (pos === line.length) break;
      if (isGoSpace(ch)) continue;
      if (ch !== '-' || pos + 1 === line.length || line[pos + 1] !== '-') return { rest: line.slice(pos), flags };
      phase = 'word';
    }
    if (pos === line.length) {
      if (word !== '--' && (blankOK || word.length > 0)) flags.push(word);
      break;
    }
    if (phase === 'word') {
      if (isGoSpace(ch)) {
        phase = 'spaces';
        if (word === '--') return { rest: line.slice(pos), flags };
        if (blankOK || word.length > 0) flags.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
        continue;
      }
      if (ch === '\\') {
        if (pos + 1 === line.length) continue;
        ch = line[++pos]!;
      }
      word += ch;
      continue;
    }
    // phase === 'quote'
    if (ch === quote) {
      phase = 'word';
      continue;
    }
    if (ch === '\\') {
      if (pos + 1 === line.length) {
        phase = 'word';
        continue;
      }
      ch = line[++pos]!;
    }
    word += ch;
  }
  return { rest: '', flags };
}

/**
 * Splits into words on whitespace outside quotes, keeping quotes and escapes in the words
 * (BuildKit's parseWords, used by ENV, LABEL and ARG).
 */
export function splitQuotedWords(rest: string, escape: EscapeChar): string[] {
  const words: string[] = [];
  const chars = Array.from(rest);
  type Phase = 'spaces' | 'word' | 'quote';
  let phase: Phase = 'spaces';
  let word = '';
  let quote = '';
  let blankOK = false;

  for (let pos = 0; pos <= chars.length; pos++) {
    let ch = pos < chars.length ? chars[pos]! : '';
    if (phase === 'spaces') {
      if (pos === chars.length) break;
      if (isGoSpace(ch)) continue;
      phase = 'word';
    }
    if (pos === chars.length) {
      if (blankOK || word.length > 0) words.push(word);
      break;
    }
    if (phase === 'word') {
      if (isGoSpace(ch)) {
        phase = 'spaces';
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
      }
      if (ch === escape) {
        if (pos + 1 === chars.length) continue; // an escape at the very end is dropped
        // Outside quotes the escape and the character it escapes both stay, even a quote.
        word += ch;
        ch = chars[++pos]!;
      }
      word += ch;
      continue;
    }
    // phase === 'quote'
    if (ch === quote) phase = 'word';
    // Inside single quotes nothing is escaped.
    if (ch === escape && quote !== "'") {
      if (pos + 1 === chars.length) {
        phase = 'word';
        continue;
      }
      word += ch;
      ch = chars[++pos]!;
    }
    word += ch;
  }
  return words;
}

/** Plain whitespace-separated words, no quote handling (FROM, EXPOSE, shell-form COPY/ADD/VOLUME). */
export function splitPlainWords(rest: string): string[] {
  if (rest === '') return [];
  return rest.split(WHITESPACE_RUN);
}

/** The first word and the remainder, for the legacy `ENV key value with spaces` form. */
export function splitFirstWord(rest: string): [string] | [string, string] {
  const match = WHITESPACE_RUN.exec(rest);
  if (!match) return [rest];
  return [rest.slice(0, match.index), rest.slice(match.index + match[0].length)];
}

export type JsonArgs =
  | { kind: 'strings'; values: string[] }
  | { kind: 'not-json' }
  | { kind: 'not-strings' };

/**
 * The exec form: arguments that parse as a JSON array of strings. Anything that is not valid
 * JSON is shell form, as in Docker; a valid array holding a non-string is an error.
 */
export function parseJsonArgs(rest: string): JsonArgs {
  const text = trimGoSpaceStart(rest);
  if (!text.startsWith('[')) return { kind: 'not-json' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { kind: 'not-json' };
  }
  if (!Array.isArray(parsed)) return { kind: 'not-json' };
  if (!parsed.every((item): item is string => typeof item === 'string')) return { kind: 'not-strings' };
  return { kind: 'strings', values: parsed };
}
