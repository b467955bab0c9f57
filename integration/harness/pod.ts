// A Kubernetes pod, simulated with runc: kiln's executor image unpacked by umoci into a fresh
// bundle and started the way a kubelet starts a container. It runs as uid 0 with the
// container runtime's default capabilities and nothing more (no privileged mode, no
// CAP_SYS_ADMIN), in its own mount, PID, IPC and UTS namespaces, with what a kubelet mounts
// into every container (/etc/hosts, /etc/hostname, /etc/resolv.conf, /dev/termination-log,
// the service account token under /var/run/secrets) plus the test's own mounts. The image's
// VOLUMEs become mounts holding a copy of the image's files there, as containerd does. The
// network namespace is the host's (`hostNetwork: true`), so the executor reaches the test
// registry on 127.0.0.1.
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { layoutConfig } from './layers.js';
import { run } from './process.js';
import { makeTempDir } from './temp.js';
import { umociUnpack } from './umoci.js';

/** containerd's and Docker's default capability set: what a pod gets without securityContext changes. */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

export interface PodMount {
  /** A host file or directory. */
  source: string;
  /** Where the container sees it. */
  destination: string;
  readonly?: boolean;
}

export interface PodOptions {
  /** An OCI layout umoci can unpack (OCI media types). */
  layout: string;
  tag: string;
  /** The container's `args`, after the image's entrypoint; `command` replaces the entrypoint. */
  args?: string[];
  command?: string[];
  mounts?: PodMount[];
  /** Extra `KEY=VALUE` entries after the image's environment. */
  env?: string[];
  /** Files to create in the container's rootfs before it starts, image path → content. */
  files?: Record<string, string>;
  /** Whether the kubelet's files are mounted (default true); without them `/` holds only the image and the runtime's /proc, /dev and /sys. */
  kubelet?: boolean;
  timeoutMs?: number;
}

export interface PodRun {
  code: number;
  stdout: string;
  stderr: string;
}

interface RuntimeSpec {
  process: {
    terminal: boolean;
    user: { uid: number; gid: number; additionalGids?: number[] };
    args: string[];
    env: string[];
    capabilities?: Record<string, string[]>;
    noNewPrivileges?: boolean;
  };
  hostname?: string;
  root: { path: string; readonly?: boolean };
  mounts: { destination: string; type: string; source: string; options?: string[] }[];
  linux: { namespaces: { type: string }[] };
}

const DEFAULT_TIMEOUT_MS = 180_000;

/** Environment a kubelet adds to every container (service links of the default namespace). */
const KUBELET_ENV = ['HOSTNAME=kiln-pod', 'KUBERNETES_SERVICE_HOST=10.0.0.1', 'KUBERNETES_SERVICE_PORT=443', 'KUBERNETES_PORT=tcp://10.0.0.1:443'];

/**
 * Runs one container to its end in a fresh bundle, which is removed afterwards: a copy of the
 * image unpacked once per test process (a copy takes a quarter of the time of an unpack).
 */
