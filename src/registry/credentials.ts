import { spawn } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KilnError, describeError } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { DOCKER_HUB_REGISTRY, canonicalRegistry, isDockerHub } from './reference.js';

/** What kiln presents to one registry. */
export type Credential =
  | { kind: 'anonymous' }
  | { kind: 'basic'; username: string; password: string }
  /** An OAuth2 refresh token, exchanged at the registry's token endpoint. */
  | { kind: 'identityToken'; token: string }
  /** A bearer token sent to the registry as it is. */
  | { kind: 'registryToken'; token: string };

export interface CredentialStore {
  /** Credentials for `host[:port]`; Docker Hub under any of its names. Looked up once per host. */
  get(registryHost: string): Promise<Credential>;
}

/** The outcome of running a program; `exitCode` is null when it was killed. */
export interface HelperRun {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `program args` with `input` on stdin, stopping it after `timeoutMs`. Rejects with
 * an error whose `code` is `ENOENT` when the program is not on the PATH of `env`, and
 * `ETIMEDOUT` when it had to be stopped.
 */
export type RunHelper = (program: string, args: readonly string[], input: string, env: NodeJS.ProcessEnv, timeoutMs: number) => Promise<HelperRun>;

export interface CredentialStoreOptions {
  /** DOCKER_CONFIG, HOME, PATH, REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR come from here. */
  env?: NodeJS.ProcessEnv;
  /** Where `~/.docker` is when DOCKER_CONFIG is not set; defaults to env.HOME, then the OS. */
  homeDir?: string;
  runHelper?: RunHelper;
  helperTimeoutMs?: number;
  logger?: Logger;
}

/** Docker Hub's key in config.json and the server URL its credential helpers are asked about. */
const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';
/** A helper answering with this user name hands over an identity token (docker-credential-helpers). */
const IDENTITY_TOKEN_USERNAME = '<token>';
const DEFAULT_HELPER_TIMEOUT_MS = 60_000;
const HELPER_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

interface AuthEntry {
  auth?: unknown;
  username?: unknown;
  password?: unknown;
  identitytoken?: unknown;
  registrytoken?: unknown;
}

interface DockerConfig {
  file: string;
  auths: Record<string, AuthEntry>;
  credHelpers: Record<string, string>;
  credsStore?: string;
}

/**
 * Docker's credential lookup as kaniko (through go-containerregistry) does it: one
 * config.json, `credHelpers[host]` or `credsStore` asked first, then the `auths` entry.
 * Unlike docker, a helper that has nothing for the host falls back to that `auths`
 * entry instead of going anonymous: credentials written there were meant to be used.
 */
export function createCredentialStore(options: CredentialStoreOptions = {}): CredentialStore {
  const env = options.env ?? process.env;
  const runHelper = options.runHelper ?? spawnHelper;
  const timeoutMs = options.helperTimeoutMs ?? DEFAULT_HELPER_TIMEOUT_MS;
  const logger = options.logger ?? silentLogger();
  let config: Promise<DockerConfig | undefined> | undefined;
  const cache = new Map<string, Promise<Credential>>();

  const lookup = async (host: string): Promise<Credential> => {
    config ??= loadDockerConfig(env, options.homeDir);
    const loaded = await config;
    if (!loaded) {
      logger.debug({ registry: host }, 'no docker config.json found; using anonymous access');
      return { kind: 'anonymous' };
    }
    const helper = helperFor(loaded, host);
    if (helper) {
      const fromHelper = await askHelper(helper, host, loaded.file, env, runHelper, timeoutMs);
      if (fromHelper) {
        logger.debug({ registry: host, helper: `docker-credential-${helper}`, kind: fromHelper.kind }, 'credentials from credential helper');
        return fromHelper;
      }
    }
    const entry = authEntryFor(loaded, host);
    if (!entry) {
      logger.debug({ registry: host, config: loaded.file }, 'no credentials configured; using anonymous access');
      return { kind: 'anonymous' };
    }
    const credential = credentialFromEntry(entry.value, entry.key, loaded.file);
    logger.debug({ registry: host, config: loaded.file, key: entry.key, kind: credential.kind }, 'credentials from docker config.json');
    return credential;
  };

  return {
    get(registryHost) {
      const host = canonicalRegistry(registryHost.toLowerCase());
      let pending = cache.get(host);
      if (!pending) {
        pending = lookup(host);
        cache.set(host, pending);
        // A failing helper may succeed later (an expired cloud login renewed): do not keep the failure.
        pending.catch(() => cache.delete(host));
      }
      return pending;
    },
  };
}

/** Where the docker config lives: `$DOCKER_CONFIG/config.json` (or DOCKER_CONFIG naming the file), else `~/.docker/config.json`. */
export async function dockerConfigPath(env: NodeJS.ProcessEnv, homeDir?: string): Promise<string> {
  const configured = env.DOCKER_CONFIG;
  if (configured) {
    // kaniko accepts DOCKER_CONFIG naming the file itself (GitLab "file" variables do that).
    const info = await stat(configured).catch(() => undefined);
    return info?.isFile() ? configured : join(configured, 'config.json');
  }
  return join(homeDir ?? env.HOME ?? homedir(), '.docker', 'config.json');
}

/**
 * The docker config, or podman's auth file when there is none (as go-containerregistry
 * falls back), or undefined when neither exists.
 */
async function loadDockerConfig(env: NodeJS.ProcessEnv, homeDir: string | undefined): Promise<DockerConfig | undefined> {
  const candidates = [await dockerConfigPath(env, homeDir)];
  if (env.REGISTRY_AUTH_FILE) candidates.push(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR) candidates.push(join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  for (const file of candidates) {
    const text = await readConfigText(file);
    if (text !== undefined) return parseDockerConfig(text, file);
  }
  return undefined;
}

async function readConfigText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KilnError('DOCKER_CONFIG', `Cannot read the docker config file ${file} (${describeError(err)}); fix its permissions or point DOCKER_CONFIG elsewhere.`);
  }
}

