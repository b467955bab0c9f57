import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { KilnError } from '../util/errors.js';
import type { HashWorker, OffThreadHash } from '../util/hash-worker.js';

/** A content digest, `algorithm:hex` (OCI image spec, "Digests"). */
export type Digest = string;

const DIGEST_PATTERN = /^(sha256|sha512):([a-f0-9]+)$/;
const HEX_LENGTH: Record<string, number> = { sha256: 64, sha512: 128 };

export interface ParsedDigest {
  algorithm: 'sha256' | 'sha512';
  hex: string;
}

export function parseDigest(digest: string): ParsedDigest {
  const match = DIGEST_PATTERN.exec(digest);
  if (!match || match[2]!.length !== HEX_LENGTH[match[1]!]) {
    throw new KilnError('INVALID_DIGEST', `"${digest}" is not a valid digest: expected sha256: followed by 64 lowercase hex digits.`);
  }
  return { algorithm: match[1] as ParsedDigest['algorithm'], hex: match[2]! };
}

export function isDigest(value: string): boolean {
  const match = DIGEST_PATTERN.exec(value);
  return match !== null && match[2]!.length === HEX_LENGTH[match[1]!];
}

export function sha256(data: Buffer | string): Digest {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

/** A pass-through stream that hashes and counts what flows through it. */
export class DigestingStream extends Transform {
  private readonly hash: Hash;
  private readonly algorithm: string;
  private bytes = 0;
  private result: Digest | undefined;

  constructor(algorithm: 'sha256' | 'sha512' = 'sha256') {
    super();
    this.algorithm = algorithm;
    this.hash = createHash(algorithm);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.result = `${this.algorithm}:${this.hash.digest('hex')}`;
    callback();
  }

  get size(): number {
    return this.bytes;
  }

  /** Available once the stream has finished. */
  get digest(): Digest {
    if (this.result === undefined) throw new KilnError('INTERNAL', 'digest read before the stream finished');
    return this.result;
  }
}

/** Where VerifyingStream may move its hashing; see src/util/hash-worker.ts. */
export interface VerifyingOptions {
  hashWorker?: HashWorker | undefined;
}

/** Below this size a blob is hashed on the calling thread: handing it over would cost more. */
const OFF_THREAD_MIN_BYTES = 4 << 20;

/**
 * A pass-through stream that fails at its end when the bytes do not match the expected
 * digest and size, so a consumer that waits for the end never trusts unverified content.
 * `what` names the content in the error ("blob sha256:… from registry.example/app").
 * With a `hashWorker`, large content is hashed on that thread while this one moves bytes.
 */
export class VerifyingStream extends Transform {
  private readonly verifier: DigestVerifier;
  private readonly offThread: OffThreadHash | undefined;

  constructor(expectedDigest: Digest, expectedSize: number | undefined, what: string, options: VerifyingOptions = {}) {
    super();
    const large = expectedSize === undefined || expectedSize >= OFF_THREAD_MIN_BYTES;
    if (options.hashWorker && large) this.offThread = options.hashWorker.start(parseDigest(expectedDigest).algorithm);
    this.verifier = new DigestVerifier(expectedDigest, expectedSize, what, { hashedElsewhere: this.offThread !== undefined });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.verifier.update(chunk);
    } catch (err) {
      callback(err as Error);
      return;
    }
    if (!this.offThread) return callback(null, chunk);
    // The chunk goes on once the worker has its copy, so nothing downstream can alter it first.
    const copying = this.offThread.update(chunk);
    if (!copying) return callback(null, chunk);
    copying.then(() => callback(null, chunk), callback);
  }

  override _flush(callback: TransformCallback): void {
    const finish = (hex?: string): void => {
      try {
        this.verifier.finish(hex);
      } catch (err) {
        callback(err as Error);
        return;
      }
      callback();
    };
    if (!this.offThread) return finish();
    this.offThread.digest().then(finish, callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.offThread?.abort();
    callback(error);
  }
}

/**
 * The checks behind VerifyingStream, for content that is not a stream too: `update()` with the bytes in
 * order (it throws SIZE_MISMATCH as soon as there are too many), then `finish()`, which
 * throws SIZE_MISMATCH or DIGEST_MISMATCH unless both match. With `hashedElsewhere`, the
 * bytes are only counted here and `finish()` takes the hex digest computed elsewhere.
 */
export class DigestVerifier {
  private readonly algorithm: ParsedDigest['algorithm'];
  private readonly hash: Hash | undefined;
  private bytes = 0;

  constructor(
    private readonly expectedDigest: Digest,
    private readonly expectedSize: number | undefined,
    private readonly what: string,
    options: { hashedElsewhere?: boolean } = {},
  ) {
    this.algorithm = parseDigest(expectedDigest).algorithm;
    if (!options.hashedElsewhere) this.hash = createHash(this.algorithm);
  }

  update(chunk: Uint8Array): void {
    this.bytes += chunk.length;
    if (this.expectedSize !== undefined && this.bytes > this.expectedSize) {
      throw new KilnError('SIZE_MISMATCH', `${this.what} is larger than the ${this.expectedSize} bytes its descriptor declares; refusing it.`);
    }
    this.hash?.update(chunk);
  }

  get size(): number {
    return this.bytes;
  }

  /** `hex`: the digest of the bytes, when they were hashed elsewhere. */
  finish(hex?: string): void {
    if (this.expectedSize !== undefined && this.bytes !== this.expectedSize) {
      throw new KilnError('SIZE_MISMATCH', `${this.what} has ${this.bytes} bytes but its descriptor declares ${this.expectedSize}; refusing it.`);
    }
    const computed = this.hash ? this.hash.digest('hex') : hex;
    if (computed === undefined) throw new KilnError('INTERNAL', `${this.what} was checked without its digest`);
    const actual = `${this.algorithm}:${computed}`;
    if (actual !== this.expectedDigest) {
      throw new KilnError('DIGEST_MISMATCH', `${this.what} does not match its digest (got ${actual}); refusing it.`);
    }
  }
}

/** Checks bytes already in memory (manifests, configs) against a digest. */
export function verifyBytes(data: Buffer, expected: Digest, what: string): void {
  const { algorithm } = parseDigest(expected);
  const actual = `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
  if (actual !== expected) {
    throw new KilnError('DIGEST_MISMATCH', `${what} does not match its digest ${expected} (got ${actual}); refusing it.`);
  }
}
