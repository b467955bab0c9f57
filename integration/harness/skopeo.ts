// skopeo moves images between OCI layouts and the test registries, independently of kiln's
// registry client. Every call names its credentials (or their absence) explicitly, so the
// machine's auth files never leak into a test.
import { run } from './process.js';
import type { RunningRegistry } from './registry.js';

export interface Credentials {
  username: string;
  password: string;
}

export interface CredentialOption {
  /** Defaults to the registry's own user; `null` means anonymous. */
  creds?: Credentials | null;
}

function credentialsFor(registry: RunningRegistry, option: CredentialOption): Credentials | null {
  if (option.creds !== undefined) return option.creds;
  return registry.username && registry.password ? { username: registry.username, password: registry.password } : null;
}

/**
 * Transport flags for one side of a copy (`src`/`dest`) or for inspect (`''`): TLS trust and
 * credentials. Plain HTTP registries need tls-verify off, which is what lets skopeo use http.
 */
export function registryFlags(
  registry: RunningRegistry,
  side: 'src' | 'dest' | '',
  option: CredentialOption = {},
): { args: string[]; secrets: string[] } {
  const prefix = side ? `--${side}-` : '--';
  const args: string[] = [];
  if (registry.variant === 'tls') args.push(`${prefix}cert-dir`, registry.certDir!);
  else args.push(`${prefix}tls-verify=false`);
  const creds = credentialsFor(registry, option);
  if (creds) args.push(`${prefix}creds`, `${creds.username}:${creds.password}`);
  else args.push(`${prefix}no-creds`);
  return { args, secrets: creds ? [creds.password] : [] };
}

/** Runs `skopeo --insecure-policy ARGS`; the signature policy is not under test. */
export async function skopeo(args: string[], secrets: string[] = []): Promise<string> {
  const { stdout } = await run('skopeo', ['--insecure-policy', ...args], { secrets });
  return stdout;
}

/** `skopeo copy` with flags already built, e.g. from registryFlags() for each side. */
export async function skopeoCopy(source: string, destination: string, flags: string[] = [], secrets: string[] = []): Promise<void> {
  await skopeo(['copy', '--quiet', ...flags, source, destination], secrets);
}

export interface PushOptions extends CredentialOption {
  /** Copy every image of an index (`--all`), not just the one for this machine. */
  all?: boolean;
}

/** Pushes `oci:layoutDir:tag` to `registry/repoAndTag`. */
export async function pushLayout(
  layoutDir: string,
  tag: string,
  registry: RunningRegistry,
  repoAndTag: string,
  options: PushOptions = {},
): Promise<void> {
  const { args, secrets } = registryFlags(registry, 'dest', options);
  if (options.all) args.push('--all');
  await skopeoCopy(`oci:${layoutDir}:${tag}`, `docker://${registry.host}/${repoAndTag}`, args, secrets);
}

/** Pulls `registry/ref` into `oci:layoutDir:tag`, for checking what kiln pushed. */
export async function pullToLayout(
  registry: RunningRegistry,
  ref: string,
  layoutDir: string,
  tag: string,
  options: PushOptions = {},
): Promise<void> {
  const { args, secrets } = registryFlags(registry, 'src', options);
  if (options.all) args.push('--all');
  await skopeoCopy(`docker://${registry.host}/${ref}`, `oci:${layoutDir}:${tag}`, args, secrets);
}

export interface InspectOptions extends CredentialOption {
  /** The manifest (or index) exactly as stored. */
  raw?: boolean;
  /** The image config blob. */
  config?: boolean;
}

/** `skopeo inspect` of `registry/ref` (`repo:tag` or `repo@digest`), parsed. */
export async function skopeoInspect(registry: RunningRegistry, ref: string, options: InspectOptions = {}): Promise<any> {
  const { args, secrets } = registryFlags(registry, '', options);
  if (options.raw) args.push('--raw');
  if (options.config) args.push('--config');
  return JSON.parse(await skopeo(['inspect', ...args, `docker://${registry.host}/${ref}`], secrets));
}
