import { availableParallelism } from 'node:os';
import { pipeline, type Readable } from 'node:stream';
import { KilnError, isKilnError } from '../util/errors.js';
import { HashWorker, type OffThreadHash } from '../util/hash-worker.js';
import { ConcurrencyLimit } from '../util/limit.js';
import { readLimited } from '../util/read-limited.js';
import { silentLogger, type Logger } from '../util/log.js';
import type { BlobSink, BlobTransferOptions } from '../oci/blob-sink.js';
import { DigestVerifier, VerifyingStream, parseDigest, sha256, verifyBytes, type Digest } from '../oci/digest.js';
import { MediaType } from '../oci/mediatypes.js';
import { parseAnyManifest } from '../oci/image-builder.js';
import { Authenticator, pullScope, pushScope, type AuthTarget } from './auth.js';
import type { CredentialStore } from './credentials.js';
import { resolveEndpoints, type Endpoint, type RegistryOptions } from './endpoints.js';
import { lendBody } from './bulk-get.js';
import { unexpectedStatus } from './errors.js';
import { formatReference, type Reference } from './reference.js';
import {
  DEFAULT_RETRY_POLICY,
  HttpTransport,
  headerValue,
  isUntrustedCertificate,
  redactUrl,
  type HttpRequest,
  type HttpResponse,
  type RetryPolicy,
} from './transport.js';

export const MANIFEST_ACCEPT = [MediaType.ociManifest, MediaType.ociIndex, MediaType.dockerManifest, MediaType.dockerManifestList];

/** Registries refuse manifests above 4 MiB; kiln refuses to read larger ones into memory. */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_REDIRECTS = 5;
/** Blobs from this size on (or of unknown size) are fetched with large socket reads. */
const BULK_BLOB_BYTES = 1 << 20;
/** fetchBlob hashes blobs from this size on (or of unknown size) on the hashing thread, when it has one. */
const SLOT_HASH_MIN_BYTES = 4 << 20;

export interface RegistryClientOptions {
  registry: RegistryOptions;
  credentials: CredentialStore;
  logger?: Logger;
  retry?: Partial<RetryPolicy>;
  /** Requests in flight at once, all registries together. */
  concurrency?: number;
  userAgent?: string;
  /**
   * Verify large downloads on a thread of their own. For getBlob's stream that costs some
   * CPU (a copy, the hand-over) and pays off when a core is free for it; on a busy two-core
   * machine hashing inline was as fast or faster, so its default is a thread only with more
   * than two cores. fetchBlob's thread hashes the received memory in place, so it costs
   * little, and it lets the download go as fast as the network whenever a second core is
   * free: its default is on. `false` hashes both on the calling thread, `true` both on
   * threads of their own.
   */
  hashThread?: boolean;
}

export type { BlobSink } from '../oci/blob-sink.js';

export interface FetchedManifest {
  raw: Buffer;
  mediaType: string;
  digest: Digest;
  /** The endpoint the manifest came from (a mirror or the origin). */
  endpoint: Endpoint;
}

export interface ManifestHead {
  mediaType: string;
  digest: Digest;
  size: number;
}

/** A blob to upload: its identity plus a way to open it (again, when a retry needs it). */
export interface BlobUpload {
  digest: Digest;
  size: number;
  open: () => Promise<Readable>;
}

export type UploadResult =
  | { kind: 'exists' }
  | { kind: 'mounted'; from: string }
  | { kind: 'uploaded'; bytes: number };

export interface UploadOptions {
  /** A repository on the same registry that has the blob: mount from it instead of uploading. */
  mountFrom?: string;
  /** Upload in chunks of this many bytes (PATCH per chunk) instead of one PUT. */
  chunkSize?: number;
}

type Purpose = 'pull' | 'push';

/**
 * The distribution API: manifests and blobs on one or more registries, with auth, mirrors,
 * retries and a global concurrency limit. Blob content is only ever streamed.
 */
