/**
 * Shell-word processing as BuildKit's Dockerfile frontend does it (frontend/dockerfile/shell/lex.go):
 * quotes, the escape character, and `$VAR` / `${VAR…}` substitution with the modifiers BuildKit
 * supports. kiln follows it character for character, quirks included, so a Dockerfile expands to
 * the same words under kiln as under `docker build`.
 */

export type EscapeChar = '\\' | '`';

/**
 * How quote characters are treated:
 * - `remove`: quotes group characters and are dropped (what instructions see);
 * - `keep`: quotes group characters and stay in the text (used to locate heredoc markers);
 * - `literal`: quotes are ordinary characters (used to expand heredoc bodies).
 */
export type QuoteHandling = 'remove' | 'keep' | 'literal';

/** What an unset variable becomes: nothing, or its own `$NAME` text left in place. */
export type UnsetHandling = 'empty' | 'keep';

export interface LexOptions {
  escape: EscapeChar;
  quotes?: QuoteHandling;
  /** Keep escape characters in the output instead of consuming them. */
  rawEscapes?: boolean;
  unset?: UnsetHandling;
}

export interface LexResult {
  /** The processed text as one word, inner whitespace kept. */
  text: string;
  /** The processed text split into words the way Docker splits EXPOSE or heredoc lines. */
  words: string[];
  /** Variables that were looked up and found. */
  matched: Set<string>;
  /** Variables that were looked up and not found. */
  unmatched: Set<string>;
}

export type VariableSource = ReadonlyMap<string, string>;

/** A syntax error in a word or a failed `${VAR?message}`; callers add the file and line. */
export class ExpansionError extends Error {
  override name = 'ExpansionError';

  /** Set when `${VAR?message}` or `${VAR:?message}` failed: the variable that must be set. */
  constructor(message: string, readonly requiredVariable?: string) {
    super(message);
  }
}

export function lexWord(text: string, vars: VariableSource, options: LexOptions): LexResult {
  const lexer = new Lexer(text, vars, options);
  const { text: out, words } = lexer.processStopOn(undefined, options.rawEscapes ?? false);
  return { text: out, words, matched: lexer.matched, unmatched: lexer.unmatched };
}

const EOF = undefined;
type Char = string | typeof EOF;

/** Go's unicode.IsSpace. */
export function isGoSpace(ch: string): boolean {
  const code = ch.codePointAt(0)!;
  if (code <= 0xff) return code === 0x20 || (code >= 0x09 && code <= 0x0d) || code === 0x85 || code === 0xa0;
  return /\p{White_Space}/u.test(ch);
}

const isLetter = (ch: string): boolean => /\p{L}/u.test(ch);
const isDigit = (ch: string): boolean => /\p{Nd}/u.test(ch);
/** POSIX special parameters: `$@ $* $# $? $- $$ $! $0`. */
const isSpecialParam = (ch: string): boolean => '@*#?-$!0'.includes(ch);

/** Accumulates words; whitespace produced by a variable splits, quoted text never does. */
class WordCollector {
  private word = '';
  private inWord = false;
  private readonly words: string[] = [];

  addChar(ch: string): void {
    if (isGoSpace(ch)) {
      if (this.inWord && this.word.length !== 0) {
        this.words.push(this.word);
        this.word = '';
        this.inWord = false;
      }
    } else {
      this.addRawChar(ch);
    }
  }

  addRawChar(ch: string): void {
    this.word += ch;
    this.inWord = true;
  }

  addString(text: string): void {
    for (const ch of text) this.addChar(ch);
  }

  addRawString(text: string): void {
    this.word += text;
    this.inWord = true;
  }

  result(): string[] {
    if (this.word.length > 0) {
      this.words.push(this.word);
      this.word = '';
      this.inWord = false;
    }
    return this.words;
  }
}

class Lexer {
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();
  private readonly chars: string[];
  private pos = 0;
  private rawEscapes: boolean;
  private readonly escape: EscapeChar;
  private readonly quotes: QuoteHandling;
  private readonly keepUnset: boolean;

  constructor(
    text: string,
    private readonly vars: VariableSource,
    options: LexOptions,
  ) {
    this.chars = Array.from(text);
    this.escape = options.escape;
    this.quotes = options.quotes ?? 'remove';
    this.rawEscapes = options.rawEscapes ?? false;
    this.keepUnset = options.unset === 'keep';
  }

  private peek(): Char {
    return this.chars[this.pos];
  }

  private next(): Char {
    const ch = this.chars[this.pos];
    if (ch !== EOF) this.pos++;
    return ch;
  }

