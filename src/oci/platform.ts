import { KilnError } from '../util/errors.js';
import type { Descriptor, ImageConfig, Index, Platform } from './types.js';

/** Parses `os/arch[/variant]` as given to --custom-platform or FROM --platform. */
export function parsePlatform(text: string): Platform {
  const parts = text.trim().toLowerCase().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((part) => !/^[a-z0-9._-]+$/.test(part))) {
    throw new KilnError('USAGE', `"${text}" is not a platform: write os/architecture or os/architecture/variant, e.g. linux/arm64/v8.`);
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter((part) => part).join('/');
}

const NODE_ARCH: Readonly<Record<string, { architecture: string; variant?: string }>> = {
  x64: { architecture: 'amd64' },
  arm64: { architecture: 'arm64', variant: 'v8' },
  arm: { architecture: 'arm', variant: 'v7' },
  ia32: { architecture: '386' },
  ppc64: { architecture: 'ppc64le' },
  s390x: { architecture: 's390x' },
  riscv64: { architecture: 'riscv64' },
  loong64: { architecture: 'loong64' },
  mips64el: { architecture: 'mips64le' },
};

/** The platform kiln runs on, in OCI terms: the default for FROM and for the built image. */
export function hostPlatform(): Platform {
  let arch = NODE_ARCH[process.arch] ?? { architecture: process.arch };
  // 32-bit arm Node builds record the ARM version they target (6 on a Raspberry Pi Zero).
  const armVersion = (process.config.variables as { arm_version?: string }).arm_version;
  if (process.arch === 'arm' && armVersion && /^[5-8]$/.test(armVersion)) arch = { architecture: 'arm', variant: `v${armVersion}` };
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  return arch.variant ? { os, architecture: arch.architecture, variant: arch.variant } : { os, architecture: arch.architecture };
}

/** The platform an image config declares. */
export function platformOfConfig(config: ImageConfig): Platform {
  const platform: Platform = { os: config.os, architecture: config.architecture };
  if (config.variant) platform.variant = config.variant;
  if (config['os.version']) platform['os.version'] = config['os.version'];
  if (config['os.features'] && config['os.features'].length > 0) platform['os.features'] = [...config['os.features']];
  return platform;
}

const ARCH_ALIASES: Readonly<Record<string, { architecture: string; variant?: string }>> = {
  x86_64: { architecture: 'amd64' },
  'x86-64': { architecture: 'amd64' },
  aarch64: { architecture: 'arm64' },
  armhf: { architecture: 'arm', variant: 'v7' },
  armel: { architecture: 'arm', variant: 'v6' },
  i386: { architecture: '386' },
};

/**
 * Spellings that mean the same machine, made equal the way containerd does: arm64 is v8
 * unless said otherwise, 32-bit arm is v7, and amd64 micro-architecture levels are ignored
 * because every amd64 index entry runs on every amd64 host kiln supports.
 */
function normalise(platform: Platform): { os: string; architecture: string; variant: string } {
  const os = platform.os.toLowerCase();
  const alias = ARCH_ALIASES[platform.architecture.toLowerCase()];
  const architecture = alias?.architecture ?? platform.architecture.toLowerCase();
  let variant = (platform.variant ?? alias?.variant ?? '').toLowerCase();
  if (architecture === 'arm64' && (variant === '' || variant === '8')) variant = 'v8';
  if (architecture === 'arm' && variant === '') variant = 'v7';
  if (architecture === 'arm' && /^[5-8]$/.test(variant)) variant = `v${variant}`;
  if (architecture === 'amd64') variant = '';
  return { os, architecture, variant };
}

export function platformMatches(wanted: Platform, candidate: Platform): boolean {
  const a = normalise(wanted);
  const b = normalise(candidate);
  return a.os === b.os && a.architecture === b.architecture && a.variant === b.variant;
}

/** The index entry for `platform`; entries without a platform (attestations, artifacts) never match. */
export function selectManifest(index: Index, platform: Platform, what = 'the image index'): Descriptor {
  const match = index.manifests.find((entry) => entry.platform !== undefined && platformMatches(platform, entry.platform));
  if (match) return match;
  const available = index.manifests
    .map((entry) => entry.platform)
    .filter((p): p is Platform => p !== undefined && p.os !== 'unknown' && p.architecture !== 'unknown')
    .map(formatPlatform);
  const list = available.length > 0 ? `it has ${[...new Set(available)].join(', ')}` : 'it names no platforms at all';
  throw new KilnError('PLATFORM_NOT_FOUND', `${what.charAt(0).toUpperCase() + what.slice(1)} has no image for ${formatPlatform(platform)}; ${list}.`);
}