export class RegistryClient {
  private readonly logger: Logger;
  private readonly transport: HttpTransport;
  private readonly auth: Authenticator;
  private readonly limit: ConcurrencyLimit;
  private readonly userAgent: string;
  /** Verifies large downloads off the main thread, when enabled. */
  private readonly hashWorker: HashWorker | undefined;
  /**
   * Hashes fetchBlob's slots where they lie, when enabled: a thread apart from getBlob's,
   * whose default differs (see the hashThread option).
   */
  private readonly slotHasher: HashWorker | undefined;
  /** Hosts found to speak plain HTTP although https was tried first. */
  private readonly plainHttpHosts = new Set<string>();

  constructor(private readonly options: RegistryClientOptions) {
    this.logger = options.logger ?? silentLogger();
    const concurrency = options.concurrency ?? 8;
    this.transport = new HttpTransport(this.logger, { ...DEFAULT_RETRY_POLICY, ...options.retry }, concurrency);
    this.userAgent = options.userAgent ?? 'kiln';
    this.auth = new Authenticator(this.transport, options.credentials, this.logger, this.userAgent);
    this.limit = new ConcurrencyLimit(concurrency);
    if (options.hashThread ?? availableParallelism() > 2) this.hashWorker = new HashWorker();
    if (options.hashThread ?? true) this.slotHasher = new HashWorker();
  }

  async close(): Promise<void> {
    await Promise.all([this.transport.close(), this.hashWorker?.close(), this.slotHasher?.close()]);
  }

  /** Fetches a manifest or index, trying mirrors first for pulls; bytes are verified when the reference has a digest. */
  async getManifest(ref: Reference): Promise<FetchedManifest> {
    const identifier = ref.digest ?? ref.tag ?? 'latest';
    return this.onEachPullEndpoint(ref, async (endpoint) => {
      const what = `for the manifest of ${formatReference(ref)}`;
      const response = await this.call(endpoint, 'pull', {
        method: 'GET',
        path: `/v2/${endpoint.repository}/manifests/${identifier}`,
        headers: { accept: MANIFEST_ACCEPT.join(', ') },
      }, what);
      if (response.status !== 200) throw await unexpectedStatus(response, endpoint.host, what);
      const raw = await readLimited(response.body, MAX_MANIFEST_BYTES, 'INVALID_MANIFEST', `the manifest of ${formatReference(ref)}`);
      if (ref.digest) verifyBytes(raw, ref.digest, `the manifest of ${formatReference(ref)}`);
      const { mediaType } = parseAnyManifest(raw, headerValue(response.headers, 'content-type'), `the manifest of ${formatReference(ref)}`);
      return { raw, mediaType, digest: ref.digest ?? sha256(raw), endpoint };
    });
  }

  /** Asks whether a manifest exists, without downloading it. `undefined` when it does not. */
  async headManifest(ref: Reference, purpose: Purpose = 'pull'): Promise<ManifestHead | undefined> {
    const identifier = ref.digest ?? ref.tag ?? 'latest';
    const endpoint = purpose === 'push' ? this.pushEndpoint(ref) : undefined;
    const attempt = async (target: Endpoint): Promise<ManifestHead | undefined> => {
      const what = `for the manifest of ${formatReference(ref)}`;
      const response = await this.call(target, purpose, {
        method: 'HEAD',
        path: `/v2/${target.repository}/manifests/${identifier}`,
        headers: { accept: MANIFEST_ACCEPT.join(', ') },
      }, what);
      if (response.status !== 200 && response.status !== 404) throw await unexpectedStatus(response, target.host, what);
      await response.body.dump();
      if (response.status === 404) return undefined;
      const digest = headerValue(response.headers, 'docker-content-digest');
      if (!digest) throw new KilnError('REGISTRY_PROTOCOL', `${target.host} answered a manifest HEAD for ${formatReference(ref)} without a digest.`);
      return {
        digest,
        mediaType: headerValue(response.headers, 'content-type') ?? '',
        size: Number(headerValue(response.headers, 'content-length') ?? 0),
      };
    };
    return endpoint ? attempt(endpoint) : this.onEachPullEndpoint(ref, attempt);
  }

