// A real registry for kiln's integration tests: Debian's docker-registry (distribution 2.8.2)
// on a loopback port, one process and one temp directory per call, in four variants:
// plain HTTP, htpasswd Basic, TLS with a test CA, and Bearer tokens from a harness issuer.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { parseAccessLogLine, type LoggedRequest } from './access-log.js';
import { makeServerCertificates, makeSigningCertificate } from './certs.js';
import type { KeyHeader } from './jwt.js';
import { onLines } from './lines.js';
import { freePort, LOOPBACK } from './net.js';
import { probe, PROBE_USER_AGENT } from './probe.js';
import { run, spawnServer, stopProcess } from './process.js';
import { makeTempDir, type TempDir } from './temp.js';
import { startTokenServer, type TokenRequest, type TokenServer } from './token-server.js';

export type RegistryVariant = 'plain' | 'basic' | 'tls' | 'token';

export interface RegistryOptions {
  /** Token variant: lifetime of issued tokens. distribution adds 60 s of leeway to `exp`. */
  tokenLifetimeSeconds?: number;
  /** Token variant: how the JWT names its signing key; both are accepted by distribution 2.8. */
  tokenKeyHeader?: KeyHeader;
  /** `http.relativeurls`: Location headers without scheme and host. */
  relativeUrls?: boolean;
}

export interface RunningRegistry {
  variant: RegistryVariant;
  /** `127.0.0.1:PORT` */
  host: string;
  /** `http://host` or, for tls, `https://host` */
  url: string;
  /** basic and token variants */
  username?: string;
  password?: string;
  /** tls variant: PEM of the CA that signed the registry's certificate */
  caCertPath?: string;
  /** tls variant: a directory with `ca.crt`, for skopeo's `--cert-dir` */
  certDir?: string;
  /** token variant: the token endpoint the registry's challenge points at */
  realm?: string;
  service?: string;
  storageDir: string;
  /** The docker-registry process, for tests that check it is gone after stop(). */
  pid: number;
  /** Requests from the registry's access log so far, without the harness's own probes. */
  requests(): LoggedRequest[];
  /** Like requests(), after making sure every request answered so far has been logged. */
  settledRequests(): Promise<LoggedRequest[]>;
  /** token variant: what the token endpoint was asked; [] for the others. */
  tokenRequests(): TokenRequest[];
  /** The registry's recent output, for diagnosing a failed test. */
  logs(): string;
  stop(): Promise<void>;
}

const SERVICE = 'kiln-test-registry';
const ISSUER = 'kiln-test-token-issuer';
const USERNAME = 'kiln';
const PORT_ATTEMPTS = 5;
const READY_TIMEOUT_MS = 15_000;
const LOG_LINES_KEPT = 400;

export async function startRegistry(variant: RegistryVariant, options: RegistryOptions = {}): Promise<RunningRegistry> {
  const temp = await makeTempDir(`registry-${variant}`);
  const dir = temp.path;
  let tokenServer: TokenServer | undefined;
  try {
    const storageDir = join(dir, 'storage');
    await mkdir(storageDir);
    const auth: Record<string, unknown> = {};
    const tls: Record<string, unknown> = {};
    const extra: Partial<RunningRegistry> = {};

    if (variant === 'basic' || variant === 'token') {
      extra.username = USERNAME;
      extra.password = randomBytes(12).toString('base64url');
    }
    if (variant === 'basic') {
      const { stdout } = await run('htpasswd', ['-Bbn', USERNAME, extra.password!], { secrets: [extra.password!] });
      const htpasswdPath = join(dir, 'htpasswd');
      await writeFile(htpasswdPath, stdout.trim() + '\n');
      auth.htpasswd = { realm: 'kiln-test', path: htpasswdPath };
    }
    if (variant === 'tls') {
      const certs = await makeServerCertificates(join(dir, 'tls'));
      tls.certificate = certs.certPath;
      tls.key = certs.keyPath;
      extra.caCertPath = certs.caCertPath;
      extra.certDir = certs.certDir;
    }
    if (variant === 'token') {
      const signing = await makeSigningCertificate(join(dir, 'token'));
      tokenServer = await startTokenServer({
        service: SERVICE,
        issuer: ISSUER,
        username: USERNAME,
        password: extra.password!,
        signingKeyPath: signing.keyPath,
        signingCertPath: signing.certPath,
        keyHeader: options.tokenKeyHeader ?? 'x5c',
        lifetimeSeconds: options.tokenLifetimeSeconds ?? 300,
      });
      auth.token = { realm: tokenServer.realm, service: SERVICE, issuer: ISSUER, rootcertbundle: signing.certPath };
      extra.realm = tokenServer.realm;
      extra.service = SERVICE;
    }

    const ca = extra.caCertPath ? await readFile(extra.caCertPath, 'utf8') : undefined;
    const scheme = variant === 'tls' ? 'https' : 'http';

    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const host = `${LOOPBACK}:${port}`;
      // distribution reads YAML, and JSON is YAML.
      const config = {
        version: '0.1',
        log: { level: 'info', accesslog: { disabled: false } },
        storage: {
          filesystem: { rootdirectory: storageDir },
          delete: { enabled: true },
          maintenance: { uploadpurging: { enabled: false } },
        },
        http: {
          addr: host,
          secret: randomBytes(16).toString('hex'),
          relativeurls: options.relativeUrls ?? false,
          ...(variant === 'tls' ? { tls } : {}),
        },
        ...(Object.keys(auth).length ? { auth } : {}),
      };
      const configPath = join(dir, 'config.yml');
      await writeFile(configPath, JSON.stringify(config, null, 2));

      const server = watchRegistry(spawnServer('docker-registry', ['serve', configPath], dir));
      const outcome = await waitUntilReady(server, host, `${scheme}://${host}/v2/`, ca);
      if (outcome === 'ready') {
        return buildHandle(variant, host, `${scheme}://${host}`, storageDir, temp, server, tokenServer, ca, extra);
      }
      await stopProcess(server.child);
      if (outcome === 'port-taken' && attempt < PORT_ATTEMPTS) continue;
      throw new Error(`docker-registry (${variant}) did not start: ${outcome}\n${server.logs()}`);
    }
  } catch (error) {
    await tokenServer?.stop();
    await temp.remove();
    throw error;
  }
}

