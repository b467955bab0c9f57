// The mounts a chroot RUN gets, as steps for the init (init.ts) to perform in the command's
// private mount namespace. They vanish with that namespace, whatever the command does.
//
// /dev is a fresh tmpfs holding only null, zero, full, random, urandom and tty (bind-mounted
// from the host), a private devpts instance and a tmpfs /dev/shm: the set Docker gives a build
// step. The host's whole /dev is not bound because a RUN step may run as real root, and the
// host's disks are no business of a build; binding single nodes also works in a user
// namespace, where creating device nodes does not.
import type { SetupStep } from './init.js';
import { hostTool } from './host-tools.js';

const DEVICES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];

const DEV_LINKS: [name: string, target: string][] = [
  ['fd', '/proc/self/fd'],
  ['stdin', '/proc/self/fd/0'],
  ['stdout', '/proc/self/fd/1'],
  ['stderr', '/proc/self/fd/2'],
  ['ptmx', 'pts/ptmx'],
];

/** Host paths of the mount points inside the image's root (see placeholders.ts). */
export interface MountTargets {
  proc: string;
  dev: string;
  sys: string;
  resolvConf: string;
  hosts: string;
}

/** Host files bound over the image's /etc/resolv.conf and /etc/hosts: copies, so writes stay private. */
export interface MountSources {
  resolvConf: string;
  hosts: string;
  /** A private directory on the host for the mount tables the init reads. */
  tableDir: string;
}

export type NamespaceMode = 'root' | 'user-namespace';

/** One line of a mount table (fstab(5)): what `mount` would take as arguments. */
export interface Mount {
  source: string;
  target: string;
  type: string;
  options: string;
}

/**
 * The mounts go in two tables, each mounted by one `mount -a` (in order, as fstab entries):
 * a RUN then starts two processes instead of one per mount. Between the two, the init makes
 * the files and directories the second table mounts onto inside the fresh /dev.
 */
export function setupSteps(targets: MountTargets, sources: MountSources, mode: NamespaceMode): SetupStep[] {
  const first: Mount[] = [
    { source: 'proc', target: targets.proc, type: 'proc', options: 'nosuid,nodev,noexec' },
    { source: 'tmpfs', target: targets.dev, type: 'tmpfs', options: 'nosuid,mode=755,size=64k' },
  ];
  const between: SetupStep[] = [];
  const second: Mount[] = [];
  for (const name of DEVICES) {
    const path = `${targets.dev}/${name}`;
    between.push({ op: 'file', path, what: `creating /dev/${name}` });
    second.push({ source: `/dev/${name}`, target: path, type: 'none', options: 'bind' });
  }
  between.push({ op: 'mkdir', path: `${targets.dev}/pts`, mode: 0o755, what: 'creating /dev/pts' });
  second.push({ source: 'devpts', target: `${targets.dev}/pts`, type: 'devpts', options: 'newinstance,ptmxmode=0666,mode=0620' });
  between.push({ op: 'mkdir', path: `${targets.dev}/shm`, mode: 0o755, what: 'creating /dev/shm' });
  second.push({ source: 'shm', target: `${targets.dev}/shm`, type: 'tmpfs', options: 'nosuid,nodev,noexec,mode=1777' });
  for (const [name, target] of DEV_LINKS) {
    between.push({ op: 'symlink', target, path: `${targets.dev}/${name}`, what: `creating /dev/${name}` });
  }
  // Read-only /sys (a bind with `ro`, which mount makes read-only right after binding). As
  // real root only sysfs itself is bound, so the host's cgroup files stay out of reach; in a
  // user namespace the kernel allows only a recursive bind, whose cgroup mounts belong to
  // the host's root and are not writable from the namespace anyway.
  second.push({ source: '/sys', target: targets.sys, type: 'none', options: mode === 'root' ? 'bind,ro' : 'rbind,ro' });
  second.push({ source: sources.resolvConf, target: targets.resolvConf, type: 'none', options: 'bind' });
  second.push({ source: sources.hosts, target: targets.hosts, type: 'none', options: 'bind' });
  return [...mountTable(first, `${sources.tableDir}/mounts-1`, 'mounting /proc and /dev'), ...between, ...mountTable(second, `${sources.tableDir}/mounts-2`, 'mounting /dev, /sys, /etc/resolv.conf and /etc/hosts')];
}

/** Writes `mounts` as a table at `path` and mounts them all, in order. */
export function mountTable(mounts: readonly Mount[], path: string, what: string): SetupStep[] {
  const content = mounts.map((m) => [m.source, m.target, m.type, m.options, '0', '0'].map(fstabField).join(' ')).join('\n') + '\n';
  return [
    { op: 'file', path, content, what: `writing the mount table for ${what.replace(/^mounting /, '')}` },
    { op: 'run', argv: [hostTool('mount'), '--all', '--fstab', path], what },
  ];
}

/** fstab(5) separates fields by blanks: a path keeps its spaces, tabs, newlines and backslashes as octal escapes. */
function fstabField(value: string): string {
  return value.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}