  /** Uploads a manifest by tag or digest (whichever the reference names) and returns its digest. */
  async putManifest(ref: Reference, raw: Buffer, mediaType: string): Promise<Digest> {
    const endpoint = this.pushEndpoint(ref);
    const digest = sha256(raw);
    const identifier = ref.tag && !ref.digest ? ref.tag : digest;
    if (ref.digest && ref.digest !== digest) {
      throw new KilnError('DIGEST_MISMATCH', `cannot push to ${formatReference(ref)}: the manifest's digest is ${digest}.`);
    }
    const what = `when pushing the manifest of ${formatReference(ref)}`;
    const response = await this.call(endpoint, 'push', {
      method: 'PUT',
      path: `/v2/${endpoint.repository}/manifests/${identifier}`,
      headers: { 'content-type': mediaType },
      body: raw,
    }, what);
    if (response.status !== 201 && response.status !== 200) throw await unexpectedStatus(response, endpoint.host, what);
    await response.body.dump();
    const returned = headerValue(response.headers, 'docker-content-digest');
    if (returned && returned !== digest) {
      throw new KilnError('REGISTRY_PROTOCOL', `${endpoint.host} stored the manifest of ${formatReference(ref)} as ${returned}, not ${digest}.`);
    }
    return digest;
  }

  /**
   * Streams a blob. The stream fails at its end unless size and digest match, so a consumer
   * must wait for the end before trusting what it wrote.
   */
  async getBlob(ref: Reference, blob: { digest: Digest; size?: number }): Promise<Readable> {
    parseDigest(blob.digest);
    const { response, label } = await this.openBlob(ref, blob);
    const verifier = new VerifyingStream(blob.digest, blob.size, label, { hashWorker: this.hashWorker });
    pipeline(response.body, verifier, () => undefined);
    return verifier;
  }

  /**
   * Downloads a blob into `sink`, for a consumer that is done with each chunk when the
   * promise it returns settles (a file write, say). The chunks are lent, not given: their
   * memory is read into again after that, so a large blob allocates nothing as it streams
   * and the garbage collector has nothing to do, which makes this the faster way to a file.
   * A large blob is hashed in place on the hashing thread while the sink writes the same
   * chunk (see the hashThread option and hash-worker.ts); a small one, or any without that
   * thread, is hashed on this thread as its bytes arrive. Resolves once the sink has had
   * every byte and size and digest match; rejects with SIZE_MISMATCH, DIGEST_MISMATCH or the
   * network's error otherwise, so, as with `getBlob`, nothing the sink wrote is to be trusted
   * before that. Aborting `options.signal` closes the connection; the promise then rejects
   * with the signal's reason once no write is in flight.
   */
  async fetchBlob(ref: Reference, blob: { digest: Digest; size?: number }, sink: BlobSink, options: BlobTransferOptions = {}): Promise<void> {
    const { algorithm } = parseDigest(blob.digest);
    const { signal } = options;
    signal?.throwIfAborted();
    // Started before the request, so that the hashing thread boots while the registry answers.
    const offThread = this.slotHasher && (blob.size === undefined || blob.size >= SLOT_HASH_MIN_BYTES) ? this.slotHasher.start(algorithm) : undefined;
    try {
      const { response, label } = await this.openBlob(ref, blob);
      const abort = (): void => {
        response.body.destroy();
      };
      if (signal?.aborted) abort();
      signal?.addEventListener('abort', abort, { once: true });
      try {
        const verifier = new DigestVerifier(blob.digest, blob.size, label, { hashedElsewhere: offThread !== undefined });
        await receiveBody(response.body, verifier, offThread ? hashingSink(sink, offThread) : sink, offThread !== undefined);
        verifier.finish(offThread ? await offThread.digest() : undefined);
      } catch (err) {
        signal?.throwIfAborted();
        throw err;
      } finally {
        signal?.removeEventListener('abort', abort);
      }
    } finally {
      offThread?.abort();
    }
  }

