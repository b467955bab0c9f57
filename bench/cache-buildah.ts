// buildah's registry-shared layer cache as the peer of `npm run bench:cache`: Debian's buildah
// 1.28 has `bud --cache-to REPO` (each new layer pushed to REPO as an image tagged with the
// step's cache key) and `--cache-from REPO` (each step's key looked up there and its image
// pulled into local storage). Both builds run on a fresh storage root of their own, so the
// rebuild finds nothing locally — another node, as for kiln — and each pushes its image.
import { Buildah, type BudRun } from './buildah.js';
import type { BenchContext } from './node-modules.js';

export interface BuildahCacheRun {
  /** bud plus push, spawn to exit each; setting up and removing the storage root left out. */
  seconds: number;
  bud: BudRun;
  pushSeconds: number;
  /** Steps buildah reported as served from a cache (`--> Using cache …`). */
  cachedSteps: number;
}

/**
 * One `buildah bud --layers` with `cacheArgs` on a fresh storage root in `parentDir`, then
 * `buildah push` of its image to `destination`.
 */
export async function buildahCacheBuild(
  context: BenchContext,
  parentDir: string,
  destination: string,
  cacheArgs: string[],
  settle: () => void,
): Promise<BuildahCacheRun> {
  const buildah = await Buildah.create(parentDir);
  try {
    settle();
    const tag = 'localhost/bench/buildah-cache:latest';
    const bud = await buildah.bud({ contextDir: context.dir, dockerfile: context.dockerfile, tag, extraArgs: cacheArgs });
    const push = await buildah.push(tag, destination);
    const cachedSteps = bud.lines.filter((line) => line.stream === 'stdout' && line.text.startsWith('--> Using cache ')).length;
    return { seconds: bud.seconds + push.seconds, bud, pushSeconds: push.seconds, cachedSteps };
  } finally {
    await buildah.remove();
  }
}
