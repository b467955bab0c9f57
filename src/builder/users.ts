// USER and COPY --chown, resolved the way Docker resolves them: names come from the image's
// own /etc/passwd and /etc/group, read by kiln (never the host's user database), and a
// numeric id needs no entry at all.
import { readFile } from 'node:fs/promises';
import { KilnError } from '../util/errors.js';
import { resolveInRoot } from './isolation/root-path.js';

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Supplementary groups: the groups listing the user as a member, unless a group was given. */
  groups: number[];
  home: string;
}

export interface Owner {
  uid: number;
  gid: number;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

const PASSWD = '/etc/passwd';
const GROUP = '/etc/group';
/** runc's bounds for a uid or gid. */
const MAX_ID = 2 ** 31 - 1;

/**
 * The identity a RUN command runs as for USER `userSpec` (`''`, `name`, `uid`, `name:group`,
 * `uid:gid`, ...). The default user is root; a uid without a passwd entry gets gid 0 and
 * home `/`.
 */
export async function resolveUser(rootDir: string, userSpec: string): Promise<ResolvedUser> {
  const { user, group } = splitSpec(userSpec, 'USER');
  const passwd = await readImageFile(rootDir, PASSWD);
  const entries = passwd === undefined ? [] : parsePasswd(passwd);
  const uidArg = numericId(user, userSpec);

  // As runc: '' is uid 0; a number matches a user of that name or uid, whichever comes first.
  const entry = entries.find((e) => (user === '' ? e.uid === 0 : e.name === user || e.uid === uidArg));
  if (entry === undefined && uidArg === undefined && user !== '') throw unknown('user', user, PASSWD, passwd === undefined);
  const uid = entry?.uid ?? uidArg ?? 0;
  const home = entry?.home || '/';

  if (group !== undefined) {
    return { uid, gid: await resolveGroup(rootDir, group, userSpec, true), groups: [], home };
  }
  const gid = entry?.gid ?? 0;
  if (entry === undefined) return { uid, gid, groups: [], home };
  const groupFile = await readImageFile(rootDir, GROUP);
  const memberships = groupFile === undefined ? [] : parseGroup(groupFile).filter((g) => g.members.includes(entry.name));
  return { uid, gid, groups: [...new Set(memberships.map((g) => g.gid))], home };
}

/**
 * The owner of files copied with `--chown=chownSpec`, as BuildKit resolves it: a name must
 * exist in the image; a numeric uid without a group is also the gid; a name without a group
 * takes the user's primary group.
 */
export async function resolveOwner(rootDir: string, chownSpec: string): Promise<Owner> {
  const { user, group } = splitSpec(chownSpec, '--chown');
  const uidArg = numericId(user, chownSpec);
  let uid = uidArg ?? 0;
  let gid = uidArg ?? 0;
  if (user !== '' && uidArg === undefined) {
    const passwd = await readImageFile(rootDir, PASSWD);
    const entry = passwd === undefined ? undefined : parsePasswd(passwd).find((e) => e.name === user);
    if (entry === undefined) throw unknown('user', user, PASSWD, passwd === undefined);
    uid = entry.uid;
    gid = entry.gid;
  }
  if (group !== undefined) gid = await resolveGroup(rootDir, group, chownSpec, false);
  return { uid, gid };
}

/** A group name from /etc/group, or a number; with `numberMayName`, a group named by the number wins (runc). */
async function resolveGroup(rootDir: string, group: string, spec: string, numberMayName: boolean): Promise<number> {
  const gidArg = numericId(group, spec);
  if (gidArg !== undefined && !numberMayName) return gidArg;
  const text = await readImageFile(rootDir, GROUP);
  const entry = text === undefined ? undefined : parseGroup(text).find((g) => g.name === group || g.gid === gidArg);
  if (entry !== undefined) return entry.gid;
  if (gidArg !== undefined) return gidArg;
  throw unknown('group', group, GROUP, text === undefined);
}

function splitSpec(spec: string, what: string): { user: string; group: string | undefined } {
  const at = spec.indexOf(':');
  const user = at < 0 ? spec : spec.slice(0, at);
  const group = at < 0 ? undefined : spec.slice(at + 1);
  if (group?.includes(':')) throw new KilnError('INVALID_USER', `${what} "${spec}" is not of the form user[:group].`);
  return { user, group: group === '' ? undefined : group };
}

/** The number `text` spells, undefined for a name; out-of-range numbers are refused. */
function numericId(text: string, spec: string): number | undefined {
  if (!/^[0-9]+$/.test(text)) return undefined;
  const id = Number(text);
  if (id > MAX_ID) throw new KilnError('INVALID_USER', `The id ${text} in "${spec}" is out of range (0 to ${MAX_ID}).`);
  return id;
}

function unknown(kind: 'user' | 'group', name: string, file: string, fileMissing: boolean): KilnError {
  const where = fileMissing ? `the image has no ${file}` : `it is not in the image's ${file}`;
  return new KilnError('UNKNOWN_USER', `The ${kind} "${name}" does not exist: ${where}.`);
}

async function readImageFile(rootDir: string, path: string): Promise<string | undefined> {
  const { hostPath } = await resolveInRoot(rootDir, path);
  try {
    return await readFile(hostPath, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new KilnError('IO', `Cannot read the image's ${path}: ${(error as Error).message}.`, { cause: error });
  }
}

/** name:password:uid:gid:gecos:home:shell; lines kiln cannot read (comments, NIS `+`) are skipped. */
export function parsePasswd(text: string): PasswdEntry[] {
  const entries: PasswdEntry[] = [];
  for (const line of lines(text)) {
    const fields = line.split(':');
    const uid = id(fields[2]);
    const gid = id(fields[3]);
    if (fields[0] === '' || uid === undefined || gid === undefined) continue;
    entries.push({ name: fields[0]!, uid, gid, home: fields[5] ?? '' });
  }
  return entries;
}

/** name:password:gid:member,member */
export function parseGroup(text: string): GroupEntry[] {
  const entries: GroupEntry[] = [];
  for (const line of lines(text)) {
    const fields = line.split(':');
    const gid = id(fields[2]);
    if (fields[0] === '' || gid === undefined) continue;
    const members = (fields[3] ?? '').split(',').map((m) => m.trim()).filter(Boolean);
    entries.push({ name: fields[0]!, gid, members });
  }
  return entries;
}

function lines(text: string): string[] {
  return text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('+') && !l.startsWith('-'));
}

function id(field: string | undefined): number | undefined {
  return field !== undefined && /^[0-9]+$/.test(field) && Number(field) <= MAX_ID ? Number(field) : undefined;
}
