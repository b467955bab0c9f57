import { KilnError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { parseChallenges, type Challenge } from './challenge.js';
import type { CredentialStore } from './credentials.js';
import type { HttpTransport, TlsSettings } from './transport.js';

/** The server a request goes to, as the authenticator needs to know it. */
export interface AuthTarget {
  /** `https://host:port` */
  origin: string;
  /** The host credentials are looked up under. */
  host: string;
  tls: TlsSettings;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

interface OriginState {
  /** Learned from the first 401: how this registry wants to be authenticated. */
  challenge?: Challenge;
  tokens: Map<string, CachedToken>;
  /** Token requests under way, so that concurrent requests for one scope share one token. */
  pending: Map<string, Promise<CachedToken>>;
}

/** What the caller should do after a 401. */
export type ChallengeOutcome = { action: 'retry' } | { action: 'fail'; error: KilnError };

/** Tokens are refreshed this long before they expire, so a long upload does not start with a stale one. */
const TOKEN_EXPIRY_MARGIN_MS = 10_000;

/**
 * Registry authentication: Basic or the Bearer-token challenge flow of the distribution
 * spec, with tokens cached per origin and scope. Credentials only ever go into headers.
 */
export class Authenticator {
  private readonly origins = new Map<string, OriginState>();

  constructor(
    private readonly transport: HttpTransport,
    private readonly credentials: CredentialStore,
    private readonly logger: Logger,
    private readonly userAgent: string,
  ) {}

  /** The Authorization header to send, when this origin is known to want one. */
  async authorization(target: AuthTarget, scopes: readonly string[]): Promise<string | undefined> {
    const state = this.state(target);
    const challenge = state.challenge;
    if (!challenge) return undefined;
    if (challenge.scheme === 'basic') {
      const credential = await this.credentials.get(target.host);
      return credential.kind === 'basic' ? basicHeader(credential.username, credential.password) : undefined;
    }
    if (challenge.scheme === 'bearer') {
      const key = scopeKey(scopes);
      const cached = state.tokens.get(key);
      if (cached && cached.expiresAt - TOKEN_EXPIRY_MARGIN_MS > Date.now()) return `Bearer ${cached.token}`;
      let pending = state.pending.get(key);
      if (!pending) {
        pending = this.fetchToken(target, challenge, scopes).finally(() => state.pending.delete(key));
        state.pending.set(key, pending);
      }
      const token = await pending;
      state.tokens.set(key, token);
      return `Bearer ${token.token}`;
    }
    return undefined;
  }

  /**
   * Learns from a 401 on the `attempt`-th try of a request. The first 401 teaches the
   * origin's scheme; a second one with a bearer token drops that token and fetches a new one
   * (it may have expired on the server's side); after that the failure is final.
   * `sentAuthorization` says whether the refused request carried an Authorization header:
   * requests started together before the scheme was known all go out without one, and
   * their 401s say nothing about the credentials or a cached token.
   */
  async onUnauthorized(
    target: AuthTarget,
    scopes: readonly string[],
    headers: Record<string, string | string[] | undefined>,
    attempt: number,
    what: string,
    sentAuthorization = true,
  ): Promise<ChallengeOutcome> {
    const state = this.state(target);
    const challenges = parseChallenges(headers['www-authenticate']);
    const challenge = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
    const credential = await this.credentials.get(target.host);
    if (!challenge) {
      return { action: 'fail', error: new KilnError('REGISTRY_AUTH', `${target.host} answered HTTP 401 ${what} without saying how to authenticate.`) };
    }
    const learned = state.challenge?.scheme === challenge.scheme;
    state.challenge = challenge;
    if (sentAuthorization) state.tokens.delete(scopeKey(scopes));
    if (challenge.scheme === 'basic' && credential.kind !== 'basic') return { action: 'fail', error: missingCredentials(target.host, what) };
    if ((!learned || !sentAuthorization) && attempt === 0) return { action: 'retry' };
    if (challenge.scheme === 'bearer' && attempt < 2) return { action: 'retry' };
    if (credential.kind === 'anonymous') return { action: 'fail', error: missingCredentials(target.host, what) };
    const error = challenge.params.error === 'insufficient_scope'
      ? new KilnError('REGISTRY_DENIED', `the credentials for ${target.host} lack access ${what}; check the account's access to that repository.`)
      : new KilnError('REGISTRY_AUTH', `${target.host} rejected the credentials ${what}; check the entry for ${target.host} in the docker config.json.`);
    return { action: 'fail', error };
  }

  private async fetchToken(target: AuthTarget, challenge: Challenge, scopes: readonly string[]): Promise<CachedToken> {
    const realm = challenge.params.realm;
    if (!realm) throw new KilnError('REGISTRY_AUTH', `${target.host} asked for a bearer token but named no token server (realm).`);
    let realmUrl: URL;
    try {
      realmUrl = new URL(realm);
    } catch {
      throw new KilnError('REGISTRY_AUTH', `${target.host} named an invalid token server address "${realm}".`);
    }
    const credential = await this.credentials.get(target.host);
    const service = challenge.params.service;
    const headers: Record<string, string> = { 'user-agent': this.userAgent, accept: 'application/json' };
    let response;
    if (credential.kind === 'identityToken') {
      // An identity token is an OAuth2 refresh token (docker login with an identity provider).
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: credential.token, client_id: 'kiln' });
      if (service) form.set('service', service);
      if (scopes.length > 0) form.set('scope', scopes.join(' '));
      headers['content-type'] = 'application/x-www-form-urlencoded';
      response = await this.transport.send({ method: 'POST', url: realmUrl.toString(), headers, body: form.toString() }, target.tls);
    } else {
      if (service) realmUrl.searchParams.set('service', service);
      for (const scope of scopes) realmUrl.searchParams.append('scope', scope);
      if (credential.kind === 'basic') headers.authorization = basicHeader(credential.username, credential.password);
      if (credential.kind === 'registryToken') return { token: credential.token, expiresAt: Number.POSITIVE_INFINITY };
      response = await this.transport.send({ method: 'GET', url: realmUrl.toString(), headers }, target.tls);
    }
    if (response.status === 401 || response.status === 403) {
      await response.body.dump();
      throw credential.kind === 'anonymous'
        ? missingCredentials(target.host, `for a token for ${scopes.join(' ')}`)
        : new KilnError('REGISTRY_AUTH', `the token server of ${target.host} rejected the credentials; check the entry for ${target.host} in the docker config.json.`);
    }
    if (response.status !== 200) {
      await response.body.dump();
      throw new KilnError('REGISTRY_AUTH', `the token server of ${target.host} answered HTTP ${response.status} when asked for a token.`);
    }
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      parsed = JSON.parse(await response.body.text()) as typeof parsed;
    } catch {
      throw new KilnError('REGISTRY_AUTH', `the token server of ${target.host} answered something that is not JSON.`);
    }
    const token = typeof parsed.token === 'string' && parsed.token ? parsed.token : parsed.access_token;
    if (typeof token !== 'string' || token === '') {
      throw new KilnError('REGISTRY_AUTH', `the token server of ${target.host} answered without a token.`);
    }
    // The token spec's default lifetime is 60 seconds.
    const lifetime = typeof parsed.expires_in === 'number' && parsed.expires_in > 0 ? parsed.expires_in : 60;
    const issued = typeof parsed.issued_at === 'string' ? Date.parse(parsed.issued_at) : Number.NaN;
    const start = Number.isNaN(issued) || issued > Date.now() ? Date.now() : issued;
    this.logger.debug({ registry: target.host, scopes, expiresIn: lifetime }, 'obtained a registry token');
    return { token, expiresAt: start + lifetime * 1000 };
  }

  private state(target: AuthTarget): OriginState {
    // Keyed by host, not origin: an insecure registry may move from https to http mid-way.
    let state = this.origins.get(target.host);
    if (!state) {
      state = { tokens: new Map(), pending: new Map() };
      this.origins.set(target.host, state);
    }
    return state;
  }
}

export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

export function pushScope(repository: string): string {
  return `repository:${repository}:pull,push`;
}

function scopeKey(scopes: readonly string[]): string {
  return [...scopes].sort().join(' ');
}

function basicHeader(username: string, password: string): string {
  return 'Basic ' + Buffer.from(`${username}:${password}`).toString('base64');
}

/** `what` reads on from the verb: "for the manifest of …", "when uploading blob …". */
function missingCredentials(host: string, what: string): KilnError {
  return new KilnError('REGISTRY_AUTH', `${host} requires credentials ${what}; add an entry for ${host} to the docker config.json ($DOCKER_CONFIG/config.json).`);
}

