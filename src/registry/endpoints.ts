import { isIPv4 } from 'node:net';
import { KilnError } from '../util/errors.js';
import { canonicalRegistry, isDockerHub, isValidRegistryHost, repositoryPathProblem, type Reference } from './reference.js';

export type Purpose = 'pull' | 'push';

/** A registry to send requests to instead of (or before) the one a reference names. */
export interface MirrorTarget {
  /** `host[:port]`. */
  host: string;
  /** Prepended to the repository there, e.g. `theproject` for `harbor.example/theproject`; '' for none. */
  pathPrefix: string;
  /** Set when the flag spelled out a scheme; otherwise the registry's usual rules apply. */
  scheme?: 'https' | 'http';
}

export interface ClientCertificate {
  cert: string;
  key: string;
}

/**
 * kaniko's registry flags, parsed. Host keys are lower-case and Docker Hub is
 * `index.docker.io` under any of its names.
 */
export interface RegistryOptions {
  /** --insecure: push over plain HTTP. */
  insecure: boolean;
  /** --insecure-pull: pull over plain HTTP. */
  insecurePull: boolean;
  /** --insecure-registry: plain HTTP to these hosts for push and pull. */
  insecureRegistries: string[];
  /** --skip-tls-verify: do not verify certificates when pushing (kaniko applies it to pulls too). */
  skipTlsVerify: boolean;
  /** --skip-tls-verify-pull */
  skipTlsVerifyPull: boolean;
  /** --skip-tls-verify-registry */
  skipTlsVerifyRegistries: string[];
  /** --registry-certificate host=ca.pem: extra CAs trusted for a host. */
  registryCertificates: Record<string, string[]>;
  /** --registry-client-cert host=cert,key: mutual TLS. */
  registryClientCerts: Record<string, ClientCertificate>;
  /** --registry-mirror (and KANIKO_REGISTRY_MIRROR): pull-through mirrors for Docker Hub. */
  registryMirrors: MirrorTarget[];
  /** --registry-map (and KANIKO_REGISTRY_MAP): pull-through replacements for any registry. */
  registryMaps: Record<string, MirrorTarget[]>;
  /** --skip-default-registry-fallback: when mirrors or maps apply, never pull from the original registry. */
  skipDefaultRegistryFallback: boolean;
}

/**
 * One registry to try. With `allowHttpFallback`, a connection or TLS handshake that fails
 * over https is retried over plain HTTP: go-containerregistry does this for insecure
 * registries and for hosts that look local (localhost, *.local, loopback, RFC 1918), and
 * kaniko users rely on it.
 */
export interface Endpoint {
  host: string;
  scheme: 'https' | 'http';
  allowHttpFallback: boolean;
  /** The repository path to use on this host (a mirror's path prefix applied). */
  repository: string;
  tls: { caFiles: string[]; rejectUnauthorized: boolean; clientCert?: ClientCertificate };
  kind: 'mirror' | 'mapped' | 'origin';
}

export function defaultRegistryOptions(): RegistryOptions {
  return {
    insecure: false,
    insecurePull: false,
    insecureRegistries: [],
    skipTlsVerify: false,
    skipTlsVerifyPull: false,
    skipTlsVerifyRegistries: [],
    registryCertificates: {},
    registryClientCerts: {},
    registryMirrors: [],
    registryMaps: {},
    skipDefaultRegistryFallback: false,
  };
}

/**
 * The hosts to try for a reference, in order. Pulls go to `--registry-map` targets for the
 * reference's registry, then (for Docker Hub) `--registry-mirror`s, then the registry itself
 * unless `--skip-default-registry-fallback` is set and some mirror applied. Pushes only ever
 * go to the registry itself. A cache repository is a push target: resolve it with 'push'
 * even to read from it, as kaniko applies the push flags to it.
 */
export function resolveEndpoints(ref: Reference, purpose: Purpose, options: RegistryOptions): Endpoint[] {
  const origin = normalizeHost(ref.registry);
  const endpoints: Endpoint[] = [];
  if (purpose === 'pull') {
    const mapped = lookup(options.registryMaps, origin) ?? [];
    const mirrors = isDockerHub(origin) ? options.registryMirrors : [];
    const targets = [...mapped.map((target) => ({ target, kind: 'mapped' as const })), ...mirrors.map((target) => ({ target, kind: 'mirror' as const }))];
    for (const { target, kind } of targets) {
      const repository = target.pathPrefix ? `${target.pathPrefix}/${ref.repository}` : ref.repository;
      addUnique(endpoints, endpointFor(target.host, repository, kind, purpose, options, target.scheme));
    }
    if (targets.length > 0 && options.skipDefaultRegistryFallback) return endpoints;
  }
  addUnique(endpoints, endpointFor(origin, ref.repository, 'origin', purpose, options, undefined));
  return endpoints;
}

