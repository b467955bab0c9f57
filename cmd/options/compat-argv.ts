/**
 * kaniko parses its command line with pflag, which reads `-fDockerfile.prod` as
 * `-f Dockerfile.prod`, and gives a flag that takes a value the next word even when it
 * starts with a dash (`--label -x`); yargs would read the first as the flags -f, -D, -o…
 * and the second as two flags. This rewrites such words into forms yargs reads the same
 * way (`-f=Dockerfile.prod`, `--label=-x`), so a kaniko command line means the same to kiln.
 *
 * `takesValue(name)` says whether the flag of that name takes a value (true), is a boolean
 * (false), or is unknown (undefined: left for the parser to report).
 */
export function normalizePflagArgv(argv: readonly string[], takesValue: (name: string) => boolean | undefined): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      out.push(...argv.slice(i));
      break;
    }
    if (arg.startsWith('--')) {
      // `--flag VALUE`: the value is the next word, whatever it starts with (`--label -x`).
      const joins = !arg.includes('=') && takesValue(arg.slice(2)) === true && i + 1 < argv.length;
      out.push(joins ? `${arg}=${argv[++i]!}` : arg);
      continue;
    }
    if (!/^-[A-Za-z]/.test(arg)) {
      out.push(arg);
      continue;
    }
    const { words, valueFlag } = splitCluster(arg.slice(1), takesValue);
    out.push(...words);
    if (valueFlag !== undefined) out.push(i + 1 < argv.length ? `-${valueFlag}=${argv[++i]!}` : `-${valueFlag}`);
  }
  return out;
}

/**
 * pflag's reading of `-abc`: booleans stand alone; the first flag that takes a value takes
 * the rest of the word or, when nothing follows it, the next word (`valueFlag`).
 */
function splitCluster(letters: string, takesValue: (name: string) => boolean | undefined): { words: string[]; valueFlag?: string } {
  const words: string[] = [];
  for (let j = 0; j < letters.length; j++) {
    const letter = letters[j]!;
    const kind = takesValue(letter);
    if (kind === undefined) return { words: [...words, `-${letters.slice(j)}`] };
    if (!kind) {
      words.push(`-${letter}`);
      continue;
    }
    const rest = letters.slice(j + 1);
    if (rest === '') return { words, valueFlag: letter };
    return { words: [...words, `-${letter}=${rest.startsWith('=') ? rest.slice(1) : rest}`] };
  }
  return { words };
}
