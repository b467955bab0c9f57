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
}

export type NamespaceMode = 'root' | 'user-namespace';

export function setupSteps(targets: MountTargets, sources: MountSources, mode: NamespaceMode): SetupStep[] {
  const mount = hostTool('mount');
  const run = (what: string, ...args: string[]): SetupStep => ({ op: 'run', argv: [mount, ...args], what });
  const steps: SetupStep[] = [run('mounting /proc', '-t', 'proc', '-o', 'nosuid,nodev,noexec', 'proc', targets.proc)];

  steps.push(run('mounting /dev', '-t', 'tmpfs', '-o', 'nosuid,mode=755,size=64k', 'tmpfs', targets.dev));
  for (const name of DEVICES) {
    const path = `${targets.dev}/${name}`;
    steps.push({ op: 'file', path, what: `creating /dev/${name}` });
    steps.push(run(`mounting /dev/${name}`, '--bind', `/dev/${name}`, path));
  }
  steps.push({ op: 'mkdir', path: `${targets.dev}/pts`, mode: 0o755, what: 'creating /dev/pts' });
  steps.push(run('mounting /dev/pts', '-t', 'devpts', '-o', 'newinstance,ptmxmode=0666,mode=0620', 'devpts', `${targets.dev}/pts`));
  steps.push({ op: 'mkdir', path: `${targets.dev}/shm`, mode: 0o755, what: 'creating /dev/shm' });
  steps.push(run('mounting /dev/shm', '-t', 'tmpfs', '-o', 'nosuid,nodev,noexec,mode=1777', 'shm', `${targets.dev}/shm`));
  for (const [name, target] of DEV_LINKS) {
    steps.push({ op: 'symlink', target, path: `${targets.dev}/${name}`, what: `creating /dev/${name}` });
  }

  // Read-only /sys. As real root only sysfs itself is bound, so the host's cgroup files stay
  // out of reach; in a user namespace the kernel allows only a recursive bind, whose cgroup
  // mounts belong to the host's root and are not writable from the namespace anyway.
  const bind = mode === 'root' ? '--bind' : '--rbind';
  steps.push(run('mounting /sys', bind, '/sys', targets.sys));
  steps.push(run('making /sys read-only', '-o', 'remount,bind,ro', targets.sys));

  steps.push(run('mounting /etc/resolv.conf', '--bind', sources.resolvConf, targets.resolvConf));
  steps.push(run('mounting /etc/hosts', '--bind', sources.hosts, targets.hosts));
  return steps;
}
