// kiln's executor image for the tests that run it, built by scripts/executor-image.ts (kiln
// building itself) and kept in the harness cache (cache.ts) under a name derived from what it
// is made of: the compiled kiln, deploy/executor, package-lock.json and the host programs it
// copies. Test files and test runs share one build until one of those changes.
import { createHash } from 'node:crypto';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildExecutorImage, type ExecutorImageResult, type Variant } from '../../scripts/executor-image.js';
import { cachedDirectory, cacheRoot } from './cache.js';
import { skopeoCopy } from './skopeo.js';

const FAMILY = 'executor-image-';
/** The compiled checkout: dist/integration/harness → the repository. */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export interface ExecutorImage {
  /** An OCI layout with OCI media types (converted by skopeo), which umoci unpacks: tags `latest` and `debug`. */
  runnable: string;
  /** kiln's own OCI layout (docker media types, as `--oci-layout-path` writes them). */
  layout: string;
  result: ExecutorImageResult;
  tarPath(variant: Variant): string;
}

export async function executorImage(): Promise<ExecutorImage> {
  const name = FAMILY + (await inputsHash());
  await pruneOtherBuilds(name);
  const dir = await cachedDirectory(name, async (target) => {
    const result = await buildExecutorImage({ root: ROOT, out: target, log: () => {}, quiet: true });
    // kiln writes docker media types into the layout, which umoci cannot unpack; its docker
    // tarballs go through skopeo into a layout umoci reads.
    for (const variant of result.variants) {
      await skopeoCopy(`docker-archive:${variant.tarPath}`, `oci:${join(target, 'runnable')}:${variant.variant === 'debug' ? 'debug' : 'latest'}`);
    }
    // Paths in the result name the scratch directory; the test reads them relative to `dir`.
    await writeFile(join(target, 'result.json'), JSON.stringify(result, (key, value) => (key === 'tarPath' || key === 'layoutDir' ? undefined : value)));
  });
  const stored = JSON.parse(await readFile(join(dir, 'result.json'), 'utf8')) as ExecutorImageResult;
  const tarPath = (variant: Variant) => join(dir, variant === 'debug' ? 'executor-debug.tar' : 'executor.tar');
  const result: ExecutorImageResult = { layoutDir: join(dir, 'oci'), variants: stored.variants.map((v) => ({ ...v, tarPath: tarPath(v.variant) })) };
  return { runnable: join(dir, 'runnable'), layout: join(dir, 'oci'), result, tarPath };
}

/** Everything the image is made of, hashed: content for kiln's files, identity for host programs. */
async function inputsHash(): Promise<string> {
  const hash = createHash('sha256');
  const files = [
    ...(await filesUnder(join(ROOT, 'dist', 'cmd'))),
    ...(await filesUnder(join(ROOT, 'dist', 'src'))),
    ...(await filesUnder(join(ROOT, 'deploy', 'executor'))),
    join(ROOT, 'dist', 'scripts', 'executor-image.js'),
    join(ROOT, 'package-lock.json'),
  ].filter((path) => !path.endsWith('.map'));
  for (const path of files.sort()) hash.update(path).update('\0').update(await readFile(path)).update('\0');
  for (const path of [process.execPath, '/usr/bin/setpriv', '/bin/busybox', '/etc/ssl/certs/ca-certificates.crt']) {
    const stats = await stat(path).catch(() => undefined);
    hash.update(`${path} ${stats?.size} ${stats?.mtimeMs}\0`);
  }
  return hash.digest('hex').slice(0, 16);
}

async function filesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await filesUnder(path)));
    else if (entry.isFile()) found.push(path);
  }
  return found;
}

/** Each build is over 100 MB: builds of an older kiln go. */
async function pruneOtherBuilds(keep: string): Promise<void> {
  const entries = await readdir(cacheRoot()).catch(() => [] as string[]);
  for (const entry of entries) {
    if (entry.startsWith(FAMILY) && entry !== keep) await rm(join(cacheRoot(), entry), { recursive: true, force: true });
  }
}
