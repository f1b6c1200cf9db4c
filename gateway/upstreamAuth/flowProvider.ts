/**
 * The SDK's `OAuthClientProvider` for one authorization attempt of one upstream: the SDK's
 * `auth()` does discovery (protected-resource metadata from the challenge, then the
 * well-known paths; authorization-server metadata in the spec's order), registration
 * (pre-registered client, then client ID metadata document, then DCR), PKCE, `resource`
 * and scope selection. This provider adds what the SDK leaves to its caller:
 *  - the metadata's `issuer` must be exactly the authorization server discovery named
 *    (RFC 8414 §3.3; mix-up defence), it must advertise PKCE S256, and its endpoints must
 *    be https (http only on loopback);
 *  - the code is exchanged with the metadata of this same discovery, never a second one a
 *    server could have changed meanwhile;
 *  - the authorization URL is checked (common/net/authorizationUrl.ts) before anyone opens it;
 *  - the answer's `state` is this flow's own (the loopback listener answers only it) and its
 *    `iss` (RFC 9207) must equal the issuer; an `error` answer ends the flow in words.
 */
import { extractWWWAuthenticateParams, type OAuthClientProvider, type OAuthDiscoveryState } from '@modelcontextprotocol/sdk/client/auth.js';
import type {
  AuthorizationServerMetadata,
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from '@modelcontextprotocol/sdk/shared/auth.js';
import { checkAuthorizationUrl } from '../../common/net/authorizationUrl';
import { isLoopbackHost, isSecureOrLoopback } from '../../common/net/loopback';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { tokensFor, type StoredUpstreamCredentials } from './credentialStore';
import { describeError } from '../../common/log/logger';

/** Something in the flow an attacker or a broken server could be behind: the flow stops, nothing is sent on. */
export class UpstreamOAuthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UpstreamOAuthError';
  }
}

export interface PreRegisteredClient {
  clientId: string;
  clientSecret?: string;
}

export interface FlowProviderOptions {
  serverTitle: string;
  /** The MCP endpoint the tokens are for: stored tokens for another URL are not used. */
  serverUrl: string;
  redirectUri: string;
  state: string;
  /** Scopes the org asks for when neither the challenge nor the server names any. */
  scopes?: string[];
  /** The scopes this flow asks for (from the challenge, or a step-up), if known. */
  requestedScope?: string;
  preRegistered?: PreRegisteredClient;
  clientMetadataUrl?: string;
  /** The stored record, read once at the start of the flow and written back through `save`. */
  stored: StoredUpstreamCredentials;
  save: (record: StoredUpstreamCredentials) => Promise<void>;
  /** Called with the checked authorization URL when the user must go there. */
  redirect: (url: URL, metadata: AuthorizationServerMetadata) => Promise<void>;
}

export class FlowProvider implements OAuthClientProvider {
  private verifier: string | undefined;
  private discovered: OAuthDiscoveryState | undefined;

  constructor(private readonly options: FlowProviderOptions) {}

  get redirectUrl(): string {
    return this.options.redirectUri;
  }

