import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { Readable } from 'node:stream';
import { BodyOutlet, type LendHandlers, type LentSink } from './body-outlet.js';
import type { HttpResponse } from './transport.js';

/**
 * A lean HTTP/1.1 GET for large bodies (layer blobs). Node's sockets, and undici on top of
 * them, read 64 KiB at a time into a fresh buffer each: a 1 GiB layer then costs some 16,000
 * reads, allocations and stream hops, which on a small machine is slower than the network.
 * Here the socket reads straight into large slabs (net's `onread` option) and the body bytes
 * of each read go on as a view of its slab (body-outlet.ts): no copy, no allocation per read.
 * A caller that can work with lent memory may `lendBody()` instead of reading the stream:
 * then the slabs are reused and the body goes on in slab-sized chunks.
 *
 * One connection per request, closed at the end: a blob is big enough that a new connection
 * costs nothing in comparison, and it keeps the framing code small.
 */

/** The body stream buffers up to this much before the socket stops reading. */
const BODY_HIGH_WATER_MARK = 4 << 20;
const MAX_HEAD_BYTES = 64 << 10;
/** Error bodies are read for their message only. */
const MAX_TEXT_BYTES = 64 << 10;
/** Where a body made here keeps its outlet, for `lendBody()`. */
const OUTLET = Symbol('kiln.bodyOutlet');

export interface BulkGetRequest {
  url: string;
  headers: Record<string, string>;
  /** tls.connect options for https (ca, cert, key, rejectUnauthorized). */
  tls: Record<string, unknown>;
  /** Idle time, while waiting for bytes, after which the request fails. */
  timeoutMs: number;
}

type Body = HttpResponse['body'];

export type { LendHandlers, LentSink };

class HttpError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
  }
}

/** Sends a GET and resolves with the status and headers; the body streams after that. */
export function bulkGet(request: BulkGetRequest): Promise<HttpResponse> {
  const url = new URL(request.url);
  const secure = url.protocol === 'https:';
  const port = Number(url.port || (secure ? 443 : 80));
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  let head: string;
  try {
    head = requestHead(url, request.headers);
  } catch (err) {
    return Promise.reject(err);
  }

  return new Promise<HttpResponse>((resolve, reject) => {
    const outlet = new BodyOutlet(request.timeoutMs);
    let parser: ResponseParser | undefined;
    const onread = {
      buffer: (): Buffer => outlet.readBuffer(),
      callback: (length: number): boolean => {
        parser!.onData(outlet.received(length));
        return outlet.afterRead();
      },
    };
    const options = { host, port, onread, noDelay: true };
    const socket: Socket = secure
      ? tlsConnect({ ...request.tls, ...options, servername: isIP(host) ? undefined : host, ALPNProtocols: ['http/1.1'] } as ConnectionOptions)
      : netConnect(options);
    outlet.bind(socket);
    parser = new ResponseParser(socket, outlet, request, resolve, reject);
    socket.on('timeout', () => {
      // A body paused because its reader is slow is not a stalled registry.
      if (!outlet.paused) socket.destroy(new HttpError(`no data from ${url.host} for ${request.timeoutMs} ms`, 'ETIMEDOUT'));
    });
    socket.setTimeout(request.timeoutMs);
    socket.on('error', (err) => parser!.fail(err));
    socket.on('end', () => parser!.onEnd());
    socket.on('close', () => parser!.onEnd());
    socket.write(head);
  });
}

/**
 * Takes over a body from `bulkGet` that nobody has read yet: its bytes go to `handlers`
 * (see body-outlet.ts) in lent memory. Resolves once the body is complete and the sink has
 * returned the last chunk; rejects with the network's, the inspector's or the sink's error.
 * Returns undefined for any other body (a small one fetched through undici).
 */
export function lendBody(body: Readable, handlers: LendHandlers): Promise<void> | undefined {
  const outlet = (body as Readable & { [OUTLET]?: BodyOutlet })[OUTLET];
  return outlet?.lend(handlers);
}

