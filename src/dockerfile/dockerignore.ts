/**
 * `.dockerignore` with Docker's semantics (moby/patternmatcher and its ignore-file reader):
 * `#` comments at the start of a line, patterns cleaned like Go's filepath.Clean with a leading
 * `/` dropped, Go filepath.Match wildcards plus `**` for any number of directories, `!` for
 * exceptions, the last matching pattern wins, and a path is ignored when it or one of its parent
 * directories is.
 *
 * The caller picks the text: `<Dockerfile>.dockerignore` next to the Dockerfile takes precedence
 * over `.dockerignore` at the context root.
 */
import { dockerfileError } from './errors.js';

export interface IgnoreMatcher {
  /**
   * Whether a path, relative to the context root with `/` separators, is left out of the
   * context. Docker matches files and directories alike; `isDir` is there for walkers to pass.
   */
  ignores(relPath: string, isDir: boolean): boolean;
  /**
   * Whether an exception pattern could bring back something below this directory, so a walker
   * must descend into it even when the directory itself is ignored. May answer true when in
   * doubt (patterns with `**`), never false when something below is included.
   */
  mayContainIncluded(dirRelPath: string): boolean;
}

/** Go's path.Clean: one slash between elements, no `.` elements, `..` resolved where it can be. */
export function cleanPath(path: string): string {
  if (path === '') return '.';
  const rooted = path.startsWith('/');
  const out: string[] = [];
  for (const element of path.split('/')) {
    if (element === '' || element === '.') continue;
    if (element === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(element);
  }
  const joined = out.join('/');
  if (rooted) return `/${joined}`;
  return joined === '' ? '.' : joined;
}

/**
 * Whether Go's filepath.Match would accept the pattern: every `[` class closed and not empty,
 * ranges complete, and no escape at the very end.
 */
function isValidGoPattern(pattern: string): boolean {
  const chars = Array.from(pattern);
  let i = 0;
  const readClassChar = (): boolean => {
    const ch = chars[i];
    if (ch === undefined || ch === '-' || ch === ']') return false;
    if (ch === '\\') {
      i++;
      if (chars[i] === undefined) return false;
    }
    i++;
    return true;
  };
  while (i < chars.length) {
    const ch = chars[i]!;
    if (ch === '\\') {
      if (i + 1 >= chars.length) return false;
      i += 2;
      continue;
    }
    if (ch !== '[') {
      i++;
      continue;
    }
    i++;
    if (chars[i] === '^') i++;
    let ranges = 0;
    for (;;) {
      if (chars[i] === ']' && ranges > 0) {
        i++;
        break;
      }
      if (!readClassChar()) return false;
      if (chars[i] === '-') {
        i++;
        if (!readClassChar()) return false;
      }
      ranges++;
    }
  }
  return true;
}

/** Characters that need a backslash in a JavaScript regular expression with the `u` flag. */
const REGEXP_SYNTAX = new Set(['^', '$', '\\', '.', '*', '+', '?', '(', ')', '[', ']', '{', '}', '|', '/', '-']);
/** Characters Docker escapes because filepath.Match gives them no meaning. */
const DOCKER_ESCAPED = new Set(['.', '+', '(', ')', '|', '{', '}', '$']);

type MatchType = 'exact' | 'prefix' | 'suffix' | 'regexp';

/** One pattern, compiled the way patternmatcher does: plain strings stay string comparisons. */
class Pattern {
  readonly matchType: MatchType;
  private readonly regexp?: RegExp;

  constructor(
    readonly cleaned: string,
    readonly exception: boolean,
  ) {
    const compiled = compile(cleaned);
    this.matchType = compiled.matchType;
    if (compiled.regexp) this.regexp = compiled.regexp;
  }

  matches(path: string): boolean {
    switch (this.matchType) {
      case 'exact':
        return path === this.cleaned;
      case 'prefix':
        return path.startsWith(this.cleaned.slice(0, -2));
      case 'suffix': {
        const suffix = this.cleaned.slice(2);
        if (path.endsWith(suffix)) return true;
        return suffix.startsWith('/') && path === suffix.slice(1); // `**/foo` also matches `foo`
      }
      case 'regexp':
        return this.regexp!.test(path);
    }
  }
}

function compile(pattern: string): { matchType: MatchType; regexp?: RegExp } {
  const chars = Array.from(pattern);
  let source = '^';
  let matchType: MatchType = 'exact';
  let inClass = false;
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    if (ch === '*') {
      if (chars[i + 1] === '*') {
        i++;
        if (chars[i + 1] === '/') i++; // `**/` is `**`
        if (i + 1 >= chars.length) {
          // A trailing `**` accepts everything below, as in .gitignore.
          if (matchType === 'exact') matchType = 'prefix';
          else {
            source += '[^\\n]*';
            matchType = 'regexp';
          }
        } else {
          source += '(?:[^\\n]*/)?';
          matchType = 'regexp';
        }
        if (i <= 2 && chars[0] === '*' && chars[1] === '*') matchType = 'suffix';
      } else {
        source += '[^/]*';
        matchType = 'regexp';
      }
    } else if (ch === '?') {
      source += '[^/]';
      matchType = 'regexp';
    } else if (DOCKER_ESCAPED.has(ch)) {
      source += `\\${ch}`;
    } else if (ch === '\\') {
      const next = chars[i + 1];
      if (next === undefined) {
        source += '\\\\';
      } else {
        i++;
        source += REGEXP_SYNTAX.has(next) ? `\\${next}` : next;
        matchType = 'regexp';
      }
    } else if (ch === '[' || ch === ']') {
      if (ch === '[') inClass = true;
      if (ch === ']' && !inClass) source += '\\]';
      else source += ch;
      if (ch === ']') inClass = false;
      matchType = 'regexp';
    } else {
      source += ch;
    }
  }
  if (matchType !== 'regexp') return { matchType };
  return { matchType, regexp: new RegExp(`${source}$`, 'u') };
}