function endpointFor(
  host: string,
  repository: string,
  kind: Endpoint['kind'],
  purpose: Purpose,
  options: RegistryOptions,
  explicitScheme: 'https' | 'http' | undefined,
): Endpoint {
  const insecure = (purpose === 'pull' ? options.insecurePull : options.insecure) || options.insecureRegistries.includes(host);
  // kaniko 1.23 builds pull transports from the same options, so --skip-tls-verify reaches pulls too.
  const skipVerify = (purpose === 'pull' ? options.skipTlsVerifyPull || options.skipTlsVerify : options.skipTlsVerify)
    || options.skipTlsVerifyRegistries.includes(host);
  const clientCert = lookup(options.registryClientCerts, host);
  return {
    host,
    scheme: explicitScheme ?? 'https',
    allowHttpFallback: explicitScheme === undefined && (insecure || looksLocal(host)),
    repository,
    tls: {
      caFiles: [...(lookup(options.registryCertificates, host) ?? [])],
      rejectUnauthorized: !skipVerify,
      ...(clientCert ? { clientCert: { ...clientCert } } : {}),
    },
    kind,
  };
}

function addUnique(endpoints: Endpoint[], candidate: Endpoint): void {
  const duplicate = endpoints.some((e) => e.host === candidate.host && e.scheme === candidate.scheme && e.repository === candidate.repository);
  if (!duplicate) endpoints.push(candidate);
}

/** go-containerregistry's "probably a local registry" rule, which allows the plain-HTTP fallback. */
function looksLocal(host: string): boolean {
  const name = stripPort(host);
  if (name === 'localhost' || name.endsWith('.localhost') || name.endsWith('.local') || name === '::1') return true;
  if (!isIPv4(name)) return false;
  const [a, b] = name.split('.').map(Number) as [number, number];
  return a === 127 || a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168);
}

function stripPort(host: string): string {
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']'));
  const colon = host.lastIndexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
}