function parseDockerConfig(text: string, file: string): DockerConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    // No cause attached: V8's message quotes the file's text, which may hold a password.
    throw new KilnError('DOCKER_CONFIG', `The docker config file ${file} is not valid JSON (${describeJsonError(err, text)}); fix it or point DOCKER_CONFIG elsewhere.`);
  }
  const shapeError = (what: string) => new KilnError('DOCKER_CONFIG', `The docker config file ${file} is not usable: ${what}; fix it or point DOCKER_CONFIG elsewhere.`);
  if (!isPlainObject(parsed)) throw shapeError('the top level must be a JSON object');
  const { auths = {}, credHelpers = {}, credsStore } = parsed;
  if (!isPlainObject(auths)) throw shapeError('"auths" must be an object keyed by registry');
  for (const [key, entry] of Object.entries(auths)) {
    if (!isPlainObject(entry)) throw shapeError(`the "auths" entry for "${key}" must be an object`);
  }
  if (!isPlainObject(credHelpers)) throw shapeError('"credHelpers" must be an object mapping registries to helper names');
  for (const [key, helper] of Object.entries(credHelpers)) {
    if (typeof helper !== 'string') throw shapeError(`the "credHelpers" entry for "${key}" must be a helper name`);
  }
  if (credsStore !== undefined && typeof credsStore !== 'string') throw shapeError('"credsStore" must be a helper name');
  return {
    file,
    auths: auths as Record<string, AuthEntry>,
    credHelpers: credHelpers as Record<string, string>,
    ...(credsStore ? { credsStore } : {}),
  };
}

/** A JSON syntax error described by position only, never by the text around it. */
function describeJsonError(err: unknown, text: string): string {
  const message = err instanceof Error ? err.message : '';
  if (/unexpected end/i.test(message)) return 'it ends too early';
  const position = /at position (\d+)/.exec(message)?.[1];
  const offset = position !== undefined ? Number(position) : firstSuspectOffset(message, text);
  if (offset === undefined) return 'a syntax error';
  if (offset >= text.trimEnd().length) return 'it ends too early';
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return `syntax error at line ${line}, column ${column}`;
}

/** V8 names the unexpected character instead of a position for some errors; find its first place. */
function firstSuspectOffset(message: string, text: string): number | undefined {
  const token = /^Unexpected token '(.)'/.exec(message)?.[1];
  if (token === undefined) return undefined;
  const offset = text.indexOf(token);
  return offset === -1 ? undefined : offset;
}

/** `credHelpers` for the host, else the global `credsStore`. */
function helperFor(config: DockerConfig, host: string): string | undefined {
  const key = keyFor(Object.keys(config.credHelpers), host);
  const helper = key !== undefined ? config.credHelpers[key] : config.credsStore;
  if (!helper) return undefined;
  if (!HELPER_NAME_PATTERN.test(helper)) {
    throw new KilnError('DOCKER_CONFIG', `The docker config file ${config.file} names credential helper "${helper}" for ${host}, which is not a valid helper name; use the part after "docker-credential-".`);
  }
  return helper;
}

function authEntryFor(config: DockerConfig, host: string): { key: string; value: AuthEntry } | undefined {
  const key = keyFor(Object.keys(config.auths), host);
  return key !== undefined ? { key, value: config.auths[key]! } : undefined;
}

/**
 * The config key for a host: the exact host first, then any key whose host part matches
 * (`https://host`, `http://host`, `https://host/v1/`), in file order. Docker Hub prefers
 * `https://index.docker.io/v1/` and also matches keys naming docker.io or registry-1.docker.io.
 */
function keyFor(keys: readonly string[], host: string): string | undefined {
  if (isDockerHub(host)) {
    return keys.find((key) => key === DOCKER_HUB_AUTH_KEY) ?? keys.find((key) => isDockerHub(hostOfKey(key)));
  }
  return keys.find((key) => key.toLowerCase() === host) ?? keys.find((key) => hostOfKey(key) === host);
}

