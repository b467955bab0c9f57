// `--chmod`, in the two notations BuildKit accepts: octal (`755`, `4755`), which replaces
// all permission bits, and chmod(1)'s symbolic clauses (`u+x,g-w`, `u=rwX,go=rX`, `g=u`),
// which change the bits each file already has. As in BuildKit, a clause without `ugoa`
// applies to everyone: there is no umask to honour inside an image.

/** The mode a copied entry gets from its source mode (st_mode & 0o7777). */
export type ModeChange = (mode: number, isDir: boolean) => number;

const OCTAL = /^[0-7]{1,4}$/;
const CLAUSE = /^([ugoa]*)((?:[-+=](?:[ugo]|[rwxXst]*))+)$/;
const ACTION = /([-+=])([ugo]|[rwxXst]*)/g;

const WHO_MASK: Record<string, number> = { u: 0o4700, g: 0o2070, o: 0o1007, a: 0o7777 };

/** Parses `spec`; undefined when it is neither notation. */
export function parseChmod(spec: string): ModeChange | undefined {
  if (OCTAL.test(spec)) {
    const mode = parseInt(spec, 8);
    return () => mode;
  }
  const clauses: { mask: number; actions: { op: string; perms: string }[] }[] = [];
  for (const clause of spec.split(',')) {
    const match = CLAUSE.exec(clause);
    if (match === null) return undefined;
    const who = match[1] === '' ? 'a' : match[1]!;
    let mask = 0;
    for (const w of who) mask |= WHO_MASK[w]!;
    const actions = [...match[2]!.matchAll(ACTION)].map((m) => ({ op: m[1]!, perms: m[2]! }));
    clauses.push({ mask, actions });
  }
  return (start, isDir) => {
    let mode = start & 0o7777;
    for (const { mask, actions } of clauses) {
      for (const { op, perms } of actions) {
        const bits = permissionBits(perms, mode, isDir) & mask;
        if (op === '+') mode |= bits;
        else if (op === '-') mode &= ~bits;
        // `=` clears what the clause's users had, setuid/setgid/sticky included, then sets.
        else mode = (mode & ~mask) | bits;
      }
    }
    return mode;
  };
}

/** The bits `perms` stands for, for all users; the clause's mask picks its users' share. */
function permissionBits(perms: string, mode: number, isDir: boolean): number {
  // `u`, `g`, `o`: a copy of that class's current rwx, for every class.
  if (perms === 'u') return ((mode >> 6) & 7) * 0o111;
  if (perms === 'g') return ((mode >> 3) & 7) * 0o111;
  if (perms === 'o') return (mode & 7) * 0o111;
  let bits = 0;
  for (const p of perms) {
    if (p === 'r') bits |= 0o444;
    else if (p === 'w') bits |= 0o222;
    else if (p === 'x') bits |= 0o111;
    // Execute only for directories and files some user may already execute.
    else if (p === 'X' && (isDir || (mode & 0o111) !== 0)) bits |= 0o111;
    else if (p === 's') bits |= 0o6000;
    else if (p === 't') bits |= 0o1000;
  }
  return bits;
}
