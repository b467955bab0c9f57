/**
 * Build arguments kiln provides without an ARG: the proxy variables (RUN sees them, history
 * and image config never do) and the automatic platform arguments (global, so FROM lines see
 * them; a stage sees one after `ARG TARGETPLATFORM` and the like).
 */
import { formatPlatform } from '../oci/platform.js';
import type { Platform } from '../oci/types.js';

export const PROXY_ARGS: ReadonlySet<string> = new Set(
  ['HTTP_PROXY', 'HTTPS_PROXY', 'FTP_PROXY', 'NO_PROXY', 'ALL_PROXY'].flatMap((name) => [name, name.toLowerCase()]),
);

export const PLATFORM_ARGS: readonly string[] = [
  'BUILDPLATFORM', 'BUILDOS', 'BUILDARCH', 'BUILDVARIANT', 'TARGETPLATFORM', 'TARGETOS', 'TARGETARCH', 'TARGETVARIANT',
];

/** Spells a platform the way containerd prints it: arm64 without v8, 32-bit arm with v7. */
function normalise(platform: Platform): Platform {
  const os = platform.os.toLowerCase();
  const architecture = platform.architecture.toLowerCase();
  let variant = (platform.variant ?? '').toLowerCase();
  if (architecture === 'arm64' && (variant === 'v8' || variant === '8')) variant = '';
  if (architecture === 'amd64' && variant === 'v1') variant = '';
  if (architecture === 'arm' && variant === '') variant = 'v7';
  return variant === '' ? { os, architecture } : { os, architecture, variant };
}

export function platformArgs(platforms: { build: Platform; target: Platform }): Map<string, string> {
  const build = normalise(platforms.build);
  const target = normalise(platforms.target);
  return new Map([
    ['BUILDPLATFORM', formatPlatform(build)],
    ['BUILDOS', build.os],
    ['BUILDARCH', build.architecture],
    ['BUILDVARIANT', build.variant ?? ''],
    ['TARGETPLATFORM', formatPlatform(target)],
    ['TARGETOS', target.os],
    ['TARGETARCH', target.architecture],
    ['TARGETVARIANT', target.variant ?? ''],
  ]);
}

/**
 * `--build-arg NAME=value` as given; `--build-arg NAME` takes NAME's value from the
 * environment and is dropped when the environment has none, as docker build does.
 */
export function resolveBuildArgValues(
  given: ReadonlyMap<string, string | undefined>,
  environment: Readonly<Record<string, string | undefined>>,
): Map<string, string> {
  const values = new Map<string, string>();
  for (const [name, value] of given) {
    const resolved = value ?? environment[name];
    if (resolved !== undefined) values.set(name, resolved);
  }
  return values;
}
