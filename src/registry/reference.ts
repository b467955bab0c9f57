import { isDigest } from '../oci/digest.js';
import { KilnError } from '../util/errors.js';

/**
 * An image reference split into parts, normalised the way docker, kaniko and
 * go-containerregistry do it: `ubuntu` is `index.docker.io/library/ubuntu:latest`.
 * When both a tag and a digest are given, both are kept; the digest is what gets fetched.
 */
export interface Reference {
  /** `host[:port]`; Docker Hub is always `index.docker.io`. */
  readonly registry: string;
  /** The repository path on that registry, e.g. `library/ubuntu`. */
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: string;
}

export const DOCKER_HUB_REGISTRY = 'index.docker.io';
const DOCKER_HUB_ALIASES = new Set([DOCKER_HUB_REGISTRY, 'docker.io', 'registry-1.docker.io']);
const DEFAULT_TAG = 'latest';
const OFFICIAL_NAMESPACE = 'library';
const MAX_NAME_LENGTH = 255;

// The grammar of github.com/distribution/reference.
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const HOST_PATTERN = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::([0-9]+))?$`);
const PATH_COMPONENT_PATTERN = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_PATTERN = /^\w[\w.-]{0,127}$/;

/** Parses `[registry/]repository[:tag][@digest]`; throws INVALID_REFERENCE naming what is wrong. */
export function parseReference(input: string): Reference {
  const invalid = (problem: string) => new KilnError('INVALID_REFERENCE', `Image reference "${input}" is not valid: ${problem}.`);
  if (input.length === 0) throw invalid('it is empty; expected a name such as ubuntu:22.04 or registry.example.com/team/app:1.0');

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) throw invalid(`digest "${digest}" must be sha256: followed by 64 lowercase hex digits (or sha512: with 128)`);
  }

  const { registry, remainder } = splitRegistry(rest);
  let path = remainder;
  let tag: string | undefined;
  const colon = path.lastIndexOf(':');
  if (colon !== -1) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    if (!TAG_PATTERN.test(tag)) {
      throw invalid(`tag "${tag}" must be 1 to 128 letters, digits, "_", "." or "-", not starting with "." or "-"`);
    }
  }

  if (!isValidRegistryHost(registry)) throw invalid(`registry "${registry}" is not a valid host[:port]`);
  if (path.length === 0) throw invalid('the repository name is missing');
  const problem = repositoryPathProblem(path);
  if (problem) throw invalid(problem);

  const canonical = canonicalRegistry(registry);
  const repository = isDockerHub(canonical) && !path.includes('/') ? `${OFFICIAL_NAMESPACE}/${path}` : path;
  if (canonical.length + 1 + repository.length > MAX_NAME_LENGTH) {
    throw invalid(`the name is longer than ${MAX_NAME_LENGTH} characters`);
  }
  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  return buildReference(canonical, repository, tag, digest);
}

/** `registry/repository[:tag][@digest]`, always with the registry spelled out. */
export function formatReference(ref: Reference): string {
  return `${repositoryName(ref)}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** The same repository at another tag; a digest is dropped because it pinned the old tag's content. */
export function referenceWithTag(ref: Reference, tag: string): Reference {
  if (!TAG_PATTERN.test(tag)) {
    throw new KilnError('INVALID_REFERENCE', `Tag "${tag}" for ${repositoryName(ref)} is not valid: use 1 to 128 letters, digits, "_", "." or "-", not starting with "." or "-".`);
  }
  return buildReference(ref.registry, ref.repository, tag, undefined);
}

/** The same reference pinned to a digest; the tag is kept so `repo:tag@digest` can still be written. */
export function referenceWithDigest(ref: Reference, digest: string): Reference {
  if (!isDigest(digest)) {
    throw new KilnError('INVALID_REFERENCE', `Digest "${digest}" for ${repositoryName(ref)} is not valid: expected sha256: followed by 64 lowercase hex digits.`);
  }
  return buildReference(ref.registry, ref.repository, ref.tag, digest);
}

/** `registry/repository`, e.g. `index.docker.io/library/ubuntu`. */
export function repositoryName(ref: Reference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** What goes after `/manifests/`: the digest when there is one, else the tag. */
export function manifestIdentifier(ref: Reference): string {
  const identifier = ref.digest ?? ref.tag;
  if (identifier === undefined) throw new KilnError('INTERNAL', `reference ${repositoryName(ref)} has neither a tag nor a digest`);
  return identifier;
}

export function isDockerHub(registry: string): boolean {
  return DOCKER_HUB_ALIASES.has(registry.toLowerCase());
}

/** Docker Hub's aliases become `index.docker.io`; any other host is returned unchanged. */
export function canonicalRegistry(host: string): string {
  return isDockerHub(host) ? DOCKER_HUB_REGISTRY : host;
}

/** `host[:port]` per the distribution grammar: DNS name, IPv4 or bracketed IPv6, port 1–65535. */
export function isValidRegistryHost(host: string): boolean {
  const match = HOST_PATTERN.exec(host);
  if (!match) return false;
  const port = match[1];
  return port === undefined || (Number(port) >= 1 && Number(port) <= 65535);
}

/** A reason the repository path breaks the distribution grammar, or undefined when it is fine. */
export function repositoryPathProblem(path: string): string | undefined {
  if (path !== path.toLowerCase()) return `repository "${path}" must be lowercase`;
  for (const component of path.split('/')) {
    if (component.length === 0) return `repository "${path}" has an empty path component`;
    if (!PATH_COMPONENT_PATTERN.test(component)) {
      return `repository path component "${component}" may only contain lowercase letters and digits joined by ".", "_", "__" or "-"`;
    }
  }
  return undefined;
}

/**
 * Docker's rule: the first component is a registry when it contains "." or ":", is
 * "localhost", or has upper-case letters; otherwise the whole name is on Docker Hub.
 */
function splitRegistry(name: string): { registry: string; remainder: string } {
  const slash = name.indexOf('/');
  if (slash === -1) return { registry: DOCKER_HUB_REGISTRY, remainder: name };
  const first = name.slice(0, slash);
  const looksLikeHost = /[.:]/.test(first) || first === 'localhost' || first !== first.toLowerCase();
  return looksLikeHost ? { registry: first, remainder: name.slice(slash + 1) } : { registry: DOCKER_HUB_REGISTRY, remainder: name };
}

function buildReference(registry: string, repository: string, tag: string | undefined, digest: string | undefined): Reference {
  return {
    registry,
    repository,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
  };
}
