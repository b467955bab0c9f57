import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  authorization?: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

export type Handler = (req: RecordedRequest, res: ServerResponse) => void;

/** A tiny HTTP server on 127.0.0.1 that records every request, for exact-sequence assertions. */
export async function startFakeServer(handler: Handler) {
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const recorded: RecordedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
        ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      };
      requests.push(recorded);
      handler(recorded, res);
    });
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    requests,
    /** "METHOD path" lines, the form tests compare against. */
    lines: () => requests.map((r) => `${r.method} ${r.path}`),
    close: () => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}

export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(data.length), ...headers });
  res.end(data);
}

/**
 * A registry that asks for Basic credentials, then redirects every blob GET to a storage
 * server answering `blob` (as registries backed by object storage do). Both stop with the test.
 */
export async function startRedirectingRegistry(t: { after(fn: () => Promise<void>): void }, blob: Buffer) {
  const storage = await startBlobServer(t, blob);
  const registry = await startFakeServer((req, res) => {
    if (!req.authorization) return json(res, 401, {}, { 'www-authenticate': 'Basic realm="r"' });
    res.writeHead(307, { location: `${storage.url}/signed/blob?sig=abc` });
    res.end();
  });
  t.after(() => registry.close());
  return { registry, storage };
}

/** A server answering every request with `blob`; it stops with the test. */
export async function startBlobServer(t: { after(fn: () => Promise<void>): void }, blob: Buffer) {
  const server = await startFakeServer((_req, res) => {
    res.writeHead(200, { 'content-length': String(blob.length) });
    res.end(blob);
  });
  t.after(() => server.close());
  return server;
}

/**
 * A TCP server that hands every connection to `respond` once the request head has arrived,
 * for responses node:http would not send (a truncated body, a reset, no answer at all).
 */
export async function startRawServer(respond: (socket: Socket, request: string) => void): Promise<{ url: string; server: Server; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let head = '';
    socket.on('data', (data) => {
      head += data.toString('latin1');
      if (head.includes('\r\n\r\n')) respond(socket, head);
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: () => new Promise((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}

/** A server answering every request with `parts`, one write each, without a length: a chunked body. It stops with the test. */
export async function startChunkedServer(t: { after(fn: () => Promise<void>): void }, parts: readonly Buffer[]) {
  const server = await startFakeServer((_req, res) => {
    res.writeHead(200);
    for (const part of parts) res.write(part);
    res.end();
  });
  t.after(() => server.close());
  return server;
}
