/**
 * How a warmed base image is recorded in the index.json of a `--cache-dir` OCI layout. Each
 * entry is the descriptor of one single-platform image manifest, with its platform and these
 * annotations:
 *
 *   org.opencontainers.image.ref.name  the reference as the user gave it, normalised
 *                                      (`index.docker.io/library/busybox:1.36`)
 *   dev.kiln.warm.resolved-digest      what that reference resolved to at the registry: the
 *                                      manifest's digest, or the index's for a multi-platform image
 *   dev.kiln.warm.time                 when it was warmed (RFC 3339), for --cache-ttl
 *
 * A reference warmed for two platforms has two entries with the same ref name.
 */
import type { Image } from '../oci/image.js';
import { imageDescriptor } from '../oci/image.js';
import { REF_NAME_ANNOTATION } from '../oci/layout.js';
import { platformMatches, platformOfConfig } from '../oci/platform.js';
import type { Descriptor, Platform } from '../oci/types.js';
import { expiredReason } from './ttl.js';

export const RESOLVED_DIGEST_ANNOTATION = 'dev.kiln.warm.resolved-digest';
export const WARMED_AT_ANNOTATION = 'dev.kiln.warm.time';

export interface BaseImageEntry {
  readonly descriptor: Descriptor;
  readonly refName: string | undefined;
  /** The digest the reference resolved to; the descriptor's own for entries kiln did not write. */
  readonly resolvedDigest: string;
  /** Milliseconds since the epoch; undefined when the entry does not say (it is never fresh). */
  readonly warmedAt: number | undefined;
}

export function readEntry(descriptor: Descriptor): BaseImageEntry {
  const annotations = descriptor.annotations ?? {};
  const time = annotations[WARMED_AT_ANNOTATION];
  const warmedAt = time === undefined ? undefined : Date.parse(time);
  return {
    descriptor,
    refName: annotations[REF_NAME_ANNOTATION],
    resolvedDigest: annotations[RESOLVED_DIGEST_ANNOTATION] ?? descriptor.digest,
    warmedAt: warmedAt === undefined || Number.isNaN(warmedAt) ? undefined : warmedAt,
  };
}

export function entryDescriptor(image: Image, refName: string, resolvedDigest: string, warmedAt: Date): Descriptor {
  return {
    ...imageDescriptor(image),
    platform: platformOfConfig(image.config),
    annotations: {
      [REF_NAME_ANNOTATION]: refName,
      [RESOLVED_DIGEST_ANNOTATION]: resolvedDigest,
      [WARMED_AT_ANNOTATION]: warmedAt.toISOString(),
    },
  };
}

/**
 * Whether the entry stands for `platform`. A reference that named one manifest rather than an
 * index serves every platform, as it does when pulled from the registry.
 */
export function servesPlatform(entry: BaseImageEntry, platform: Platform): boolean {
  if (entry.resolvedDigest === entry.descriptor.digest) return true;
  return entry.descriptor.platform !== undefined && platformMatches(platform, entry.descriptor.platform);
}

/** A newer entry replaces an older one of the same ref name and platform. */
export function sameSlot(a: Descriptor, b: Descriptor): boolean {
  const nameA = a.annotations?.[REF_NAME_ANNOTATION];
  if (nameA === undefined || nameA !== b.annotations?.[REF_NAME_ANNOTATION]) return false;
  if (a.platform === undefined || b.platform === undefined) return a.platform === b.platform;
  return platformMatches(a.platform, b.platform);
}

/** Why a tag's entry may no longer be trusted, or undefined while it is fresh. */
export function staleReason(entry: BaseImageEntry, ttlMs: number, now: number): string | undefined {
  if (entry.warmedAt === undefined) return 'not stamped with the time it was warmed';
  return expiredReason(new Date(entry.warmedAt), ttlMs, new Date(now));
}