interface PatternLine {
  text: string;
  line: number;
}

/** The patterns of an ignore file, as Docker reads them (moby/patternmatcher/ignorefile.ReadAll). */
function readPatterns(text: string): PatternLine[] {
  const patterns: PatternLine[] = [];
  text.replace(/^\uFEFF/, '').split(/\r?\n/).forEach((raw, index) => {
    if (raw.startsWith('#')) return;
    let pattern = raw.trim();
    if (pattern === '') return;
    const exception = pattern.startsWith('!');
    if (exception) pattern = pattern.slice(1).trim();
    if (pattern.length > 0) {
      pattern = cleanPath(pattern);
      if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
    }
    patterns.push({ text: exception ? `!${pattern}` : pattern, line: index + 1 });
  });
  return patterns;
}

export function createIgnoreMatcher(text: string, file = '.dockerignore'): IgnoreMatcher {
  const patterns: Pattern[] = [];
  for (const { text: written, line } of readPatterns(text)) {
    const at = { file, line };
    let pattern = cleanPath(written.trim());
    const exception = pattern.startsWith('!');
    if (exception) {
      if (pattern.length === 1) throw dockerfileError(at, `"!" alone is not a pattern; write !<path> to bring a path back.`);
      pattern = pattern.slice(1);
    }
    if (!isValidGoPattern(pattern)) {
      throw dockerfileError(at, `"${written}" is not a valid pattern; close every [ ] class and end no pattern with a backslash.`);
    }
    patterns.push(new Pattern(pattern, exception));
  }
  return new DockerIgnore(patterns);
}

class DockerIgnore implements IgnoreMatcher {
  private readonly exceptions: Pattern[];

  constructor(private readonly patterns: readonly Pattern[]) {
    this.exceptions = patterns.filter((pattern) => pattern.exception);
  }

  ignores(relPath: string, _isDir: boolean): boolean {
    const path = normalise(relPath);
    if (path === '.') return false;
    const slash = path.lastIndexOf('/');
    const parents = slash < 0 ? [] : path.slice(0, slash).split('/');

    let ignored = false;
    for (const pattern of this.patterns) {
      // An include cannot change an ignored path, nor an exception a kept one.
      if (pattern.exception !== ignored) continue;
      let matched = pattern.matches(path);
      for (let i = 0; !matched && i < parents.length; i++) matched = pattern.matches(parents.slice(0, i + 1).join('/'));
      if (matched) ignored = !pattern.exception;
    }
    return ignored;
  }

  mayContainIncluded(dirRelPath: string): boolean {
    const dir = normalise(dirRelPath);
    const dirParts = dir === '.' ? [] : dir.split('/');
    return this.exceptions.some((pattern) => couldMatchBelow(pattern.cleaned.split('/'), dirParts));
  }
}

function normalise(relPath: string): string {
  const cleaned = cleanPath(relPath);
  return cleaned.startsWith('/') ? cleanPath(cleaned.slice(1)) : cleaned;
}

/** Whether a pattern's leading components can match the directory, leaving room for a path below it. */
function couldMatchBelow(patternParts: readonly string[], dirParts: readonly string[]): boolean {
  for (let i = 0; i < dirParts.length; i++) {
    const part = patternParts[i];
    if (part === undefined) return false;
    if (part.includes('**')) return true;
    if (!new Pattern(part, false).matches(dirParts[i]!)) return false;
  }
  return true;
}
