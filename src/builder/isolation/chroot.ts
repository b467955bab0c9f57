// The `chroot` isolation: the image is a directory on the host, and each RUN command enters
// it through new mount and PID namespaces (plus a user namespace mapping kiln's uid to root
// when kiln is not root). The process chain, all host programs until the last exec:
//
//   setpriv --pdeathsig KILL       the chain dies with kiln
//   unshare --mount --pid --fork   private mounts; --kill-child ties the namespace to unshare
//   node -e INIT                   PID 1: mounts, then starts and reports the command (init.ts)
//   setpriv                        Docker's capability set; gid and supplementary groups
//   nsenter --root --wd -S         chroot, chdir and setuid in one process, then exec
//   the command, found in the image beforehand (the image may have no shell at all)
//
// As root, and when asked to record what the command changes (a large root), the command
// runs on an overlay over the root directory (overlay.ts): kiln then knows exactly what it
// changed and need not walk the root afterwards.
import { spawn } from 'node:child_process';
import { chmod, copyFile, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Readable, Writable } from 'node:stream';
import { KilnError, describeError } from '../../util/errors.js';
import { envObject, findExecutable } from './command.js';
import { hostTool } from './host-tools.js';
import { INIT_BOOTSTRAP, INIT_SOURCE, type InitPlan } from './init.js';
import { setupSteps, type NamespaceMode } from './mounts.js';
import { FRAME, demultiplex, type Frame } from './output.js';
import { Placeholders } from './placeholders.js';
import { OverlayScratch, type OverlayReport } from './overlay.js';
import type { Isolation, RunChanges, RunResult, RunSpec, RunUser } from './types.js';
import { ensureWorkdir } from './workdir.js';

/** Docker's default capabilities for a container, which RUN commands keep as root. */
const DOCKER_CAPABILITIES = [
  'chown', 'dac_override', 'fowner', 'fsetid', 'kill', 'setgid', 'setuid', 'setpcap',
  'net_bind_service', 'net_raw', 'sys_chroot', 'mknod', 'audit_write', 'setfcap',
];

/** How much of the init's own stderr (unshare's and Node's complaints) kiln keeps for errors. */
const DIAGNOSTICS_LIMIT = 16 * 1024;

export interface ChrootOptions {
  /** `auto` (the default): a user namespace only when kiln is not root. */
  userNamespace?: 'auto' | 'always';
}

export function chrootIsolation(options: ChrootOptions = {}): Isolation {
  const mode: NamespaceMode = options.userNamespace === 'always' || process.getuid?.() !== 0 ? 'user-namespace' : 'root';
  // A user namespace would need overlayfs's `userxattr` whiteouts; those commands run on the root itself.
  const overlay = new OverlayUse(mode === 'root');
  return { kind: 'chroot', run: (spec) => runChrooted(spec, mode, overlay) };
}

/** Whether RUN commands still try the overlay: after it fails once, the build's later steps do not. */
class OverlayUse {
  constructor(private wanted: boolean) {}

  async scratch(rootDir: string, logger: RunSpec['logger']): Promise<OverlayScratch | undefined> {
    if (!this.wanted) return undefined;
    const prepared = await OverlayScratch.beside(rootDir);
    if (prepared.kind === 'ready') return prepared.scratch;
    this.giveUp(prepared.reason, logger);
    return undefined;
  }

  giveUp(reason: string, logger: RunSpec['logger']): void {
    this.wanted = false;
    logger.debug({ reason }, 'RUN commands write to the root directly; kiln walks the root after each');
  }
}

async function runChrooted(spec: RunSpec, mode: NamespaceMode, overlayUse: OverlayUse): Promise<RunResult> {
  const rootDir = resolve(spec.rootDir);
  const rootStats = await stat(rootDir).catch(() => undefined);
  if (!rootStats?.isDirectory()) throw new KilnError('ISOLATION', `The root directory ${rootDir} does not exist.`);
  checkMappable(spec.user, mode);
  if (mode === 'user-namespace' && spec.user.groups.length > 0) {
    spec.logger.debug({ groups: spec.user.groups }, 'supplementary groups are not set in a user namespace');
  }

  const env = envObject(spec.env);
  const workdir = await ensureWorkdir(rootDir, spec.cwd, mode === 'root' ? spec.user : undefined);
  const executable = await findExecutable(rootDir, spec.argv[0] ?? '', env, workdir.imagePath);

  const overlay = spec.recordChanges ? await overlayUse.scratch(rootDir, spec.logger) : undefined;
  try {
    const report = await runInRoot(spec, mode, rootDir, workdir.hostPath, executable, env, overlay);
    const result = report.result;
    if (overlay === undefined || result.kind !== 'exited' || result.code !== 0) return result;
    const changes = await changesFrom(overlay, report.overlay, overlayUse, spec.logger);
    if (changes && workdir.created) changes.subtrees.push(workdir.created);
    return { ...result, changes };
  } finally {
    await overlay?.remove();
  }
}

/** The command's changes as the overlay recorded them, moved into the root; none when it was not mounted. */
async function changesFrom(overlay: OverlayScratch, report: OverlayReport | undefined, overlayUse: OverlayUse, logger: RunSpec['logger']): Promise<RunChanges | undefined> {
  if (report?.kind === 'unavailable') {
    overlayUse.giveUp(report.reason, logger);
    return undefined;
  }
  if (report?.kind !== 'mounted') {
    throw new KilnError('ISOLATION', `Cannot read what the command changed on its overlay: ${report?.reason ?? 'the init did not say'}.`);
  }
  const started = performance.now();
  const changes = await overlay.merge(report.opaque);
  logger.debug({ subtrees: changes.subtrees.length, entries: changes.entries.length, ms: Math.round(performance.now() - started) }, "moved the command's changes from its overlay into the root");
  return changes;
}