function lookup<T>(record: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

function normalizeHost(host: string): string {
  return canonicalRegistry(host.toLowerCase());
}

// ---------------------------------------------------------------------------------------
// Flag parsing

/** The registry flags as the command line gives them. */
export interface RegistryFlagValues {
  insecure?: boolean;
  insecurePull?: boolean;
  insecureRegistry?: readonly string[];
  skipTlsVerify?: boolean;
  skipTlsVerifyPull?: boolean;
  skipTlsVerifyRegistry?: readonly string[];
  registryCertificate?: readonly string[];
  registryClientCert?: readonly string[];
  registryMirror?: readonly string[];
  registryMap?: readonly string[];
  skipDefaultRegistryFallback?: boolean;
}

/**
 * Validates the registry flags once. Like kaniko, KANIKO_REGISTRY_MAP and
 * KANIKO_REGISTRY_MIRROR from `env` add to the flags (after them, so flags are tried first).
 */
export function parseRegistryOptions(flags: RegistryFlagValues, env: NodeJS.ProcessEnv): RegistryOptions {
  const options = defaultRegistryOptions();
  options.insecure = flags.insecure ?? false;
  options.insecurePull = flags.insecurePull ?? false;
  options.skipTlsVerify = flags.skipTlsVerify ?? false;
  options.skipTlsVerifyPull = flags.skipTlsVerifyPull ?? false;
  options.skipDefaultRegistryFallback = flags.skipDefaultRegistryFallback ?? false;
  options.insecureRegistries = (flags.insecureRegistry ?? []).map((value) => parseHostFlag('--insecure-registry', value));
  options.skipTlsVerifyRegistries = (flags.skipTlsVerifyRegistry ?? []).map((value) => parseHostFlag('--skip-tls-verify-registry', value));
  for (const value of flags.registryCertificate ?? []) {
    const { host, path } = parseRegistryCertificate(value);
    (options.registryCertificates[host] ??= []).push(path);
  }
  for (const value of flags.registryClientCert ?? []) {
    const { host, cert, key } = parseRegistryClientCert(value);
    options.registryClientCerts[host] = { cert, key };
  }
  const maps = [...(flags.registryMap ?? [])];
  if (env.KANIKO_REGISTRY_MAP) maps.push(env.KANIKO_REGISTRY_MAP);
  for (const value of maps) {
    for (const { from, to } of parseRegistryMap(value)) (options.registryMaps[from] ??= []).push(to);
  }
  const mirrors = [...(flags.registryMirror ?? [])];
  if (env.KANIKO_REGISTRY_MIRROR) mirrors.push(env.KANIKO_REGISTRY_MIRROR);
  options.registryMirrors = mirrors.map((value) => parseMirrorTarget('--registry-mirror', value));
  return options;
}

/**
 * A registry host for a per-registry flag. A scheme or trailing slash is dropped (kaniko
 * ignored such entries silently; kiln takes the host it names).
 */
export function parseHostFlag(flag: string, value: string): string {
  const host = value.trim().replace(/^https?:\/\//i, '').replace(/\/+$/, '');
  if (!isValidRegistryHost(host)) {
    throw new KilnError('USAGE', `${flag} expects a registry host such as registry.example.com:5000, got "${value}".`);
  }
  return normalizeHost(host);
}

/** `--registry-certificate host=/path/to/ca.pem` */
export function parseRegistryCertificate(value: string): { host: string; path: string } {
  const usage = () => new KilnError('USAGE', `--registry-certificate expects host=/path/to/ca.pem, got "${value}".`);
  const [hostPart, path] = splitOnce(value, '=');
  if (path === undefined || path === '' || hostPart === '') throw usage();
  const host = tryHost(hostPart);
  if (!host) throw usage();
  return { host, path };
}

/** `--registry-client-cert host=/path/to/cert.pem,/path/to/key.pem` */
export function parseRegistryClientCert(value: string): { host: string; cert: string; key: string } {
  const usage = () => new KilnError('USAGE', `--registry-client-cert expects host=/path/to/cert.pem,/path/to/key.pem, got "${value}".`);
  const [hostPart, files] = splitOnce(value, '=');
  if (files === undefined) throw usage();
  const host = tryHost(hostPart);
  const parts = files.split(',');
  if (!host || parts.length !== 2 || parts.some((part) => part === '')) throw usage();
  return { host, cert: parts[0]!, key: parts[1]! };
}

/**
 * `--registry-map original=replacement[;original=replacement...]`, as in kaniko: each pair
 * names its original registry, so two replacements for one registry are
 * `index.docker.io=a.example;index.docker.io=b.example`. The replacement may carry a
 * repository prefix (`harbor.example/proxy`) and, in kiln, an http:// or https:// scheme.
 */
export function parseRegistryMap(value: string): Array<{ from: string; to: MirrorTarget }> {
  const pairs: Array<{ from: string; to: MirrorTarget }> = [];
  for (const segment of value.split(';')) {
    if (segment.trim() === '') continue;
    const [fromPart, toPart] = splitOnce(segment.trim(), '=');
    const from = tryHost(fromPart);
    if (!from || toPart === undefined || toPart === '') {
      throw new KilnError('USAGE', `--registry-map expects original=replacement pairs separated by ";" (e.g. index.docker.io=mirror.gcr.io;index.docker.io=other.example), got "${segment}".`);
    }
    pairs.push({ from, to: parseMirrorTarget('--registry-map', toPart) });
  }
  return pairs;
}

/** `host[:port][/path/prefix]`, optionally with http:// or https://. */
export function parseMirrorTarget(flag: string, value: string): MirrorTarget {
  const usage = (why: string) => new KilnError('USAGE', `${flag} expects a registry host with an optional path, such as mirror.gcr.io or harbor.example/proxy, got "${value}": ${why}.`);
  let rest = value.trim();
  let scheme: MirrorTarget['scheme'];
  const schemeMatch = /^(https?):\/\//i.exec(rest);
  if (schemeMatch) {
    scheme = schemeMatch[1]!.toLowerCase() as 'https' | 'http';
    rest = rest.slice(schemeMatch[0].length);
  }
  rest = rest.replace(/\/+$/, '');
  const slash = rest.indexOf('/');
  const hostPart = slash === -1 ? rest : rest.slice(0, slash);
  const pathPrefix = slash === -1 ? '' : rest.slice(slash + 1);
  if (!isValidRegistryHost(hostPart)) throw usage(`"${hostPart}" is not a valid host[:port]`);
  if (pathPrefix !== '') {
    const problem = repositoryPathProblem(pathPrefix);
    if (problem) throw usage(problem);
  }
  return { host: normalizeHost(hostPart), pathPrefix, ...(scheme ? { scheme } : {}) };
}

function tryHost(value: string): string | undefined {
  const host = value.trim();
  return isValidRegistryHost(host) ? normalizeHost(host) : undefined;
}

function splitOnce(value: string, separator: string): [string, string | undefined] {
  const index = value.indexOf(separator);
  return index === -1 ? [value, undefined] : [value.slice(0, index), value.slice(index + 1)];
}