/** docker's ConvertToHostname: drop the scheme and any path. */
function hostOfKey(key: string): string {
  const withoutScheme = key.replace(/^https?:\/\//i, '');
  return withoutScheme.split('/')[0]!.toLowerCase();
}

/** Token forms win over user/password, as in go-containerregistry: a registry token, then an identity token. */
function credentialFromEntry(entry: AuthEntry, key: string, file: string): Credential {
  if (nonEmptyString(entry.registrytoken)) return { kind: 'registryToken', token: entry.registrytoken };
  if (nonEmptyString(entry.identitytoken)) return { kind: 'identityToken', token: entry.identitytoken };
  if (nonEmptyString(entry.auth)) return decodeAuth(entry.auth, key, file);
  if (nonEmptyString(entry.username) && typeof entry.password === 'string') {
    return { kind: 'basic', username: entry.username, password: entry.password };
  }
  return { kind: 'anonymous' };
}

function decodeAuth(auth: string, key: string, file: string): Credential {
  // `base64` wraps long lines; docker refuses those, kiln reads through the line breaks.
  const compact = auth.replace(/\s+/g, '');
  const invalid = () => new KilnError('DOCKER_CONFIG', `The "auth" value for "${key}" in the docker config file ${file} is not base64 of user:password; fix or remove that entry.`);
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(compact)) throw invalid();
  const decoded = Buffer.from(compact, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) throw invalid();
  return { kind: 'basic', username: decoded.slice(0, colon), password: decoded.slice(colon + 1).replace(/^\0+|\0+$/g, '') };
}

/**
 * The docker-credential-helpers protocol: `docker-credential-<name> get`, the server URL
 * on stdin, `{"Username","Secret"}` on stdout. Undefined when the helper has nothing for
 * the host.
 */
async function askHelper(
  helper: string,
  host: string,
  file: string,
  env: NodeJS.ProcessEnv,
  runHelper: RunHelper,
  timeoutMs: number,
): Promise<Credential | undefined> {
  const program = `docker-credential-${helper}`;
  const serverUrl = host === DOCKER_HUB_REGISTRY ? DOCKER_HUB_AUTH_KEY : host;
  let result: HelperRun;
  try {
    result = await runHelper(program, ['get'], serverUrl, env, timeoutMs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ETIMEDOUT') {
      throw new KilnError('CREDENTIAL_HELPER', `Credential helper ${program} did not answer for ${host} within ${timeoutMs / 1000} s; check that it can reach its credential source.`);
    }
    if (code === 'ENOENT') {
      throw new KilnError('CREDENTIAL_HELPER', `Credential helper ${program}, configured for ${host} in ${file}, is not on the PATH; install it or remove it from that file.`);
    }
    throw new KilnError('CREDENTIAL_HELPER', `Credential helper ${program} could not be started for ${host} (${describeError(err)}).`);
  }
  if (result.exitCode !== 0) {
    if (/credentials not found/i.test(result.stdout + result.stderr)) return undefined;
    const status = result.exitCode === null ? 'was killed' : `exited with status ${result.exitCode}`;
    const said = helperMessage(result);
    throw new KilnError('CREDENTIAL_HELPER', `Credential helper ${program} ${status} when asked for ${host}${said ? `: ${said}` : ''}.`);
  }
  if (result.stdout.trim() === '') return undefined;
  let answer: unknown;
  try {
    answer = JSON.parse(result.stdout);
  } catch {
    throw new KilnError('CREDENTIAL_HELPER', `Credential helper ${program} answered for ${host} with something that is not JSON; check the helper's version.`);
  }
  if (!isPlainObject(answer)) {
    throw new KilnError('CREDENTIAL_HELPER', `Credential helper ${program} answered for ${host} without a JSON object; check the helper's version.`);
  }
  const username = typeof answer.Username === 'string' ? answer.Username : '';
  const secret = typeof answer.Secret === 'string' ? answer.Secret : '';
  if (secret === '') return undefined;
  if (username === IDENTITY_TOKEN_USERNAME) return { kind: 'identityToken', token: secret };
  return { kind: 'basic', username, password: secret };
}

/**
 * What a failing helper said, for the error message. Helpers print their error on stdout
 * or stderr; one line of it is kept, and nothing that looks like a credential answer.
 */
function helperMessage(result: HelperRun): string {
  const text = (result.stderr.trim() || result.stdout.trim()).split('\n')[0]!.trim();
  if (/secret|password|token/i.test(text) && /[{:]/.test(text)) return '';
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

function spawnHelper(program: string, args: readonly string[], input: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<HelperRun> {
  return new Promise((resolve, reject) => {
    // PATH lookup uses env.PATH because env is passed.
    const child = spawn(program, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      if (timedOut) {
        reject(Object.assign(new Error(`${program} timed out`), { code: 'ETIMEDOUT' }));
        return;
      }
      resolve({ exitCode, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') });
    });
    // A helper that exits without reading stdin must not fail the lookup with EPIPE.
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function nonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value !== '';
}