  processStopOn(stopChar: string | undefined, rawEscapes: boolean): { text: string; words: string[] } {
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      return this.processUntil(stopChar);
    } finally {
      this.rawEscapes = saved;
    }
  }

  private processUntil(stopChar: string | undefined): { text: string; words: string[] } {
    let result = '';
    const words = new WordCollector();
    const quotesAreSpecial = this.quotes !== 'literal';

    while (this.peek() !== EOF) {
      let ch = this.peek()!;
      if (stopChar !== undefined && ch === stopChar) {
        this.next();
        return { text: result, words: words.result() };
      }
      if (ch === '$') {
        const value = this.processDollar();
        result += value;
        words.addString(value);
      } else if (quotesAreSpecial && (ch === "'" || ch === '"')) {
        const value = ch === "'" ? this.processSingleQuote() : this.processDoubleQuote();
        result += value;
        words.addRawString(value);
      } else {
        ch = this.next()!;
        if (ch === this.escape) {
          if (this.rawEscapes) {
            words.addRawChar(ch);
            result += ch;
          }
          // The escape character escapes the next one, except at the very end.
          const escaped = this.next();
          if (escaped === EOF) break;
          ch = escaped;
          words.addRawChar(ch);
        } else {
          words.addChar(ch);
        }
        result += ch;
      }
    }
    if (stopChar !== undefined) {
      throw new ExpansionError(`unexpected end of statement while looking for matching ${stopChar}`);
    }
    return { text: result, words: words.result() };
  }

  /** Everything between single quotes is literal, and a single quote cannot be escaped. */
  private processSingleQuote(): string {
    const keep = this.quotes === 'keep';
    let result = '';
    const open = this.next()!;
    if (keep) result += open;
    for (;;) {
      const ch = this.next();
      if (ch === EOF) throw new ExpansionError('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") {
        if (keep) result += ch;
        return result;
      }
      result += ch;
    }
  }

  /** Inside double quotes only `$`, the escape character and `"` are special. */
  private processDoubleQuote(): string {
    const keep = this.quotes === 'keep';
    let result = '';
    const open = this.next()!;
    if (keep) result += open;
    for (;;) {
      const peeked = this.peek();
      if (peeked === EOF) throw new ExpansionError('unexpected end of statement while looking for matching double-quote');
      if (peeked === '"') {
        const close = this.next()!;
        if (keep) result += close;
        return result;
      }
      if (peeked === '$') {
        result += this.processDollar();
        continue;
      }
      let ch = this.next()!;
      if (ch === this.escape) {
        if (this.rawEscapes) result += ch;
        const after = this.peek();
        if (after === EOF) continue; // a trailing escape is dropped
        if (after === '"' || after === '$' || after === this.escape) ch = this.next()!;
      }
      result += ch;
    }
  }

  private processDollar(): string {
    this.next(); // '$'
    if (this.peek() !== '{') {
      const name = this.processName();
      if (name === '') return '$';
      const value = this.lookup(name);
      if (value === undefined && this.keepUnset) return `$${name}`;
      return value ?? '';
    }

    this.next(); // '{'
    const first = this.peek();
    if (first === EOF) throw new ExpansionError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new ExpansionError('syntax error: bad substitution');

    const name = this.processName();
    let ch = this.next();
    let modifier = ch ?? '';

    if (ch === '}') {
      const value = this.lookup(name);
      if (value === undefined && this.keepUnset) return `\${${name}}`;
      return value ?? '';
    }

    let nullIsUnset = false;
    if (ch === ':') {
      nullIsUnset = true;
      ch = this.next();
      modifier += ch ?? '';
    }

    if (ch === EOF) throw new ExpansionError("syntax error: missing '}'");
    if (ch === '/' && !nullIsUnset) return this.processReplace(name);
    if (!nullIsUnset && !(ch !== EOF && '+-?#%'.includes(ch))) {
      throw new ExpansionError(`unsupported modifier (${modifier}) in substitution`);
    }

    // `#` and `%` take a pattern, where escapes must survive to the pattern compiler.
    const patternModifier = ch === '#' || ch === '%';
    let word: string;
    try {
      word = this.processStopOn('}', patternModifier).text;
    } catch (err) {
      if (this.peek() === EOF) throw new ExpansionError("syntax error: missing '}'");
      throw err;
    }

    const value = this.lookup(name);
    const set = value !== undefined;
    if (this.keepUnset && !set) return `\${${name}${modifier}${word}}`;
    const empty = !set || (nullIsUnset && value === '');

    switch (ch) {
      case '-':
        return empty ? word : value!;
      case '+':
        return empty ? '' : word;
      case '?':
        if (!set) throw new ExpansionError(`${name}: ${word !== '' ? word : 'is not allowed to be unset'}`, name);
        if (nullIsUnset && value === '') throw new ExpansionError(`${name}: ${word !== '' ? word : 'is not allowed to be empty'}`, name);
        return value!;
      case '%':
      case '#': {
        // One `#`/`%` removes the shortest match, two remove the longest.
        let pattern = word;
        let greedy = false;
        if (pattern.length > 0 && pattern[0] === ch) {
          greedy = true;
          pattern = pattern.slice(1);
        }
        return ch === '%' ? trimSuffix(pattern, value ?? '', greedy) : trimPrefix(pattern, value ?? '', greedy);
      }
      default:
        throw new ExpansionError(`unsupported modifier (${modifier}) in substitution`);
    }
  }

  /** `${VAR/pattern/replacement}` and `${VAR//pattern/replacement}`. */
  private processReplace(name: string): string {
    const replaceAll = this.peek() === '/';
    if (replaceAll) this.next();

    let pattern: string;
    try {
      pattern = this.processStopOn('/', true).text;
    } catch (err) {
      if (this.peek() === EOF) throw new ExpansionError("syntax error: missing '/' in ${}");
      throw err;
    }
    let replacement: string;
    try {
      replacement = this.processStopOn('}', true).text;
    } catch (err) {
      if (this.peek() === EOF) throw new ExpansionError("syntax error: missing '}'");
      throw err;
    }

    const value = this.lookup(name);
    if (value === undefined && this.keepUnset) return `\${${name}/${pattern}/${replacement}}`;
    const subject = value ?? '';
    const regex = shellPatternToRegExp(pattern, true, false, replaceAll ? 'gu' : 'u');
    if (replaceAll) return subject.replace(regex, (match) => expandGoTemplate(replacement, match));
    const found = regex.exec(subject);
    if (!found) return subject;
    return subject.slice(0, found.index) + replacement + subject.slice(found.index + found[0].length);
  }

  /** A name is letters, digits and `_`; or digits only; or one special parameter. */
  private processName(): string {
    let name = '';
    while (this.peek() !== EOF) {
      const ch = this.peek()!;
      if (name === '' && isDigit(ch)) {
        while (this.peek() !== EOF && isDigit(this.peek()!)) name += this.next();
        return name;
      }
      if (name === '' && isSpecialParam(ch)) {
        this.next();
        return ch;
      }
      if (!isLetter(ch) && !isDigit(ch) && ch !== '_') break;
      name += this.next();
    }
    return name;
  }

  private lookup(name: string): string | undefined {
    const value = this.vars.get(name);
    if (value === undefined) this.unmatched.add(name);
    else this.matched.add(name);
    return value;
  }
}

