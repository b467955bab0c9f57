// buildah (Debian's package) as the peer of kiln's build benchmarks, each instance on a fresh
// storage root of its own: overlay driver, chroot isolation, and configuration files of its
// own (storage, registries, signature policy, auth) so that nothing of the machine's
// /etc/containers or the user's credentials changes what is measured. A cold build is
// cold: no layer of an earlier run is there. (c/image's blob-info cache under
// /var/lib/containers/cache is the machine's; it only records where blobs were seen.)
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../integration/harness/process.js';
import { runTimed, type TimedLine, type TimedRun } from './build-process.js';

export interface BuildahStep {
  /** `FROM …`, `RUN …`, as buildah prints it. */
  text: string;
  /** From its STEP line to its commit (`--> id`), or to the next step. */
  seconds: number;
}

export interface BudRun extends TimedRun {
  steps: BuildahStep[];
  /** From spawn to the first STEP line. */
  beforeSeconds: number;
  /** From the last step's commit to exit (intermediate containers removed, image tagged). */
  afterSeconds: number;
}

export interface BudOptions {
  contextDir: string;
  dockerfile: string;
  tag: string;
  /** More `buildah bud` flags, e.g. `--cache-to`/`--cache-from`. */
  extraArgs?: string[];
}

export async function buildahVersion(): Promise<string> {
  try {
    return (await run('buildah', ['--version'])).stdout.trim();
  } catch (error) {
    throw new Error('buildah is missing: run `bash scripts/bench-setup.sh` first.', { cause: error });
  }
}

export class Buildah {
  private constructor(private readonly dir: string) {}

  /** A fresh storage root (and run root) in a new directory under `parentDir`. */
  static async create(parentDir: string): Promise<Buildah> {
    const dir = await mkdtemp(join(parentDir, 'buildah-'));
    await writeFile(join(dir, 'storage.conf'), '[storage]\ndriver = "overlay"\n');
    await writeFile(join(dir, 'registries.conf'), 'unqualified-search-registries = []\n');
    await writeFile(join(dir, 'policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    await writeFile(join(dir, 'auth.json'), JSON.stringify({ auths: {} }));
    return new Buildah(dir);
  }

  /** `buildah bud --layers --isolation chroot`, timed; images to and from the bench's plain-HTTP registry. */
  async bud(options: BudOptions): Promise<BudRun> {
    const result = await this.run([
      'bud', '--layers', '--isolation', 'chroot', ...this.transportArgs(),
      '-f', options.dockerfile, '-t', options.tag, ...(options.extraArgs ?? []), options.contextDir,
    ]);
    return { ...result, ...stepsOf(result) };
  }

  /** `buildah push` of a local image to `docker://destination`, timed. */
  push(image: string, destination: string): Promise<TimedRun> {
    return this.run(['push', ...this.transportArgs(), image, `docker://${destination}`]);
  }

  /** Unmounts whatever buildah left mounted in the storage root, then deletes it. */
  async remove(): Promise<void> {
    const mounts = (await readFile('/proc/self/mounts', 'utf8')).split('\n').map((line) => line.split(' ')[1] ?? '');
    const ours = mounts.filter((point) => point.startsWith(this.dir + '/')).map((point) => point.replace(/\\040/g, ' '));
    for (const point of ours.reverse()) await run('umount', ['-l', point]);
    await rm(this.dir, { recursive: true, force: true });
  }

  private transportArgs(): string[] {
    return ['--tls-verify=false', '--signature-policy', join(this.dir, 'policy.json'), '--authfile', join(this.dir, 'auth.json')];
  }

  private run(args: string[]): Promise<TimedRun> {
    const env = {
      ...process.env,
      BUILDAH_ISOLATION: 'chroot',
      CONTAINERS_STORAGE_CONF: join(this.dir, 'storage.conf'),
      CONTAINERS_REGISTRIES_CONF: join(this.dir, 'registries.conf'),
    };
    const global = ['--root', join(this.dir, 'root'), '--runroot', join(this.dir, 'runroot'), '--storage-driver', 'overlay'];
    return runTimed('buildah', [...global, ...args], env);
  }
}

/** Per-step times from the arrival of buildah's `STEP n/N:` and `--> id` lines. */
export function stepsOf(result: TimedRun): Pick<BudRun, 'steps' | 'beforeSeconds' | 'afterSeconds'> {
  const lines = result.lines.filter((line) => line.stream === 'stdout');
  const starts = lines.flatMap((line, i) => (/^STEP \d+\/\d+: /.test(line.text) ? [i] : []));
  let end = 0;
  const steps = starts.map((start, n) => {
    const next = starts[n + 1];
    const within: TimedLine[] = lines.slice(start + 1, next);
    end = within.find((line) => line.text.startsWith('--> '))?.at ?? (next !== undefined ? lines[next]!.at : result.seconds);
    return { text: lines[start]!.text.replace(/^STEP \d+\/\d+: /, ''), seconds: end - lines[start]!.at };
  });
  const first = starts[0] !== undefined ? lines[starts[0]]!.at : result.seconds;
  return { steps, beforeSeconds: first, afterSeconds: result.seconds - (starts.length > 0 ? end : first) };
}
