/**
 * Turns Dockerfile text into logical lines exactly as BuildKit's parser reads it: parser
 * directives at the top, comment lines dropped (also inside a continuation), empty
 * continuation lines skipped with a warning, the escape character continuing a line, and
 * heredoc bodies read after the line that opens them.
 */
import { dockerfileError, type SourceLocation } from './errors.js';
import { heredocMarkersOf, isTerminator, type HeredocMarker } from './heredoc.js';
import { ExpansionError, isGoSpace, type EscapeChar } from './lex.js';
import { parseJsonArgs, splitCommand } from './words.js';

export interface HeredocBody {
  marker: HeredocMarker;
  /** The body lines as written, line endings included; tabs not yet stripped. */
  raw: string;
}

export interface LogicalLine {
  /** Continuation lines joined without their escape character; what Docker calls the original. */
  text: string;
  /** 1-based line of the first physical line. */
  startLine: number;
  /** 1-based line of the last physical line, heredoc bodies included. */
  endLine: number;
  heredocs: HeredocBody[];
}

export interface ParserDirective {
  name: 'syntax' | 'escape' | 'check';
  value: string;
  line: number;
}

export interface DockerfileWarning {
  line: number;
  message: string;
}

export interface ScannedDockerfile {
  escape: EscapeChar;
  directives: ParserDirective[];
  lines: LogicalLine[];
  warnings: DockerfileWarning[];
}

const DIRECTIVE = /^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;
const KNOWN_DIRECTIVES = new Set(['syntax', 'escape', 'check']);
/** An escape at the end of a line continues it, unless the escape is itself escaped. */
const CONTINUATION: Readonly<Record<EscapeChar, RegExp>> = {
  '\\': /([^\\])\\[ \t]*$|^\\[ \t]*$/,
  '`': /([^`])`[ \t]*$|^`[ \t]*$/,
};

/** Instructions whose shell form may open heredocs (ONBUILD looks at its trigger). */
const HEREDOC_INSTRUCTIONS = new Set(['run', 'copy', 'add']);

function trimLeadingSpace(text: string): string {
  let start = 0;
  while (start < text.length && isGoSpace(text[start]!)) start++;
  return text.slice(start);
}

const trimLineEnding = (raw: string): string => raw.replace(/[\r\n]+$/, '');
const isComment = (raw: string): boolean => trimLeadingSpace(raw).startsWith('#');

/** Splits into physical lines, each keeping its line ending (heredoc bodies need them). */
function physicalLines(text: string): string[] {
  const lines = text.split(/(?<=\n)/);
  if (lines.length > 0) lines[0] = lines[0]!.replace(/^\uFEFF/, '');
  return lines;
}

function canOpenHeredoc(line: string): boolean {
  let { keyword, rest } = splitCommand(line);
  if (keyword.toLowerCase() === 'onbuild') ({ keyword, rest } = splitCommand(rest));
  return HEREDOC_INSTRUCTIONS.has(keyword.toLowerCase()) && parseJsonArgs(rest).kind === 'not-json';
}

/** Reads `# name=value` lines at the top of the file until anything else appears. */
class DirectiveReader {
  private done = false;
  readonly found: ParserDirective[] = [];
  escape: EscapeChar = '\\';

  constructor(private readonly file: string) {}

  read(line: string, lineNumber: number): void {
    if (this.done) return;
    if (!line.startsWith('#')) {
      this.done = true;
      return;
    }
    const match = DIRECTIVE.exec(trimLeadingSpace(line.slice(1)));
    const name = match?.[1]!.toLowerCase();
    if (!match || !name || !KNOWN_DIRECTIVES.has(name)) {
      this.done = true;
      return;
    }
    const at = { file: this.file, line: lineNumber };
    const earlier = this.found.find((directive) => directive.name === name);
    if (earlier) {
      throw dockerfileError(at, `the ${name} parser directive is given a second time (first on line ${earlier.line}); keep only one.`);
    }
    const value = match[2]!;
    if (name === 'escape') {
      if (value !== '\\' && value !== '`') {
        throw dockerfileError(at, `the escape directive must be \\ or \`, not "${value}"; write "# escape=\\" or "# escape=\`".`);
      }
      this.escape = value;
    }
    this.found.push({ name: name as ParserDirective['name'], value, line: lineNumber });
  }
}

export function scanDockerfile(text: string, file: string): ScannedDockerfile {
  const raw = physicalLines(text);
  const directives = new DirectiveReader(file);
  const lines: LogicalLine[] = [];
  const warnings: DockerfileWarning[] = [];
  let index = 0;

  const trimContinuation = (line: string): { text: string; ends: boolean } => {
    const pattern = CONTINUATION[directives.escape];
    return pattern.test(line) ? { text: line.replace(pattern, '$1'), ends: false } : { text: line, ends: true };
  };

  while (index < raw.length) {
    const first = raw[index]!;
    const startLine = ++index;
    const token = trimLeadingSpace(trimLineEnding(first));
    directives.read(token, startLine);
    let { text: line, ends } = trimContinuation(isComment(token) ? '' : token);
    if (ends && line === '') continue;

    let emptyContinuationAt: number | undefined;
    while (!ends && index < raw.length) {
      const next = raw[index]!;
      const lineNumber = ++index;
      if (isComment(next)) continue;
      const piece = trimLineEnding(next);
      if (trimLeadingSpace(piece).length === 0) {
        emptyContinuationAt ??= lineNumber;
        continue;
      }
      const trimmed = trimContinuation(piece);
      line += trimmed.text;
      ends = trimmed.ends;
    }
    if (emptyContinuationAt !== undefined) {
      warnings.push({ line: emptyContinuationAt, message: 'empty continuation line; Docker will refuse these in a future release, remove it' });
    }

    const opened = line.includes('<<') && canOpenHeredoc(line) ? readHeredocs(line, raw, index, { file, line: startLine }) : undefined;
    const heredocs = opened?.heredocs ?? [];
    index = opened?.next ?? index;
    lines.push({ text: line, startLine, endLine: index, heredocs });
  }

  return { escape: directives.escape, directives: directives.found, lines, warnings };
}

/** Reads the bodies of the heredocs a line opens, in order, from the physical line `start` on. */
function readHeredocs(line: string, raw: readonly string[], start: number, at: SourceLocation): { heredocs: HeredocBody[]; next: number } {
  let markers: HeredocMarker[];
  try {
    markers = heredocMarkersOf(line);
  } catch (err) {
    if (!(err instanceof ExpansionError)) throw err;
    throw dockerfileError(at, `a heredoc delimiter has an unclosed quote (${err.message}); close it, e.g. <<"EOF".`);
  }
  const heredocs: HeredocBody[] = [];
  let index = start;
  for (const marker of markers) {
    let body = '';
    let terminated = false;
    while (index < raw.length) {
      const bodyLine = raw[index++]!;
      if (isTerminator(bodyLine, marker)) {
        terminated = true;
        break;
      }
      body += bodyLine;
    }
    if (!terminated) {
      throw dockerfileError(at, `the heredoc <<${marker.stripTabs ? '-' : ''}${marker.name} is never terminated; end it with a line that holds only ${marker.name}.`);
    }
    heredocs.push({ marker, raw: body });
  }
  return { heredocs, next: index };
}
