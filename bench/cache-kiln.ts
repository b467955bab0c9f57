// kiln's three builds in `npm run bench:cache`, each a new process on a root directory of its
// own (`--root-dir`, removed afterwards) and with a `--cache-dir` that holds nothing, so no
// build sees anything of another but what the registry holds:
//   cold:    `--cache --cache-copy-layers --cache-repo REPO`, the cache repository empty;
//   rebuild: the same flags on a fresh root, the cache filled by `cold` — another node
//            building the same commit;
//   nocache: the same build without --cache, for what filling the cache costs a cold build.
import { spawnSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { KILN, kilnBuild, type KilnBuildRun } from './build-kiln.js';
import type { BenchContext } from './node-modules.js';

export type KilnCacheBuild = 'cold' | 'rebuild' | 'nocache';

export interface KilnCacheTarget {
  context: BenchContext;
  /** `127.0.0.1:PORT`: the bench's plain-HTTP registry. */
  registryHost: string;
  /** `HOST/bench/cache`. */
  cacheRepo: string;
  /** Where each build's root directory is made (and removed). */
  dir: string;
}

export async function kilnCacheBuild(target: KilnCacheTarget, build: KilnCacheBuild, settle: () => void): Promise<KilnBuildRun> {
  const workDir = join(target.dir, `kiln-${build}`);
  const cacheArgs = build === 'nocache' ? [] : ['--cache', '--cache-copy-layers', '--cache-repo', target.cacheRepo];
  try {
    settle();
    return await kilnBuild({
      contextDir: target.context.dir,
      dockerfile: target.context.dockerfile,
      // The rebuild pushes to a repository of its own: its layers must be mounted from the
      // cache repository, as on a node whose destination has never seen them.
      destination: `${target.registryHost}/bench/kiln-${build}:latest`,
      workDir: join(workDir, 'root'),
      insecureRegistry: target.registryHost,
      extraArgs: ['--cache-dir', join(workDir, 'no-warmed-images'), ...cacheArgs],
    });
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

/**
 * The floor under a cached rebuild, measured now: node starting with nothing to load, and
 * `kiln build --help` (node plus kiln's modules, no build).
 */
export function startUpSeconds(): { node: number; kilnHelp: number } {
  const time = (args: string[]): number => {
    const started = performance.now();
    const result = spawnSync(process.execPath, args, { stdio: 'ignore' });
    if (result.status !== 0) throw new Error(`node ${args.join(' ')} exited with ${result.status ?? result.signal}`);
    return (performance.now() - started) / 1000;
  };
  return { node: time(['-e', '0']), kilnHelp: time([KILN, 'build', '--help']) };
}