  /** Sends the GET of a blob, through mirrors; returns the successful response and how errors name the blob. */
  private async openBlob(ref: Reference, blob: { digest: Digest; size?: number }): Promise<{ response: HttpResponse; label: string }> {
    return this.onEachPullEndpoint(ref, async (endpoint) => {
      const what = `for blob ${blob.digest} of ${endpoint.host}/${endpoint.repository}`;
      const bulk = blob.size === undefined || blob.size >= BULK_BLOB_BYTES;
      const response = await this.call(endpoint, 'pull', { method: 'GET', path: `/v2/${endpoint.repository}/blobs/${blob.digest}`, bulk }, what);
      if (response.status !== 200) throw await unexpectedStatus(response, endpoint.host, what);
      return { response, label: `blob ${blob.digest} from ${endpoint.host}/${endpoint.repository}` };
    });
  }

  /** The size of a blob if the repository has it. */
  async headBlob(ref: Reference, digest: Digest, purpose: Purpose = 'push'): Promise<number | undefined> {
    const endpoint = purpose === 'push' ? this.pushEndpoint(ref) : this.pullEndpoints(ref).at(-1)!;
    const what = `for blob ${digest} of ${endpoint.host}/${endpoint.repository}`;
    const response = await this.call(endpoint, purpose, { method: 'HEAD', path: `/v2/${endpoint.repository}/blobs/${digest}` }, what);
    if (response.status !== 200 && response.status !== 404) throw await unexpectedStatus(response, endpoint.host, what);
    await response.body.dump();
    if (response.status === 404) return undefined;
    return Number(headerValue(response.headers, 'content-length') ?? 0);
  }

  /**
   * Puts a blob into a repository: nothing when it is already there, a cross-repository
   * mount when `mountFrom` has it, an upload otherwise.
   */
  async uploadBlob(ref: Reference, blob: BlobUpload, options: UploadOptions = {}): Promise<UploadResult> {
    const endpoint = this.pushEndpoint(ref);
    if ((await this.headBlob(ref, blob.digest)) !== undefined) return { kind: 'exists' };
    const what = `when uploading blob ${blob.digest} to ${endpoint.host}/${endpoint.repository}`;
    const scopes = options.mountFrom ? [pullScope(options.mountFrom)] : [];
    const query = options.mountFrom ? `?mount=${encodeURIComponent(blob.digest)}&from=${encodeURIComponent(options.mountFrom)}` : '';
    const started = await this.call(endpoint, 'push', { method: 'POST', path: `/v2/${endpoint.repository}/blobs/uploads/${query}` }, what, scopes);
    if (started.status !== 202 && !(started.status === 201 && options.mountFrom)) throw await unexpectedStatus(started, endpoint.host, what);
    await started.body.dump();
    if (started.status === 201 && options.mountFrom) return { kind: 'mounted', from: options.mountFrom };
    const location = uploadLocation(started, endpoint, what);
    if (options.chunkSize) return this.uploadChunks(endpoint, location, blob, options.chunkSize, what);

    const response = await this.call(endpoint, 'push', {
      method: 'PUT',
      url: withDigest(location, blob.digest),
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
      body: blob.open,
    }, what);
    if (response.status !== 201) throw await unexpectedStatus(response, endpoint.host, what);
    await response.body.dump();
    return { kind: 'uploaded', bytes: blob.size };
  }

