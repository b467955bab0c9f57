// A Docker-Hub-like token endpoint for the `token` registry variant. It authenticates Basic
// credentials, grants the requested repository actions to the known user, gives anonymous
// clients a token with empty access (as Hub does for a private repository), and answers
// bad credentials with 401. It records what it was asked for, never the password.
import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { LOOPBACK } from './net.js';
import { createSigner, type KeyHeader } from './jwt.js';

export interface TokenRequest {
  method: 'GET' | 'POST';
  /** Raw scope strings, e.g. `repository:kiln/busybox:pull,push`. */
  scopes: string[];
  service?: string;
  /** Set when the request authenticated (Basic, password grant or refresh token). */
  user?: string;
  /** Set when the request carried credentials that did not match. */
  rejected?: true;
}

export interface Access {
  type: string;
  name: string;
  actions: string[];
}

export interface TokenServerOptions {
  service: string;
  issuer: string;
  username: string;
  password: string;
  signingKeyPath: string;
  signingCertPath: string;
  keyHeader?: KeyHeader;
  lifetimeSeconds?: number;
}

export interface TokenServer {
  /** The realm URL for distribution's config: `http://127.0.0.1:PORT/token`. */
  realm: string;
  tokenRequests(): TokenRequest[];
  stop(): Promise<void>;
}

/** `repository:NAME:pull,push`; NAME may hold colons (a host:port inside a name). */
export function parseScope(scope: string): Access | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last === first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope.slice(last + 1).split(',').filter(Boolean),
  };
}

export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const signer = createSigner(
    await readFile(options.signingKeyPath, 'utf8'),
    await readFile(options.signingCertPath, 'utf8'),
    options.keyHeader ?? 'x5c',
  );
  const lifetime = options.lifetimeSeconds ?? 300;
  const log: TokenRequest[] = [];
  const refreshTokens = new Map<string, string>();

  const passwordMatches = (user: string, password: string): boolean => {
    const a = Buffer.from(`${user}\0${password}`);
    const b = Buffer.from(`${options.username}\0${options.password}`);
    return a.length === b.length && timingSafeEqual(a, b);
  };

  const issue = (res: ServerResponse, user: string | undefined, scopes: string[], offline: boolean): void => {
    const now = Math.floor(Date.now() / 1000);
    const access: Access[] = [];
    if (user !== undefined) {
      for (const scope of scopes) {
        const parsed = parseScope(scope);
        if (parsed) access.push(parsed);
      }
    }
    const token = signer.sign({
      iss: options.issuer,
      sub: user ?? '',
      aud: options.service,
      exp: now + lifetime,
      nbf: now,
      iat: now,
      jti: randomUUID(),
      access,
    });
    const body: Record<string, unknown> = {
      token,
      access_token: token,
      expires_in: lifetime,
      issued_at: new Date(now * 1000).toISOString(),
    };
    if (offline && user !== undefined) {
      const refresh = randomBytes(24).toString('base64url');
      refreshTokens.set(refresh, user);
      body.refresh_token = refresh;
    }
    sendJson(res, 200, body);
  };

  const deny = (res: ServerResponse): void => {
    res.setHeader('WWW-Authenticate', 'Basic realm="kiln test token server"');
    sendJson(res, 401, { details: 'incorrect username or password' });
  };

  const handleGet = (req: IncomingMessage, res: ServerResponse, url: URL): void => {
    const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    const entry: TokenRequest = { method: 'GET', scopes, ...optional('service', url.searchParams.get('service')) };
    log.push(entry);
    const credentials = basicCredentials(req.headers.authorization);
    if (credentials === undefined) return issue(res, undefined, scopes, false);
    if (!passwordMatches(credentials.user, credentials.password)) {
      entry.rejected = true;
      return deny(res);
    }
    entry.user = credentials.user;
    issue(res, credentials.user, scopes, url.searchParams.get('offline_token') === 'true');
  };

  // The OAuth2 form (docker's client uses it with identity tokens): password or refresh grant.
  const handlePost = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const form = new URLSearchParams(await readBody(req));
    const scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
    const entry: TokenRequest = { method: 'POST', scopes, ...optional('service', form.get('service')) };
    log.push(entry);
    let user: string | undefined;
    if (form.get('grant_type') === 'password') {
      const name = form.get('username') ?? '';
      if (passwordMatches(name, form.get('password') ?? '')) user = name;
    } else if (form.get('grant_type') === 'refresh_token') {
      user = refreshTokens.get(form.get('refresh_token') ?? '');
    }
    if (user === undefined) {
      entry.rejected = true;
      return deny(res);
    }
    entry.user = user;
    issue(res, user, scopes, form.get('access_type') === 'offline');
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://token.invalid');
    if (url.pathname !== '/token') return sendJson(res, 404, { details: 'not found' });
    if (req.method === 'GET') return handleGet(req, res, url);
    if (req.method === 'POST') {
      handlePost(req, res).catch(() => { if (!res.headersSent) sendJson(res, 400, { details: 'bad request' }); });
      return;
    }
    sendJson(res, 405, { details: 'method not allowed' });
  });

  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });

  return {
    realm: `http://${LOOPBACK}:${port}/token`,
    tokenRequests: () => log.map((entry) => ({ ...entry, scopes: [...entry.scopes] })),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function optional<K extends string>(key: K, value: string | null): { [P in K]?: string } {
  return (value === null ? {} : { [key]: value }) as { [P in K]?: string };
}

function basicCredentials(header: string | undefined): { user: string; password: string } | undefined {
  if (!header?.toLowerCase().startsWith('basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}
