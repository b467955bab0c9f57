// kiln's demo: a real registry on 127.0.0.1, a busybox image made without kiln, and kiln
// copying it through the registry and into an OCI layout and a docker tarball, checked by skopeo.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { busyboxLayout, skopeoInspect, startRegistry } from '../integration/harness/index.js';

const kiln = join(dirname(fileURLToPath(import.meta.url)), '..', 'cmd', 'kiln.js');

function run(args: string[]): string {
  console.log(`\n$ kiln ${args.join(' ')}`);
  const result = spawnSync(process.execPath, [kiln, ...args, '--log-format=text'], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  process.stdout.write(result.stdout);
  if (result.status !== 0) throw new Error(`kiln exited with status ${result.status}`);
  return result.stdout.trim();
}

const work = mkdtempSync(join(tmpdir(), 'kiln-demo-'));
const registry = await startRegistry('plain');
try {
  const base = await busyboxLayout();
  console.log(`registry: ${registry.url} (Debian's docker-registry, pid ${registry.pid})`);
  console.log(`base image: busybox OCI layout built with umoci at ${base.dir}`);
  const pushed = run(['copy', `oci:${base.dir}:${base.tag}`, `${registry.host}/demo/busybox:1.0`]);
  const copied = run([
    'copy', `${registry.host}/demo/busybox:1.0`, `${registry.host}/demo/busybox-copy:1.0`,
    '--oci-layout-path', join(work, 'layout'), '--tar-path', join(work, 'image.tar'), '--digest-file', join(work, 'digest'),
  ]);
  const inspected = await skopeoInspect(registry, 'demo/busybox-copy:1.0');
  console.log(`\nskopeo inspect docker://${registry.host}/demo/busybox-copy:1.0 → ${inspected.Digest}`);
  console.log(`docker tarball: ${statSync(join(work, 'image.tar')).size} bytes; OCI layout: ${join(work, 'layout')}`);
  if (pushed !== copied || inspected.Digest !== copied) throw new Error(`digests differ: ${pushed} ${copied} ${inspected.Digest}`);
  console.log('demo: ok — the same digest through kiln, the registry and skopeo');
} finally {
  await registry.stop();
  rmSync(work, { recursive: true, force: true });
}
