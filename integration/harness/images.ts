// Base images for kiln's integration tests, built with umoci from Debian's busybox-static
// and cached between runs (see cache.ts). The layouts in the cache are shared: treat them as
// read-only, and copy one before changing it.
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cachedDirectory } from './cache.js';
import { busyboxPackageVersion, writeBusyboxRootfs } from './rootfs.js';
import { umociConfig, umociGc, umociInit, umociNew, umociRepack, umociUnpack } from './umoci.js';

export { pushLayout, pullToLayout, skopeoCopy, skopeoInspect, registryFlags } from './skopeo.js';
export { umociUnpack } from './umoci.js';

/** Bump when the content or shape of the harness's images changes, to rebuild the cache. */
const IMAGE_VERSION = 'v1';

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const REF_NAME = 'org.opencontainers.image.ref.name';

export interface Layout {
  /** An OCI image layout directory. */
  dir: string;
  /** The `org.opencontainers.image.ref.name` of the image in it. */
  tag: string;
}

async function cacheName(kind: string): Promise<string> {
  const version = (await busyboxPackageVersion()).replace(/[^A-Za-z0-9.-]/g, '_');
  return `${kind}-${IMAGE_VERSION}-busybox-${version}`;
}

/** One busybox image for linux/amd64, tagged `latest`: one layer, Cmd ["sh"]. */
export async function busyboxLayout(): Promise<Layout> {
  const tag = 'latest';
  const dir = await cachedDirectory(await cacheName('busybox'), async (layout, scratch) => {
    await umociInit(layout);
    await addBusyboxImage(layout, tag, join(scratch, 'bundle'), 'amd64');
    await umociGc(layout);
  });
  return { dir, tag };
}

export const MULTI_PLATFORMS = ['amd64', 'arm64'] as const;

/**
 * A layout whose one tag, `multi`, points at a nested image index with linux/amd64 and
 * linux/arm64 images. Both hold the amd64 busybox plus `/platform` naming their platform
 * (`linux/amd64\n`), so a test can tell which one kiln picked.
 */
export async function multiPlatformLayout(): Promise<Layout> {
  const tag = 'multi';
  const dir = await cachedDirectory(await cacheName('multi-platform'), async (layout, scratch) => {
    await umociInit(layout);
    for (const arch of MULTI_PLATFORMS) {
      await addBusyboxImage(layout, arch, join(scratch, `bundle-${arch}`), arch, `linux/${arch}\n`);
    }
    await umociGc(layout);
    await nestUnderIndex(layout, tag);
  });
  return { dir, tag };
}

async function addBusyboxImage(
  layout: string,
  tag: string,
  bundle: string,
  architecture: string,
  platformMarker?: string,
): Promise<void> {
  await umociNew(layout, tag);
  await umociUnpack(layout, tag, bundle);
  const rootfs = join(bundle, 'rootfs');
  await writeBusyboxRootfs(rootfs);
  if (platformMarker !== undefined) await writeFile(join(rootfs, 'platform'), platformMarker);
  await umociRepack(layout, tag, bundle, 'kiln test harness: busybox-static');
  await umociConfig(layout, tag, { cmd: ['sh'], env: [DEFAULT_PATH], architecture, os: 'linux' });
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string };
}

/** Replaces the per-platform tags of index.json with one tag on an image index of them all. */
async function nestUnderIndex(layout: string, tag: string): Promise<void> {
  const top = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const manifests = MULTI_PLATFORMS.map((arch) => {
    const found = top.manifests.find((d) => d.annotations?.[REF_NAME] === arch);
    if (!found) throw new Error(`umoci left no image tagged ${arch} in ${layout}`);
    return { mediaType: found.mediaType, digest: found.digest, size: found.size, platform: { architecture: arch, os: 'linux' } };
  });
  const nested = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
  const hex = createHash('sha256').update(nested).digest('hex');
  await mkdir(join(layout, 'blobs/sha256'), { recursive: true });
  await writeFile(join(layout, 'blobs/sha256', hex), nested);
  const index = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [{ mediaType: OCI_INDEX, digest: `sha256:${hex}`, size: nested.length, annotations: { [REF_NAME]: tag } }],
  };
  await writeFile(join(layout, 'index.json'), JSON.stringify(index));
}