export async function runPod(options: PodOptions): Promise<PodRun> {
  const bundle = await mkdtemp(join(tmpdir(), 'kiln-pod-'));
  try {
    await run('cp', ['-a', `${await unpacked(options.layout, options.tag)}/.`, bundle]);
    const kubelet = options.kubelet === false ? [] : await kubeletFiles(join(bundle, 'kubelet'));
    const volumes = await imageVolumes(options, bundle);
    for (const [path, content] of Object.entries(options.files ?? {})) {
      const hostPath = join(bundle, 'rootfs', path);
      await mkdir(join(hostPath, '..'), { recursive: true });
      await writeFile(hostPath, content);
    }
    const configPath = join(bundle, 'config.json');
    const spec = JSON.parse(await readFile(configPath, 'utf8')) as RuntimeSpec;
    configure(spec, options, [...kubelet, ...volumes, ...(options.mounts ?? [])]);
    await writeFile(configPath, JSON.stringify(spec, null, 2));
    return await runContainer(bundle, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  } finally {
    await rm(bundle, { recursive: true, force: true });
  }
}

const templates = new Map<string, Promise<string>>();

/**
 * The image unpacked by umoci into a bundle that no container runs in, removed when the
 * process exits. Tests may read it; nothing may change it.
 */
export function unpacked(layout: string, tag: string): Promise<string> {
  const key = `${layout}:${tag}`;
  let template = templates.get(key);
  if (!template) {
    template = (async () => {
      const dir = await makeTempDir('pod-template');
      const bundle = join(dir.path, 'bundle');
      await umociUnpack(layout, tag, bundle);
      return bundle;
    })();
    templates.set(key, template);
  }
  return template;
}

function configure(spec: RuntimeSpec, options: PodOptions, mounts: PodMount[]): void {
  const entrypoint = options.command ?? spec.process.args;
  spec.process.args = [...entrypoint, ...(options.args ?? [])];
  spec.process.terminal = false;
  spec.process.user = { uid: 0, gid: 0 };
  const kubeletEnv = options.kubelet === false ? [] : KUBELET_ENV;
  spec.process.env = [...spec.process.env.filter((entry) => !entry.startsWith('TERM=')), ...kubeletEnv, ...(options.env ?? [])];
  // Kubernetes gives bounding, effective and permitted; inheritable and ambient stay empty.
  spec.process.capabilities = { bounding: DEFAULT_CAPABILITIES, effective: DEFAULT_CAPABILITIES, permitted: DEFAULT_CAPABILITIES };
  // allowPrivilegeEscalation defaults to true.
  spec.process.noNewPrivileges = false;
  spec.hostname = 'kiln-pod';
  spec.root.readonly = false;
  spec.linux.namespaces = spec.linux.namespaces.filter((ns) => ns.type !== 'network');
  // umoci makes each VOLUME an empty tmpfs; containerd fills it with the image's files (see imageVolumes).
  const replaced = new Set(mounts.map((mount) => mount.destination));
  spec.mounts = spec.mounts.filter((mount) => !(mount.type === 'tmpfs' && replaced.has(mount.destination)));
  for (const mount of mounts) {
    spec.mounts.push({ destination: mount.destination, type: 'bind', source: mount.source, options: ['rbind', mount.readonly ? 'ro' : 'rw'] });
  }
}

/** One directory per VOLUME of the image, filled with what the image has at that path. */
async function imageVolumes(options: PodOptions, bundle: string): Promise<PodMount[]> {
  const config = await layoutConfig(options.layout, options.tag);
  const mounts: PodMount[] = [];
  for (const [index, path] of Object.keys(config.config?.Volumes ?? {}).entries()) {
    const source = join(bundle, 'volumes', String(index));
    await mkdir(source, { recursive: true });
    await run('cp', ['-a', `${join(bundle, 'rootfs', path)}/.`, source]).catch(() => { /* nothing in the image there */ });
    mounts.push({ source, destination: path });
  }
  return mounts;
}

/** What a kubelet mounts into every container, as files of the pod's own. */
async function kubeletFiles(dir: string): Promise<PodMount[]> {
  await mkdir(join(dir, 'serviceaccount'), { recursive: true });
  const files: Record<string, string> = {
    hosts: '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.0.0.7\tkiln-pod\n',
    hostname: 'kiln-pod\n',
    'resolv.conf': 'nameserver 127.0.0.1\noptions ndots:5\n',
    'termination-log': '',
    'serviceaccount/token': 'not-a-real-token\n',
    'serviceaccount/namespace': 'default\n',
  };
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
  return [
    { source: join(dir, 'hosts'), destination: '/etc/hosts' },
    { source: join(dir, 'hostname'), destination: '/etc/hostname' },
    { source: join(dir, 'resolv.conf'), destination: '/etc/resolv.conf' },
    { source: join(dir, 'termination-log'), destination: '/dev/termination-log' },
    { source: join(dir, 'serviceaccount'), destination: '/var/run/secrets/kubernetes.io/serviceaccount', readonly: true },
  ];
}

function runContainer(bundle: string, timeoutMs: number): Promise<PodRun> {
  const id = `kiln-pod-${randomBytes(4).toString('hex')}`;
  return new Promise((resolve, reject) => {
    const child = spawn('runc', ['run', '--bundle', bundle, id], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    const timer = setTimeout(() => {
      err.push(Buffer.from(`\n[pod harness: killed after ${timeoutMs} ms]\n`));
      run('runc', ['kill', id, 'KILL']).catch(() => {});
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      run('runc', ['delete', '--force', id]).catch(() => {}).finally(() => {
        resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
      });
    });
  });
}
