import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import type { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';
import { KilnError, describeError } from '../util/errors.js';
import { bulkGet } from './bulk-get.js';
import type { Logger } from '../util/log.js';

export type HttpMethod = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

export interface HttpRequest {
  method: HttpMethod;
  url: string;
  headers?: Record<string, string>;
  /** A body factory, so a retried request can send its body again. */
  body?: Buffer | string | (() => Promise<Readable> | Readable);
  /**
   * A GET whose response body is large (a layer blob): sent on a connection of its own that
   * reads in large slabs (see bulk-get.ts) instead of through the pooled undici agent.
   */
  bulk?: boolean;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable & { dump(): Promise<void>; text(): Promise<string> };
  url: string;
}

export interface TlsSettings {
  caFiles: readonly string[];
  rejectUnauthorized: boolean;
  clientCert?: { cert: string; key: string } | undefined;
}

export interface RetryPolicy {
  /** Extra attempts after the first one. */
  retries: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { retries: 3, baseDelayMs: 200, maxDelayMs: 5_000 };

const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const RETRYABLE_NETWORK_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ECONNABORTED', 'ENETUNREACH', 'EHOSTUNREACH',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED',
]);
const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|HOSTNAME|ALTNAME|SSL/;
/** undici's default headers and body timeouts. */
const IDLE_TIMEOUT_MS = 300_000;

interface Pool {
  dispatcher: Dispatcher;
  connect: Record<string, unknown>;
}

/** Low-level HTTP with keep-alive, per-TLS-setting connection pools and bounded retries. */
export class HttpTransport {
  private readonly pools = new Map<string, Pool>();

  constructor(
    private readonly logger: Logger,
    private readonly retry: RetryPolicy = DEFAULT_RETRY_POLICY,
    private readonly connectionsPerOrigin = 8,
  ) {}

  /**
   * Sends a request, retrying on 429, 5xx and dropped connections with exponential backoff
   * (Retry-After honoured). Any status that is not retried is returned to the caller.
   */
  async send(req: HttpRequest, tls: TlsSettings): Promise<HttpResponse> {
    for (let attempt = 0; ; attempt++) {
      let response: HttpResponse;
      try {
        response = await this.sendOnce(req, tls);
      } catch (err) {
        const code = networkCode(err);
        if (attempt < this.retry.retries && code !== undefined && RETRYABLE_NETWORK_CODES.has(code)) {
          const delay = this.backoff(attempt);
          this.logger.debug({ method: req.method, url: redactUrl(req.url), code, delayMs: delay }, 'retrying after a connection error');
          await sleep(delay);
          continue;
        }
        throw translateNetworkError(err, req.url);
      }
      if (attempt < this.retry.retries && RETRYABLE_STATUS.has(response.status)) {
        await response.body.dump().catch(() => undefined);
        const delay = retryAfterMs(response.headers['retry-after']) ?? this.backoff(attempt);
        this.logger.debug({ method: req.method, url: redactUrl(req.url), status: response.status, delayMs: delay }, 'retrying after a server error');
        await sleep(Math.min(delay, 30_000));
        continue;
      }
      return response;
    }
  }

  private async sendOnce(req: HttpRequest, tls: TlsSettings): Promise<HttpResponse> {
    const pool = this.pool(tls);
    if (req.bulk && req.method === 'GET' && req.body === undefined) {
      return bulkGet({ url: req.url, headers: req.headers ?? {}, tls: pool.connect, timeoutMs: IDLE_TIMEOUT_MS });
    }
    const body = typeof req.body === 'function' ? await req.body() : req.body;
    const result = await request(req.url, {
      method: req.method,
      headers: req.headers,
      body,
      dispatcher: pool.dispatcher,
    });
    return { status: result.statusCode, headers: result.headers, body: result.body as unknown as HttpResponse['body'], url: req.url };
  }

  private pool(tls: TlsSettings): Pool {
    const key = JSON.stringify([tls.caFiles, tls.rejectUnauthorized, tls.clientCert ?? null]);
    let pool = this.pools.get(key);
    if (!pool) {
      const connect = connectOptions(tls);
      pool = {
        connect,
        dispatcher: new Agent({ connections: this.connectionsPerOrigin, keepAliveTimeout: 30_000, connect }),
      };
      this.pools.set(key, pool);
    }
    return pool;
  }

  private backoff(attempt: number): number {
    const base = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** attempt);
    return Math.round(base / 2 + Math.random() * (base / 2));
  }

  async close(): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(all.map((p) => p.dispatcher.close()));
  }
}

function connectOptions(tls: TlsSettings): Record<string, unknown> {
  const options: Record<string, unknown> = { rejectUnauthorized: tls.rejectUnauthorized };
  const extra = certificatesNotBundled([...environmentCertificates(process.env), ...tls.caFiles.map((file) => readPem(file, 'CA certificate'))]);
  if (extra.length > 0) {
    // A custom `ca` replaces Node's bundled roots, so keep them alongside the extra CAs.
    options.ca = [...rootCertificates, ...extra];
  }
  if (tls.clientCert) {
    options.cert = readPem(tls.clientCert.cert, 'client certificate');
    options.key = readPem(tls.clientCert.key, 'client key');
  }
  return options;
}

