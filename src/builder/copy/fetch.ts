// ADD <url>: the download, made before anything is written to the image, so that a failed
// request or a wrong --checksum leaves the root filesystem as it was.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EnvHttpProxyAgent, interceptors, request } from 'undici';
import { describeError } from '../../util/errors.js';
import { copyError, quote } from './errors.js';
import type { Fetch, FetchResponse } from './types.js';

const MAX_REDIRECTIONS = 10;
const CHECKSUM = /^(sha256|sha384|sha512):([a-f0-9]+)$/;
const HEX_LENGTH: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

export function isUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

/** The file name Docker gives a download: the last element of the URL path, else `__unnamed__`. */
export function urlFileName(url: string): string {
  const path = new URL(url).pathname;
  let base = posix.basename(path);
  try {
    base = decodeURIComponent(base);
  } catch {
    // Kept as written when it is not valid percent-encoding.
  }
  return base === '' || base === '.' || base === '..' || base.includes('/') ? '__unnamed__' : base;
}

/** The default fetch: undici, HTTP(S)_PROXY and NO_PROXY honoured, redirects followed. */
export const defaultFetch: Fetch = async (url) => {
  const agent = new EnvHttpProxyAgent();
  const dispatcher = agent.compose(interceptors.redirect({ maxRedirections: MAX_REDIRECTIONS }));
  try {
    const response = await request(url, { method: 'GET', dispatcher, headers: { 'user-agent': 'kiln' } });
    // The agent lives as long as the body is read.
    response.body.once('close', () => void agent.close());
    return { status: response.statusCode, headers: response.headers, body: response.body };
  } catch (err) {
    void agent.close();
    throw err;
  }
};

/** Checks a --checksum value for a URL; returns the algorithm and hex digest. */
export function parseChecksum(where: string, checksum: string): { algorithm: string; hex: string } {
  const match = CHECKSUM.exec(checksum);
  if (match === null || match[2]!.length !== HEX_LENGTH[match[1]!]) {
    throw copyError(where, 'DOCKERFILE', `--checksum=${checksum} cannot verify a download; write sha256:<64 hex digits> (sha384 and sha512 work too).`);
  }
  return { algorithm: match[1]!, hex: match[2]! };
}

export interface Download {
  url: string;
  /** The downloaded content, in a temporary file the caller moves or removes. */
  tempPath: string;
  /** From Last-Modified, when the server sent a valid one. */
  mtime: Date | undefined;
}

/** Downloads `url` to a temporary file, verifying `checksum` when given. */
export async function download(
  url: string,
  options: { where: string; fetch: Fetch; tempDir?: string | undefined; checksum?: { algorithm: string; hex: string } | undefined },
): Promise<Download> {
  const { where } = options;
  let response: FetchResponse;
  try {
    response = await options.fetch(url);
  } catch (err) {
    throw copyError(where, 'ADD_URL', `cannot download ${url} (${describeError(err)}); check the URL and that the network allows it.`, err);
  }
  if (response.status < 200 || response.status > 299) {
    response.body.resume();
    throw copyError(where, 'ADD_URL', `downloading ${url} failed with HTTP status ${response.status}; check the URL (ADD sends no credentials).`);
  }
  const tempPath = join(options.tempDir ?? tmpdir(), `kiln-add-${process.pid}-${randomBytes(6).toString('hex')}`);
  const hash = options.checksum === undefined ? undefined : createHash(options.checksum.algorithm);
  try {
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash?.update(chunk);
        done(null, chunk);
      },
    });
    await pipeline(response.body, tap, createWriteStream(tempPath, { flags: 'wx', mode: 0o600 }));
  } catch (err) {
    rmSync(tempPath, { force: true });
    throw copyError(where, 'ADD_URL', `downloading ${url} failed (${describeError(err)}); check the URL and the network, then build again.`, err);
  }
  if (hash !== undefined && options.checksum !== undefined) {
    const actual = hash.digest('hex');
    if (actual !== options.checksum.hex) {
      rmSync(tempPath, { force: true });
      throw copyError(
        where,
        'DIGEST_MISMATCH',
        `${url} has checksum ${options.checksum.algorithm}:${actual}, not the expected ${quote(`${options.checksum.algorithm}:${options.checksum.hex}`)}; update --checksum if the file changed on purpose.`,
      );
    }
  }
  return { url, tempPath, mtime: lastModified(response.headers['last-modified']) };
}

function lastModified(header: string | string[] | undefined): Date | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined) return undefined;
  const time = Date.parse(value);
  return Number.isNaN(time) ? undefined : new Date(time);
}
