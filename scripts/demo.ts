// kiln's demo: a real registry on 127.0.0.1, a busybox base image made without kiln, and
// kiln building examples/demo (two stages) and pushing it; skopeo inspects the result and
// runc runs it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { busyboxLayout, pullToLayout, pushLayout, runImage, skopeoInspect, startRegistry } from '../integration/harness/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const kiln = join(root, 'dist', 'kiln.js');

function kilnRun(args: string[]): string {
  console.log(`\n$ kiln ${args.join(' ')}`);
  const result = spawnSync(process.execPath, [kiln, ...args, '--log-format=text'], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`kiln exited with status ${result.status}`);
  return result.stdout.trim();
}

const work = mkdtempSync(join(tmpdir(), 'kiln-demo-'));
const registry = await startRegistry('plain');
try {
  const base = await busyboxLayout();
  await pushLayout(base.dir, base.tag, registry, 'library/busybox:1.36');
  console.log(`registry: ${registry.url} (Debian's docker-registry, pid ${registry.pid}); base image pushed by skopeo`);
  const image = `${registry.host}/demo/app:1.0`;
  const digest = kilnRun(['build', '--context', join(root, 'examples', 'demo'), '--build-arg', `BASE=${registry.host}/library/busybox:1.36`, '--destination', image]);
  const inspected = await skopeoInspect(registry, 'demo/app:1.0');
  console.log(`\nskopeo inspect docker://${image} → ${inspected.Digest}, ${inspected.Layers.length} layers`);
  if (inspected.Digest !== digest) throw new Error(`kiln printed ${digest} but the registry has ${inspected.Digest}`);
  const layout = join(work, 'pulled');
  await pullToLayout(registry, 'demo/app:1.0', layout, 'demo');
  const run = await runImage(layout, 'demo');
  console.log(`runc run (the image's CMD):\n${run.stdout}`);
  if (run.code !== 0) throw new Error(`the image exited with ${run.code}: ${run.stderr}`);
  console.log('demo: ok');
} finally {
  await registry.stop();
  rmSync(work, { recursive: true, force: true });
}