function requestHead(url: URL, headers: Record<string, string>): string {
  const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `host: ${url.host}`];
  for (const [name, value] of Object.entries(headers)) {
    if (/[\r\n]/.test(name + value)) throw new HttpError(`header ${name} contains a line break`, 'ERR_INVALID_HEADER');
    const lower = name.toLowerCase();
    if (lower !== 'host' && lower !== 'connection') lines.push(`${name}: ${value}`);
  }
  lines.push('connection: close', '', '');
  return lines.join('\r\n');
}

type Framing =
  | { kind: 'length'; remaining: number }
  | { kind: 'chunked'; remaining: number; state: 'size' | 'data' | 'data-end' | 'trailer'; line: string }
  | { kind: 'close' };

/** Reads the status line and headers, then frames the body (Content-Length, chunked or close). */
class ResponseParser {
  private head: Buffer[] = [];
  private headBytes = 0;
  private body: Body | undefined;
  private framing: Framing | undefined;
  private done = false;

  constructor(
    private readonly socket: Socket,
    private readonly outlet: BodyOutlet,
    private readonly request: BulkGetRequest,
    private readonly resolve: (response: HttpResponse) => void,
    private readonly reject: (err: Error) => void,
  ) {}

  onData(data: Buffer): void {
    if (this.done) return;
    if (!this.body) {
      const rest = this.readHead(data);
      if (rest === undefined || this.done) return;
      data = rest;
    }
    this.onBody(data);
  }

  onEnd(): void {
    if (this.done) return;
    if (this.framing?.kind === 'close') return this.finish();
    this.fail(new HttpError('the registry closed the connection before the response was complete', 'UND_ERR_SOCKET'));
  }

  fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.socket.destroy();
    if (this.body) this.outlet.fail(err);
    else this.reject(err);
  }

  private finish(): void {
    this.done = true;
    this.outlet.end();
    this.socket.destroy();
  }

  /** Returns the bytes after the head once it is complete, undefined while it is not. */
  private readHead(data: Buffer): Buffer | undefined {
    // Usually the whole head comes in one read; then the body starts in the slab itself.
    const all = this.head.length === 0 ? data : Buffer.concat([...this.head, data]);
    const end = all.indexOf('\r\n\r\n');
    if (end === -1) {
      this.head.push(Buffer.from(data));
      this.headBytes += data.length;
      if (this.headBytes > MAX_HEAD_BYTES) this.fail(new HttpError('the response head is too large', 'UND_ERR_HEADERS_OVERFLOW'));
      return undefined;
    }
    const lines = all.subarray(0, end).toString('latin1').split('\r\n');
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]!);
    if (!status) {
      this.fail(new HttpError(`not an HTTP/1.1 response: ${JSON.stringify(lines[0]!.slice(0, 40))}`, 'HPE_INVALID_CONSTANT'));
      return undefined;
    }
    const code = Number(status[1]);
    const rest = all.subarray(end + 4);
    this.head = [];
    this.headBytes = 0;
    // Interim answers (100 Continue, 103 Early Hints) come before the real one.
    if (code >= 100 && code < 200) return rest.length > 0 ? this.readHead(rest) : undefined;

    const headers = parseHeaders(lines.slice(1));
    const framing = this.framingOf(code, headers);
    if (!framing) return undefined;
    this.framing = framing;
    this.body = makeBody(this.socket, this.outlet);
    this.resolve({ status: code, headers, body: this.body, url: this.request.url });
    if (framing.kind === 'length' && framing.remaining === 0) this.finish();
    return rest;
  }

  private framingOf(status: number, headers: HttpResponse['headers']): Framing | undefined {
    const encoding = String(headers['transfer-encoding'] ?? '').toLowerCase();
    if (status === 204 || status === 304) return { kind: 'length', remaining: 0 };
    if (encoding.includes('chunked')) return { kind: 'chunked', remaining: 0, state: 'size', line: '' };
    const length = headers['content-length'];
    if (length === undefined) return { kind: 'close' };
    const value = Number(Array.isArray(length) ? length[0] : length);
    if (!Number.isSafeInteger(value) || value < 0) {
      this.fail(new HttpError(`invalid Content-Length ${JSON.stringify(length)}`, 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH'));
      return undefined;
    }
    return { kind: 'length', remaining: value };
  }

  private onBody(data: Buffer): void {
    const framing = this.framing!;
    if (framing.kind === 'close') return this.deliver(data);
    if (framing.kind === 'length') {
      // Bytes past Content-Length belong to no response; the connection closes anyway.
      if (data.length > framing.remaining) data = data.subarray(0, framing.remaining);
      framing.remaining -= data.length;
      this.deliver(data);
      if (framing.remaining === 0) this.finish();
      return;
    }
    this.onChunked(framing, data);
  }

  private onChunked(framing: Extract<Framing, { kind: 'chunked' }>, data: Buffer): void {
    let at = 0;
    while (at < data.length && !this.done) {
      if (framing.state === 'data') {
        const take = Math.min(framing.remaining, data.length - at);
        this.deliver(data.subarray(at, at + take));
        framing.remaining -= take;
        at += take;
        if (framing.remaining === 0) framing.state = 'data-end';
        continue;
      }
      const newline = data.indexOf(0x0a, at);
      const piece = data.subarray(at, newline === -1 ? data.length : newline + 1).toString('latin1');
      at = newline === -1 ? data.length : newline + 1;
      framing.line += piece;
      if (framing.line.length > 4096) {
        this.fail(new HttpError('a chunk header of the response is too long', 'HPE_INVALID_CHUNK_SIZE'));
        return;
      }
      if (newline === -1) continue;
      const line = framing.line.replace(/\r?\n$/, '');
      framing.line = '';
      if (framing.state === 'data-end') {
        if (line !== '') this.fail(new HttpError('a chunk of the response does not end with CRLF', 'HPE_INVALID_CHUNK_SIZE'));
        framing.state = 'size';
      } else if (framing.state === 'size') {
        const size = /^([0-9a-fA-F]{1,12})(;.*)?$/.exec(line);
        if (!size) {
          this.fail(new HttpError(`invalid chunk size ${JSON.stringify(line.slice(0, 20))}`, 'HPE_INVALID_CHUNK_SIZE'));
          return;
        }
        framing.remaining = parseInt(size[1]!, 16);
        framing.state = framing.remaining === 0 ? 'trailer' : 'data';
      } else if (line === '') {
        this.finish();
      }
    }
  }

  private deliver(data: Buffer): void {
    this.outlet.deliver(data);
  }
}

function parseHeaders(lines: string[]): HttpResponse['headers'] {
  const headers: HttpResponse['headers'] = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const existing = headers[name];
    if (existing === undefined) headers[name] = value;
    else headers[name] = Array.isArray(existing) ? [...existing, value] : [existing, value];
  }
  return headers;
}

/** The body: a byte stream that resumes the socket when read, with undici's dump() and text(). */
function makeBody(socket: Socket, outlet: BodyOutlet): Body {
  const body = new Readable({
    highWaterMark: BODY_HIGH_WATER_MARK,
    read: () => outlet.resume(),
    destroy: (err, callback) => {
      socket.destroy();
      callback(err);
    },
  }) as Body & { [OUTLET]?: BodyOutlet };
  body[OUTLET] = outlet;
  outlet.attach(body);
  body.dump = async () => {
    body.destroy();
  };
  body.text = async () => {
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of body) {
      chunks.push(chunk as Buffer);
      total += (chunk as Buffer).length;
      if (total >= MAX_TEXT_BYTES) break;
    }
    return Buffer.concat(chunks).toString('utf8');
  };
  return body;
}