  private async uploadChunks(endpoint: Endpoint, firstLocation: string, blob: BlobUpload, chunkSize: number, what: string): Promise<UploadResult> {
    let location = firstLocation;
    let offset = 0;
    const source = await blob.open();
    // Each chunk is held in memory once (bounded by chunkSize) so that a retry can resend it.
    for await (const chunk of readChunks(source, chunkSize)) {
      const response = await this.call(endpoint, 'push', {
        method: 'PATCH',
        url: location,
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': String(chunk.length),
          'content-range': `${offset}-${offset + chunk.length - 1}`,
        },
        body: chunk,
      }, what);
      if (response.status !== 202) throw await unexpectedStatus(response, endpoint.host, what);
      await response.body.dump();
      location = uploadLocation(response, endpoint, what);
      offset += chunk.length;
    }
    const response = await this.call(endpoint, 'push', { method: 'PUT', url: withDigest(location, blob.digest), headers: { 'content-length': '0' } }, what);
    if (response.status !== 201) throw await unexpectedStatus(response, endpoint.host, what);
    await response.body.dump();
    return { kind: 'uploaded', bytes: offset };
  }

  pullEndpoints(ref: Reference): Endpoint[] {
    return resolveEndpoints(ref, 'pull', this.options.registry);
  }

  pushEndpoint(ref: Reference): Endpoint {
    const endpoints = resolveEndpoints(ref, 'push', this.options.registry);
    return endpoints[endpoints.length - 1]!;
  }

  /** Tries each pull endpoint in order; a mirror's failure falls through to the next one. */
  private async onEachPullEndpoint<T>(ref: Reference, fn: (endpoint: Endpoint) => Promise<T>): Promise<T> {
    const endpoints = this.pullEndpoints(ref);
    let lastError: unknown;
    for (const [index, endpoint] of endpoints.entries()) {
      try {
        return await fn(endpoint);
      } catch (err) {
        lastError = err;
        const isLast = index === endpoints.length - 1;
        if (isLast || isKilnError(err, 'DIGEST_MISMATCH')) throw err;
        this.logger.info({ mirror: endpoint.host, reason: isKilnError(err) ? err.message : String(err) }, `mirror ${endpoint.host} failed for ${formatReference(ref)}; trying the next source`);
      }
    }
    throw lastError;
  }

  /**
   * One registry request with authentication, redirects and the concurrency limit.
   * Returns any status: callers decide what is an error for them.
   */
  private async call(
    endpoint: Endpoint,
    purpose: Purpose,
    req: { method: HttpRequest['method']; path?: string; url?: string; headers?: Record<string, string>; body?: HttpRequest['body']; bulk?: boolean },
    what: string,
    extraScopes: readonly string[] = [],
  ): Promise<HttpResponse> {
    const scopes = [purpose === 'push' ? pushScope(endpoint.repository) : pullScope(endpoint.repository), ...extraScopes];
    return this.limit.run(async () => {
      for (let attempt = 0; ; attempt++) {
        const target = this.authTarget(endpoint);
        const url = req.url ? new URL(req.url, target.origin).toString() : target.origin + req.path;
        const authorization = await this.auth.authorization(target, scopes);
        const headers: Record<string, string> = { 'user-agent': this.userAgent, ...req.headers };
        if (authorization) headers.authorization = authorization;
        const response = await this.sendWithHttpFallback(endpoint, { method: req.method, url, headers, body: req.body, bulk: req.bulk });
        if (response.status === 401) {
          await response.body.dump();
          const outcome = await this.auth.onUnauthorized(target, scopes, response.headers, attempt, what, authorization !== undefined);
          if (outcome.action === 'fail') throw outcome.error;
          continue;
        }
        return this.followRedirects(response, endpoint, headers, req.method, req.bulk);
      }
    });
  }

  private async sendWithHttpFallback(endpoint: Endpoint, req: HttpRequest): Promise<HttpResponse> {
    try {
      return await this.transport.send(req, endpoint.tls);
    } catch (err) {
      const url = new URL(req.url);
      if (!(endpoint.allowHttpFallback && url.protocol === 'https:' && isKilnError(err) && (err.code === 'REGISTRY_TLS' || err.code === 'REGISTRY_UNREACHABLE'))) throw err;
      // A server that presented a certificate speaks TLS: plain HTTP would only hide the real problem.
      if (isUntrustedCertificate(err)) throw err;
      // Insecure registries may speak plain HTTP only: like docker and kaniko, try that next.
      this.logger.debug({ registry: endpoint.host }, 'falling back to plain HTTP');
      this.plainHttpHosts.add(endpoint.host);
      url.protocol = 'http:';
      return this.transport.send({ ...req, url: url.toString() }, endpoint.tls);
    }
  }

  /** Blob downloads may redirect to storage elsewhere; credentials never follow to another origin. */
  private async followRedirects(response: HttpResponse, endpoint: Endpoint, headers: Record<string, string>, method: HttpRequest['method'], bulk?: boolean): Promise<HttpResponse> {
    let current = response;
    for (let hops = 0; hops < MAX_REDIRECTS && [301, 302, 303, 307, 308].includes(current.status); hops++) {
      const location = headerValue(current.headers, 'location');
      if (!location || (method !== 'GET' && method !== 'HEAD')) return current;
      await current.body.dump();
      const next = new URL(location, current.url);
      const sameOrigin = next.origin === new URL(current.url).origin;
      const nextHeaders = { ...headers };
      if (!sameOrigin) delete nextHeaders.authorization;
      this.logger.debug({ to: redactUrl(next.toString()) }, 'following a redirect');
      current = await this.transport.send({ method, url: next.toString(), headers: nextHeaders, bulk }, endpoint.tls);
    }
    return current;
  }

  private authTarget(endpoint: Endpoint): AuthTarget {
    const scheme = this.plainHttpHosts.has(endpoint.host) ? 'http' : endpoint.scheme;
    return { origin: `${scheme}://${endpoint.host}`, host: endpoint.host, tls: endpoint.tls };
  }
}