/**
 * Converts a `${VAR#pattern}`-style shell pattern (`*`, `?`, backslash escapes, no brackets)
 * into a regular expression, as BuildKit's convertShellPatternToRegex does.
 */
export function shellPatternToRegExp(pattern: string, greedy: boolean, anchored: boolean, flags = 'u'): RegExp {
  // Go's `.` never matches a newline; neither does this class.
  const any = '[^\\n]';
  let out = anchored ? '^' : '';
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const tok = chars[i]!;
    switch (tok) {
      case '*':
        out += greedy ? `${any}*` : `${any}*?`;
        continue;
      case '?':
        out += any;
        continue;
      case '\\': {
        const following = chars[i + 1];
        // `}` and `/` are escaped only to get them past the ${} parser.
        if (following === '}' || following === '/') continue;
        i++;
        if (following !== '*' && following !== '?' && following !== '\\') {
          throw new ExpansionError(`invalid pattern (${pattern}) in substitution: invalid escape '\\${following ?? ''}'`);
        }
        out += `\\${following}`;
        continue;
      }
      case '[': case ']': case '{': case '}': case '.': case '+': case '(': case ')': case '|': case '^': case '$':
        out += `\\${tok}`;
        continue;
      default:
        out += tok;
    }
  }
  return new RegExp(out, flags);
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const found = shellPatternToRegExp(pattern, greedy, true).exec(value);
  return found ? value.slice(found[0].length) : value;
}

/** Reverses a pattern but keeps each escape before the character it escapes. */
export function reversePattern(pattern: string): string {
  const chars = Array.from(pattern);
  const out = new Array<string>(chars.length);
  const last = chars.length - 1;
  for (let i = 0; i <= last; ) {
    const tok = chars[i]!;
    const outIndex = last - i;
    if (tok === '\\' && i !== last) {
      out[outIndex - 1] = tok;
      out[outIndex] = chars[i + 1]!;
      i += 2;
    } else {
      out[outIndex] = tok;
      i++;
    }
  }
  return out.join('');
}

const reverseString = (text: string): string => Array.from(text).reverse().join('');

/** The shortest (or longest) suffix match, found as a prefix match on reversed strings. */
function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  return reverseString(trimPrefix(reversePattern(pattern), reverseString(value), greedy));
}

/**
 * Go's Regexp.Expand on a replacement template, which is what `${VAR//p/r}` uses: `$$` is a
 * dollar, `$0`/`${0}` the match, any other `$name` empty (the pattern has no groups).
 */
function expandGoTemplate(template: string, match: string): string {
  let out = '';
  for (let i = 0; i < template.length; i++) {
    const ch = template[i]!;
    if (ch !== '$') {
      out += ch;
      continue;
    }
    if (template[i + 1] === '$') {
      out += '$';
      i++;
      continue;
    }
    const braced = template[i + 1] === '{';
    const rest = template.slice(i + (braced ? 2 : 1));
    const name = /^[A-Za-z0-9_]+/.exec(rest)?.[0];
    if (!name || (braced && rest[name.length] !== '}')) {
      out += '$';
      continue;
    }
    if (name === '0') out += match;
    i += name.length + (braced ? 2 : 0);
  }
  return out;
}