/**
 * The certificates Node does not already trust. A system bundle (SSL_CERT_FILE) mostly repeats
 * Node's own roots, and each certificate given costs a TLS context a parse: without new ones
 * kiln keeps Node's default context, which is built once per process.
 */
export function certificatesNotBundled(pems: readonly string[]): string[] {
  const bundled = new Set(rootCertificates.map(pemBody));
  return pems.filter((pem) => {
    // A file given by the user may hold several certificates: kept whole unless all are known.
    const bodies = pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [pem];
    return bodies.some((body) => !bundled.has(pemBody(body)));
  });
}

/** A PEM certificate without its line breaks, for comparing two spellings of one certificate. */
function pemBody(pem: string): string {
  return pem.replace(/\s+/g, '');
}

function readPem(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new KilnError('USAGE', `cannot read the ${what} ${file}: ${describeError(err)}.`, { cause: err });
  }
}

function networkCode(err: unknown): string | undefined {
  let current: unknown = err;
  for (let depth = 0; current && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function translateNetworkError(err: unknown, url: string): KilnError {
  if (err instanceof KilnError) return err;
  const { host, protocol } = new URL(url);
  const code = networkCode(err) ?? '';
  const detail = describeError(err);
  if (code === 'ECONNREFUSED') {
    return new KilnError('REGISTRY_UNREACHABLE', `cannot reach ${host}: the connection was refused; check the registry address and that it is running.`, { cause: err });
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new KilnError('REGISTRY_UNREACHABLE', `cannot reach ${host}: the host name does not resolve; check the registry address.`, { cause: err });
  }
  if (code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new KilnError('REGISTRY_UNREACHABLE', `cannot reach ${host}: the connection timed out; check the address and the network.`, { cause: err });
  }
  const tls = tlsProblem(err, protocol);
  if (tls === 'no-tls') {
    return new KilnError('REGISTRY_TLS', `${host} does not speak TLS; if it is a plain-HTTP registry pass --insecure-registry=${host}.`, { cause: err });
  }
  if (tls === 'certificate') {
    return new KilnError('REGISTRY_TLS', `the TLS certificate of ${host} is not trusted (${detail}); pass its CA with --registry-certificate=${host}=ca.pem or use --skip-tls-verify-registry=${host}.`, { cause: err });
  }
  return new KilnError('REGISTRY_UNREACHABLE', `the connection to ${host} failed: ${detail}.`, { cause: err });
}

/** Why a connection failed at the TLS layer: the peer speaks plain HTTP, or its certificate is not trusted. */
function tlsProblem(err: unknown, protocol: string): 'no-tls' | 'certificate' | undefined {
  const code = networkCode(err) ?? '';
  const detail = describeError(err);
  if (protocol === 'https:' && (/wrong version number|packet length too long|EPROTO/i.test(detail) || code === 'EPROTO')) return 'no-tls';
  if (TLS_CODES.test(code) || /certificate/i.test(detail)) return 'certificate';
  return undefined;
}

/**
 * True for the REGISTRY_TLS error of a server that answered with a certificate kiln does not
 * trust: that server speaks TLS, so trying plain HTTP on the same port cannot help.
 */
export function isUntrustedCertificate(err: unknown): boolean {
  return err instanceof KilnError && err.code === 'REGISTRY_TLS' && tlsProblem(err.cause, 'https:') === 'certificate';
}

function retryAfterMs(value: string | string[] | undefined): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined) return undefined;
  const seconds = Number(text);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** Strips query strings, which may carry upload state or signed-URL secrets, from URLs in logs. */
export function redactUrl(url: string): string {
  const at = url.indexOf('?');
  return at === -1 ? url : url.slice(0, at) + '?…';
}

export function headerValue(headers: HttpResponse['headers'], name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * CA certificates named the way Go programs such as kaniko read them: the file SSL_CERT_FILE
 * and every file in the SSL_CERT_DIR directories (no hashed names needed). kiln's executor
 * image points both at /kaniko/ssl/certs, where pipelines append to the bundle or mount CAs.
 */
export function environmentCertificates(env: NodeJS.ProcessEnv): string[] {
  const files = env.SSL_CERT_FILE ? [env.SSL_CERT_FILE] : [];
  for (const dir of (env.SSL_CERT_DIR ?? '').split(':').filter(Boolean)) {
    try {
      for (const name of readdirSync(dir).sort()) files.push(join(dir, name));
    } catch {
      // No such directory: Go skips it too.
    }
  }
  // Distributions keep each certificate three times (its file, a hash symlink, the bundle):
  // each one once keeps the TLS context quick to build.
  const pems = new Set<string>();
  for (const file of new Set(files)) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue; // A directory or an unreadable file: skipped, as by Go.
    }
    for (const match of text.matchAll(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)) pems.add(match[0] + '\n');
  }
  return [...pems];
}
