// A real distribution base image for kiln's snapshot tests and benchmark: Debian bookworm
// (debootstrap's minbase variant) from the machine's own apt mirror, packed by umoci into an
// OCI layout with one layer and cached like the busybox images (see cache.ts). Building it
// needs root and about a minute; later runs reuse the cached layout. Treat it as read-only.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cachedDirectory } from './cache.js';
import type { Layout } from './images.js';
import { run } from './process.js';
import { umociConfig, umociGc, umociInit, umociNew, umociRepack, umociUnpack } from './umoci.js';

/** Bump when the shape of the Debian image changes, to rebuild the cache. */
const DEBIAN_IMAGE_VERSION = 'v1';
const SUITE = 'bookworm';
const TAG = 'bookworm';
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const SOURCES = '/etc/apt/sources.list';
const SOURCES_DIR = '/etc/apt/sources.list.d';

/** Debian bookworm minbase for linux/amd64, tagged `bookworm`: one layer, Cmd ["bash"]. */
export async function debianLayout(): Promise<Layout> {
  if (process.getuid?.() !== 0) throw new Error('Building the Debian test image needs root (debootstrap creates device nodes and chowns files).');
  const debootstrap = (await run('dpkg-query', ['-W', '-f=${Version}', 'debootstrap'])).stdout.trim().replace(/[^A-Za-z0-9.-]/g, '_');
  const name = `debian-${DEBIAN_IMAGE_VERSION}-${SUITE}-minbase-debootstrap-${debootstrap}`;
  const dir = await cachedDirectory(name, async (layout, scratch) => {
    const mirror = await aptMirror();
    const bundle = join(scratch, 'bundle');
    await umociInit(layout);
    await umociNew(layout, TAG);
    await umociUnpack(layout, TAG, bundle);
    await runDebootstrap(join(bundle, 'rootfs'), mirror);
    await umociRepack(layout, TAG, bundle, `debootstrap --variant=minbase ${SUITE}`);
    await umociConfig(layout, TAG, { cmd: ['bash'], env: [DEFAULT_PATH], architecture: 'amd64', os: 'linux' });
    await umociGc(layout);
    // umoci writes blobs for its own user only; tests that run as another user read them too.
    await run('chmod', ['-R', 'a+rX', layout]);
  });
  return { dir, tag: TAG };
}

async function runDebootstrap(rootfs: string, mirror: string): Promise<void> {
  try {
    await run('debootstrap', ['--variant=minbase', SUITE, rootfs, mirror]);
  } catch (error) {
    const detail = String((error as Error).message).trim().split('\n').filter(Boolean).pop() ?? '';
    throw new Error(`debootstrap could not build Debian ${SUITE} from the apt mirror ${mirror}, so the Debian test image is unavailable (${detail}).`, { cause: error });
  }
}

/**
 * The first Debian mirror apt is configured with for the suite: one-line `.list` files and
 * deb822 `.sources` files. Files apt itself skips (other extensions, `Enabled: no`) are skipped.
 */
export async function aptMirror(): Promise<string> {
  const files: string[] = [SOURCES];
  try {
    for (const entry of (await readdir(SOURCES_DIR)).sort()) {
      if (entry.endsWith('.list') || entry.endsWith('.sources')) files.push(join(SOURCES_DIR, entry));
    }
  } catch { /* no directory */ }
  for (const file of files) {
    let text: string;
    try { text = await readFile(file, 'utf8'); } catch { continue; }
    const found = file.endsWith('.sources') ? fromDeb822(text) : fromOneLine(text);
    if (found !== undefined) return found;
  }
  throw new Error(`No apt source for Debian ${SUITE} is configured in ${SOURCES} or ${SOURCES_DIR}, so the Debian test image cannot be built.`);
}

function fromOneLine(text: string): string | undefined {
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    // deb [options] URI suite components...
    const match = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
    if (match && match[2] === SUITE) return match[1];
  }
  return undefined;
}

function fromDeb822(text: string): string | undefined {
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const line of stanza.split('\n')) {
      if (line.startsWith('#')) continue;
      const match = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
      if (match) fields.set(match[1]!.toLowerCase(), match[2]!.trim());
    }
    if (fields.get('enabled')?.toLowerCase() === 'no') continue;
    if (!(fields.get('types') ?? '').split(/\s+/).includes('deb')) continue;
    if (!(fields.get('suites') ?? '').split(/\s+/).includes(SUITE)) continue;
    const uri = (fields.get('uris') ?? '').split(/\s+/)[0];
    if (uri) return uri;
  }
  return undefined;
}