/** Hands a response body to `sink`, counted (and hashed, unless elsewhere) by `verifier`. */
async function receiveBody(body: HttpResponse['body'], verifier: DigestVerifier, sink: BlobSink, sharedSlots: boolean): Promise<void> {
  const lent = lendBody(body, { inspect: (chunk) => verifier.update(chunk), sink, sharedSlots });
  if (lent) return lent;
  // A small blob came through undici: its chunks are fresh memory anyway.
  for await (const chunk of body as AsyncIterable<Buffer>) {
    const position = verifier.size;
    verifier.update(chunk);
    await sink.write(chunk, position);
  }
}

/**
 * `sink`, with each chunk also hashed on the hashing thread: a chunk is done once both are,
 * so its slot is read into again only after the hash has read it. Chunks reach the thread in
 * the order of their positions, because the body hands them to the sink in that order.
 */
function hashingSink(sink: BlobSink, hash: OffThreadHash): BlobSink {
  return {
    ...(sink.concurrency !== undefined ? { concurrency: sink.concurrency } : {}),
    write(chunk, position) {
      const hashed = hash.updateInPlace(chunk);
      let written: void | Promise<void>;
      try {
        written = sink.write(chunk, position);
      } catch (err) {
        written = Promise.reject(err);
      }
      // Both settle before the chunk counts as returned: a failed hash must not let the body
      // report its end (and the caller close the file) while the write is still going on.
      return Promise.allSettled([hashed, written]).then(([hashing, writing]) => {
        if (writing.status === 'rejected') throw writing.reason;
        if (hashing.status === 'rejected') throw hashing.reason;
      });
    },
  };
}

function uploadLocation(response: HttpResponse, endpoint: Endpoint, what: string): string {
  const location = headerValue(response.headers, 'location');
  if (!location) throw new KilnError('REGISTRY_PROTOCOL', `${endpoint.host} gave no upload location ${what}.`);
  return new URL(location, response.url).toString();
}

function withDigest(location: string, digest: Digest): string {
  const url = new URL(location);
  url.searchParams.set('digest', digest);
  return url.toString();
}

/** Regroups a stream into chunks of exactly `size` bytes (the last one shorter). */
async function* readChunks(source: Readable, size: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const data of source) {
    let chunk = data as Buffer;
    while (pendingBytes + chunk.length >= size) {
      const take = size - pendingBytes;
      pending.push(chunk.subarray(0, take));
      yield Buffer.concat(pending);
      pending = [];
      pendingBytes = 0;
      chunk = chunk.subarray(take);
    }
    if (chunk.length > 0) {
      pending.push(chunk);
      pendingBytes += chunk.length;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending);
}

