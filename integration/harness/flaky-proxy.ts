// A reverse proxy in front of a plain test registry that fails the first N matching requests
// (503, 429 with Retry-After: 0, or a dropped connection) and forwards the rest untouched, so
// kiln's retry logic meets real failures on the wire. Bodies stream both ways; the only
// rewrite is of Location headers that point at the registry, so that clients stay on the proxy.
import { Agent, createServer, request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { LOOPBACK } from './net.js';

export { startBlackHole, unusedPort, type BlackHole } from './net.js';

export type FailureMode = '503' | 'reset' | '429';

export interface FailurePlan {
  failures: number;
  mode: FailureMode;
  /**
   * Which requests may fail (`path` without its query string); all of them when absent.
   * Requests that do not match are always forwarded and do not use up a failure.
   */
  match?: (method: string, path: string) => boolean;
}

export interface ProxiedRequest {
  method: string;
  /** Path and query as the client sent them. */
  path: string;
  outcome: 'failed' | 'forwarded';
}

export interface FlakyProxy {
  host: string;
  url: string;
  requests(): ProxiedRequest[];
  stop(): Promise<void>;
}

// Per-connection headers that a proxy must not pass along (RFC 9110 7.6.1).
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'upgrade']);

export function startFlakyProxy(targetHost: string, plan: FailurePlan): Promise<FlakyProxy> {
  const log: ProxiedRequest[] = [];
  const sockets = new Set<Socket>();
  const upstream = new Agent({ keepAlive: true });
  let failed = 0;
  let proxyHost = '';

  const fail = (req: IncomingMessage, res: ServerResponse): void => {
    if (plan.mode === 'reset') {
      // Drop the connection before any response byte, whether or not the body is in flight.
      req.socket.destroy();
      return;
    }
    req.resume();
    const code = plan.mode === '429' ? 'TOOMANYREQUESTS' : 'UNAVAILABLE';
    const body = JSON.stringify({ errors: [{ code, message: `kiln test proxy: planned ${plan.mode}` }] });
    const headers: Record<string, string | number> = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) };
    if (plan.mode === '429') headers['Retry-After'] = 0;
    res.writeHead(plan.mode === '429' ? 429 : 503, headers);
    res.end(body);
  };

  const forward = (req: IncomingMessage, res: ServerResponse): void => {
    const headers = withoutHopByHop(req.headers);
    headers.host = targetHost;
    const [hostname, port] = splitHost(targetHost);
    const outgoing = request(
      { hostname, port, method: req.method, path: req.url, headers, agent: upstream },
      (answer) => {
        const responseHeaders = withoutHopByHop(answer.headers);
        const location = responseHeaders.location;
        if (typeof location === 'string') responseHeaders.location = rewriteLocation(location, targetHost, proxyHost);
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, responseHeaders);
        answer.pipe(res);
        answer.on('error', () => res.destroy());
      },
    );
    outgoing.on('error', () => {
      if (!res.headersSent) {
        res.writeHead(502, { 'Content-Type': 'text/plain' });
        res.end('kiln test proxy: upstream error');
      } else {
        res.destroy();
      }
    });
    req.pipe(outgoing);
    req.on('error', () => outgoing.destroy());
    // A client that gives up mid-response must not leave the upstream request running.
    res.on('close', () => { if (!res.writableFinished) outgoing.destroy(); });
  };

  const server = createServer((req, res) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const pathOnly = path.split('?')[0]!;
    const matches = plan.match ? plan.match(method, pathOnly) : true;
    if (matches && failed < plan.failures) {
      failed++;
      log.push({ method, path, outcome: 'failed' });
      fail(req, res);
      return;
    }
    log.push({ method, path, outcome: 'forwarded' });
    forward(req, res);
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('clientError', (_error, socket) => socket.destroy());

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      proxyHost = `${LOOPBACK}:${port}`;
      resolve({
        host: proxyHost,
        url: `http://${proxyHost}`,
        requests: () => log.map((entry) => ({ ...entry })),
        stop: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            upstream.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

function withoutHopByHop(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const named = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
  );
  const result: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    result[name] = value;
  }
  return result;
}

/** `http://TARGET/...` becomes `http://PROXY/...`; relative and foreign locations stay as they are. */
export function rewriteLocation(location: string, targetHost: string, proxyHost: string): string {
  const prefix = `http://${targetHost}`;
  if (location === prefix || location.startsWith(`${prefix}/`) || location.startsWith(`${prefix}?`)) {
    return `http://${proxyHost}${location.slice(prefix.length)}`;
  }
  return location;
}

function splitHost(host: string): [string, number] {
  const colon = host.lastIndexOf(':');
  return [host.slice(0, colon), Number(host.slice(colon + 1))];
}
