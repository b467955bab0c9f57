// Go's filepath.Match for one path component, which is what COPY and ADD wildcards are:
// `*` any run of characters, `?` one character, `[...]` / `[^...]` a class with ranges, and
// `\` taking the next character literally. `*` never crosses a `/`, so kiln matches
// component by component while it walks the source tree.

/** Whether a source path holds a wildcard, as Docker decides it (any of `*?[`). */
export function hasWildcard(path: string): boolean {
  return /[*?[]/.test(path);
}

/** Compiles one component pattern; undefined when Go would report filepath.ErrBadPattern. */
export function compileComponent(pattern: string): RegExp | undefined {
  const chars = Array.from(pattern);
  let source = '^';
  let i = 0;
  const literal = (ch: string) => `\\u{${ch.codePointAt(0)!.toString(16)}}`;
  // A character inside a class: `\x` is x; `-` and `]` must be escaped.
  const classChar = (): string | undefined => {
    let ch = chars[i];
    if (ch === undefined || ch === '-' || ch === ']') return undefined;
    if (ch === '\\') {
      i++;
      ch = chars[i];
      if (ch === undefined) return undefined;
    }
    i++;
    return ch;
  };
  while (i < chars.length) {
    const ch = chars[i]!;
    if (ch === '*') {
      source += '[^/]*';
      i++;
    } else if (ch === '?') {
      source += '[^/]';
      i++;
    } else if (ch === '\\') {
      const next = chars[i + 1];
      if (next === undefined) return undefined;
      source += literal(next);
      i += 2;
    } else if (ch === '[') {
      i++;
      let negated = false;
      if (chars[i] === '^') {
        negated = true;
        i++;
      }
      let ranges = '';
      let count = 0;
      for (;;) {
        if (chars[i] === ']' && count > 0) {
          i++;
          break;
        }
        const lo = classChar();
        if (lo === undefined) return undefined;
        let hi = lo;
        if (chars[i] === '-') {
          i++;
          const end = classChar();
          if (end === undefined) return undefined;
          hi = end;
        }
        if (lo.codePointAt(0)! > hi.codePointAt(0)!) return undefined;
        ranges += lo === hi ? literal(lo) : `${literal(lo)}-${literal(hi)}`;
        count++;
      }
      // A negated class never matches the separator either.
      source += negated ? `[^/${ranges}]` : `[${ranges}]`;
    } else {
      source += literal(ch);
      i++;
    }
  }
  return new RegExp(`${source}$`, 'su');
}