interface WatchedRegistry {
  child: ChildProcess;
  requests: LoggedRequest[];
  logs(): string;
  /** Resolves once a line satisfying `test` has been seen (or the process has exited). */
  waitForLine(test: (line: string) => boolean): Promise<void>;
  exited: Promise<void>;
}

function watchRegistry(child: ChildProcess): WatchedRegistry {
  const requests: LoggedRequest[] = [];
  const recent: string[] = [];
  const waiters: { test: (line: string) => boolean; resolve: () => void }[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const handle = (line: string): void => {
    recent.push(line);
    if (recent.length > LOG_LINES_KEPT) recent.shift();
    const request = parseAccessLogLine(line);
    if (request) requests.push(request);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i]!.test(line)) waiters.splice(i, 1)[0]!.resolve();
    }
  };
  onLines(child.stdout!, handle);
  onLines(child.stderr!, handle);
  return {
    child,
    requests,
    exited,
    logs: () => recent.join('\n'),
    waitForLine: (test) =>
      recent.some(test) ? Promise.resolve() : Promise.race([new Promise<void>((resolve) => waiters.push({ test, resolve })), exited]),
  };
}

/**
 * Ready once this process says it listens on `host` and `GET /v2/` answers. The first
 * condition matters when two test processes race for one port: the loser must not mistake
 * the winner's registry for its own.
 */
async function waitUntilReady(
  server: WatchedRegistry,
  host: string,
  url: string,
  ca: string | undefined,
): Promise<'ready' | 'port-taken' | string> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let exited = false;
  let listening = false;
  void server.exited.then(() => { exited = true; });
  void server.waitForLine((line) => line.includes(`listening on ${host}`)).then(() => { listening = true; });
  while (Date.now() < deadline) {
    if (exited) return /address already in use/i.test(server.logs()) ? 'port-taken' : `exited with ${server.child.exitCode}`;
    if (!listening) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      continue;
    }
    try {
      const status = await probe(url, ca, 1000);
      if (status === 200 || status === 401) return 'ready';
    } catch { /* not listening yet */ }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return `GET ${url} did not answer within ${READY_TIMEOUT_MS} ms`;
}

function buildHandle(
  variant: RegistryVariant,
  host: string,
  url: string,
  storageDir: string,
  temp: TempDir,
  server: WatchedRegistry,
  tokenServer: TokenServer | undefined,
  ca: string | undefined,
  extra: Partial<RunningRegistry>,
): RunningRegistry {
  let syncCount = 0;
  let stopped: Promise<void> | undefined;
  const ours = (): LoggedRequest[] => server.requests.filter((r) => r.userAgent !== PROBE_USER_AGENT).map((r) => ({ ...r }));
  return {
    ...extra,
    variant,
    host,
    url,
    storageDir,
    pid: server.child.pid!,
    requests: ours,
    async settledRequests() {
      // The access log line is written after the response: a marked probe that is logged
      // means every request answered before it has been logged too.
      const marker = `kiln-harness-sync=${++syncCount}`;
      await probe(`${url}/v2/?${marker}`, ca);
      await server.waitForLine((line) => line.includes(marker));
      return ours();
    },
    tokenRequests: () => tokenServer?.tokenRequests() ?? [],
    logs: server.logs,
    stop() {
      stopped ??= (async () => {
        await stopProcess(server.child);
        await tokenServer?.stop();
        await temp.remove();
      })();
      return stopped;
    },
  };
}
