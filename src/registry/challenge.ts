/** A parsed `WWW-Authenticate` challenge (RFC 7235) as registries send it. */
export interface Challenge {
  scheme: 'basic' | 'bearer' | string;
  params: Record<string, string>;
}

const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]+/y;

/**
 * Parses `Bearer realm="https://auth",service="registry",scope="repository:a:pull"` and
 * `Basic realm="x"`. Several challenges in one header are returned in order.
 */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const text = Array.isArray(header) ? header.join(', ') : header;
  const challenges: Challenge[] = [];
  let pos = 0;
  const skipSpace = () => { while (pos < text.length && /[\s,]/.test(text[pos]!)) pos++; };
  const readToken = (): string | undefined => {
    TOKEN.lastIndex = pos;
    const match = TOKEN.exec(text);
    if (!match) return undefined;
    pos = TOKEN.lastIndex;
    return match[0];
  };
  while (pos < text.length) {
    skipSpace();
    const scheme = readToken();
    if (!scheme) break;
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(challenge);
    for (;;) {
      while (pos < text.length && /\s/.test(text[pos]!)) pos++;
      const save = pos;
      const name = readToken();
      while (pos < text.length && /\s/.test(text[pos]!)) pos++;
      if (!name || text[pos] !== '=') { pos = save; break; }
      pos++;
      while (pos < text.length && /\s/.test(text[pos]!)) pos++;
      let value = '';
      if (text[pos] === '"') {
        pos++;
        while (pos < text.length && text[pos] !== '"') {
          if (text[pos] === '\\' && pos + 1 < text.length) pos++;
          value += text[pos++];
        }
        pos++;
      } else {
        // Unquoted values are tokens by the RFC, but realms like https://x/t appear unquoted in the wild.
        while (pos < text.length && !/[\s,]/.test(text[pos]!)) value += text[pos++];
      }
      challenge.params[name.toLowerCase()] = value;
      while (pos < text.length && /\s/.test(text[pos]!)) pos++;
      if (text[pos] === ',') pos++;
      else break;
    }
  }
  return challenges;
}