  get clientMetadata(): OAuthClientMetadata {
    // SEP-837: a loopback-redirect client registers as `native` (the SDK's type predates the field; it sends it as given).
    const metadata: OAuthClientMetadata & { application_type: 'native' } = {
      application_type: 'native',
      client_name: 'Gatehouse',
      redirect_uris: [this.options.redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      ...(this.options.scopes?.length ? { scope: this.options.scopes.join(' ') } : {}),
    };
    return metadata;
  }

  get clientMetadataUrl(): string | undefined {
    return this.options.clientMetadataUrl;
  }

  /** The authorization server this flow settled on (after discovery). */
  get metadata(): AuthorizationServerMetadata | undefined {
    return this.discovered?.authorizationServerMetadata;
  }

  /** The resource's RFC 9728 metadata, if it publishes any (after discovery). */
  get resourceMetadata(): Record<string, unknown> | undefined {
    return this.discovered?.resourceMetadata;
  }

  state(): string {
    return this.options.state;
  }

  clientInformation(): OAuthClientInformationMixed | undefined {
    const pre = this.options.preRegistered;
    if (pre) return { client_id: pre.clientId, ...(pre.clientSecret ? { client_secret: pre.clientSecret } : {}) };
    const client = this.options.stored.client;
    if (!client || !('redirect_uris' in client)) return client;
    // A registration made for another loopback port (that port was taken) would fail where
    // servers compare redirect URIs exactly, and one registered for fewer scopes than a
    // step-up asks for would be refused them: register again instead.
    if (Array.isArray(client.redirect_uris) && !client.redirect_uris.includes(this.options.redirectUri)) return undefined;
    const registered = typeof client.scope === 'string' ? new Set(client.scope.split(' ')) : undefined;
    if (registered && this.options.requestedScope?.split(' ').some((scope) => scope && !registered.has(scope))) return undefined;
    return client;
  }

  async saveClientInformation(client: OAuthClientInformationMixed): Promise<void> {
    if (this.options.preRegistered) return; // the org's client stays in the policy, never in the store
    this.options.stored.client = client;
    await this.options.save(this.options.stored);
  }

  tokens(): OAuthTokens | undefined {
    return tokensFor(this.options.stored, this.options.serverUrl);
  }

  async saveTokens(tokens: OAuthTokens): Promise<void> {
    const now = Date.now();
    // A refresh (no code verifier in this flow) keeps the time of the sign-in it extends; a new authorization starts a new one.
    const previous = tokensFor(this.options.stored, this.options.serverUrl);
    const signedInAt = this.verifier === undefined && previous ? (previous.signedInAt ?? previous.obtainedAt ?? now) : now;
    this.options.stored.tokens = { ...tokens, obtainedAt: now, signedInAt, resourceUrl: this.options.serverUrl };
    await this.options.save(this.options.stored);
  }

  async invalidateCredentials(scope: 'all' | 'client' | 'tokens' | 'verifier' | 'discovery'): Promise<void> {
    if (scope === 'all' || scope === 'client') delete this.options.stored.client;
    if (scope === 'all' || scope === 'tokens') delete this.options.stored.tokens;
    if (scope === 'verifier') this.verifier = undefined;
    if (scope === 'all' || scope === 'discovery') this.discovered = undefined;
    await this.options.save(this.options.stored);
  }

  saveCodeVerifier(verifier: string): void {
    this.verifier = verifier;
  }

  codeVerifier(): string {
    if (!this.verifier) throw new UpstreamOAuthError('no authorization is in progress for this flow');
    return this.verifier;
  }

  /** Every discovery result passes the checks below before the SDK uses it. */
  saveDiscoveryState(state: OAuthDiscoveryState): void {
    const metadata = state.authorizationServerMetadata;
    if (!metadata)
      throw new UpstreamOAuthError(
        `${this.options.serverTitle}: its authorization server ${originOf(state.authorizationServerUrl)} publishes no metadata; refusing to guess its endpoints`,
      );
    if (!sameIssuer(metadata.issuer, state.authorizationServerUrl)) {
      throw new UpstreamOAuthError(
        `${this.options.serverTitle}: the authorization server's metadata names issuer ${metadata.issuer}, not ${state.authorizationServerUrl} (possible mix-up); refusing`,
      );
    }
    if (!metadata.code_challenge_methods_supported?.includes('S256')) {
      throw new UpstreamOAuthError(`${this.options.serverTitle}: its authorization server does not advertise PKCE S256; refusing`);
    }
    for (const endpoint of [metadata.authorization_endpoint, metadata.token_endpoint, metadata.registration_endpoint]) {
      if (endpoint !== undefined && !isSecureOrLoopback(new URL(endpoint))) {
        throw new UpstreamOAuthError(
          `${this.options.serverTitle}: the authorization server has an endpoint that is not https (${new URL(endpoint).protocol}); refusing`,
        );
      }
    }
    this.discovered = state;
  }

  /** The code is exchanged with what this flow discovered, not a new discovery. */
  discoveryState(): OAuthDiscoveryState | undefined {
    return this.discovered;
  }

  async redirectToAuthorization(url: URL): Promise<void> {
    const metadata = this.metadata;
    if (!metadata) throw new UpstreamOAuthError('authorization without discovered metadata');
    try {
      checkAuthorizationUrl(url, metadata.authorization_endpoint);
    } catch (error) {
      throw new UpstreamOAuthError(`${this.options.serverTitle}: ${describeError(error)}`);
    }
    await this.options.redirect(url, metadata);
  }

  /** The code from the loopback answer, after its `error` and `iss` were checked. */
  codeFrom(answer: URL): string {
    const metadata = this.metadata;
    if (!metadata) throw new UpstreamOAuthError('an answer without a flow');
    const iss = answer.searchParams.get('iss');
    // The SDK's metadata schema keeps unknown members, RFC 9207's among them.
    const issRequired =
      (metadata as { authorization_response_iss_parameter_supported?: unknown }).authorization_response_iss_parameter_supported === true;
    if (iss !== null ? iss !== metadata.issuer : issRequired) {
      throw new UpstreamOAuthError(
        `${this.options.serverTitle}: the authorization answer came from ${iss ?? 'an unnamed issuer'}, not ${metadata.issuer} (possible mix-up); refusing it`,
      );
    }
    const error = answer.searchParams.get('error');
    if (error !== null) {
      const description = answer.searchParams.get('error_description');
      throw new UpstreamOAuthError(
        `${this.options.serverTitle}: sign-in was not completed (${printable(error)}${description ? `: ${printable(description)}` : ''})`,
      );
    }
    const code = answer.searchParams.get('code');
    if (!code) throw new UpstreamOAuthError(`${this.options.serverTitle}: the authorization answer has no code`);
    return code;
  }
}

/**
 * Every OAuth request for an upstream (metadata, registration, token) goes over https; plain
 * http only to this machine, and only when the MCP server itself is on this machine (so a
 * remote server cannot point the gateway at local services). No redirects are followed.
 */
export function restrictedOAuthFetch(serverUrl: URL): FetchLike {
  const loopbackAllowed = isLoopbackHost(serverUrl.hostname);
  return async (url, init) => {
    const target = new URL(String(url instanceof Request ? url.url : url));
    if (target.protocol !== 'https:' && !(loopbackAllowed && isSecureOrLoopback(target))) {
      throw new UpstreamOAuthError(`refusing to send an OAuth request over ${target.protocol} to ${target.host}`);
    }
    return fetch(url, { ...init, redirect: 'error' });
  };
}

/** The auth-params of a Bearer or DPoP challenge (the SDK's parser reads only Bearer; RFC 9449 §7.1 uses the same params). */
export function challengeParams(wwwAuthenticate: string | undefined): ReturnType<typeof extractWWWAuthenticateParams> {
  const header = wwwAuthenticate?.replace(/^\s*dpop\s/i, 'Bearer ');
  return extractWWWAuthenticateParams(new Response(null, { headers: header ? { 'www-authenticate': header } : {} }));
}

/** RFC 8414 asks for identical strings; a trailing slash on a bare origin is the one difference URL parsing adds. */
export function sameIssuer(issuer: string, discoveredFrom: string | URL): boolean {
  const strip = (value: string) => (value.endsWith('/') ? value.slice(0, -1) : value);
  return strip(issuer) === strip(String(discoveredFrom));
}

function originOf(url: string | URL): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'that server';
  }
}

/** What an authorization server wrote, safe to put in a message: printable ASCII, bounded. */
function printable(value: string): string {
  return value.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
}