async function runInRoot(spec: RunSpec, mode: NamespaceMode, rootDir: string, workdir: string, executable: string, env: Record<string, string>, overlay: OverlayScratch | undefined): Promise<InitReport> {
  const scratch = await mkdtemp(join(tmpdir(), 'kiln-run-'));
  const placeholders = new Placeholders(rootDir);
  try {
    const sources = { resolvConf: join(scratch, 'resolv.conf'), hosts: join(scratch, 'hosts'), tableDir: scratch };
    await copyHostFile('/etc/resolv.conf', sources.resolvConf);
    await copyHostFile('/etc/hosts', sources.hosts);
    const targets = {
      proc: await placeholders.ensure('/proc', 'directory'),
      dev: await placeholders.ensure('/dev', 'directory'),
      sys: await placeholders.ensure('/sys', 'directory'),
      resolvConf: await placeholders.ensure('/etc/resolv.conf', 'file'),
      hosts: await placeholders.ensure('/etc/hosts', 'file'),
    };
    const plan: InitPlan = {
      overlay: overlay?.plan(scratch),
      steps: setupSteps(targets, sources, mode),
      command: [
        hostTool('setpriv'),
        '--bounding-set', ['-all', ...DOCKER_CAPABILITIES.map((cap) => `+${cap}`)].join(','),
        ...identityArgs(spec.user, mode),
        '--',
        hostTool('nsenter'), `--root=${rootDir}`, `--wd=${workdir}`,
        ...(spec.user.uid === 0 ? [] : ['-S', String(spec.user.uid)]),
        '--',
        executable, ...spec.argv.slice(1),
      ],
      env,
    };
    spec.logger.debug({ isolation: 'chroot', mode, rootDir, overlay: overlay !== undefined, argv: spec.argv, user: spec.user, cwd: spec.cwd }, 'running a command');
    return await startInit(plan, mode, spec.stdout, spec.stderr);
  } finally {
    await placeholders.remove(spec.logger);
    await rm(scratch, { recursive: true, force: true });
  }
}

/** A user namespace of kiln's maps only root: other identities have no uid on the host. */
function checkMappable(user: RunUser, mode: NamespaceMode): void {
  if (mode === 'root' || (user.uid === 0 && user.gid === 0)) return;
  throw new KilnError('ISOLATION', `Running a command as ${user.uid}:${user.gid} needs kiln to run as root; without root kiln maps only uid 0 into the build.`);
}

function identityArgs(user: RunUser, mode: NamespaceMode): string[] {
  // In a user namespace setgroups(2) is denied, and the identity is root's anyway.
  if (mode === 'user-namespace') return [];
  const groups = user.groups.length > 0 ? ['--groups', user.groups.join(',')] : ['--clear-groups'];
  return ['--regid', String(user.gid), ...groups];
}

/** A private copy, mode 0644 as Docker gives it, whatever the host's file looks like. */
async function copyHostFile(from: string, to: string): Promise<void> {
  await copyFile(from, to).catch(() => writeFile(to, ''));
  await chmod(to, 0o644);
}

/** The init's last word on a command that ran (see init.ts). */
interface InitReport {
  result: RunResult;
  overlay?: OverlayReport;
}

function startInit(plan: InitPlan, mode: NamespaceMode, stdout: Writable, stderr: Writable): Promise<InitReport> {
  const unshareArgs = ['--mount', '--pid', '--fork', '--kill-child', '--propagation', 'private'];
  if (mode === 'user-namespace') unshareArgs.push('--user', '--map-root-user');
  const child = spawn(
    hostTool('setpriv'),
    ['--pdeathsig', 'KILL', '--', hostTool('unshare'), ...unshareArgs, '--', process.execPath, '-e', INIT_BOOTSTRAP],
    { cwd: '/', env: {}, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] },
  );
  return new Promise((resolvePromise, reject) => {
    let status: InitReport | undefined;
    let failure: string | undefined;
    let diagnostics = '';
    demultiplex(child.stdout!, { [FRAME.stdout]: stdout, [FRAME.stderr]: stderr }, (frame: Frame) => {
      try {
        const body = JSON.parse(frame.payload.toString('utf8'));
        if (frame.type === FRAME.status) status = body as InitReport;
        else if (frame.type === FRAME.error) failure = String(body.message);
      } catch {
        failure = 'the init sent a report kiln cannot read';
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      if (diagnostics.length < DIAGNOSTICS_LIMIT) diagnostics += chunk.toString('utf8');
    });
    (child.stdio[3] as Writable).end(JSON.stringify({ source: INIT_SOURCE, plan }));
    (child.stdio[3] as Readable).on('error', () => { /* the init died before reading its plan: reported below */ });
    child.on('error', (error) => reject(new KilnError('ISOLATION', `Cannot start the chroot isolation: ${describeError(error)}.`, { cause: error })));
    child.on('close', (code, signal) => {
      if (status) return resolvePromise(status);
      const detail = failure ?? (firstLine(diagnostics) || `it exited with ${signal ?? code}`);
      reject(new KilnError('ISOLATION', `Cannot prepare the chroot for the command: ${detail}.`));
    });
  });
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}
