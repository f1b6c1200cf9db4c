/**
 * Signs a person in at the org's OIDC IdP for the MCP authorization server (the policy
 * server is a client of the IdP, like any app in the org's SSO): authorization code with
 * PKCE, state and nonce, all checked by openid-client. What comes back is who the person is
 * to the policy: the ID token's claims, the same facts group rules match for IdP tokens.
 * Pending sign-ins live in memory for ten minutes; the state names the authorization
 * server's interaction they belong to.
 */
import {
  allowInsecureRequests,
  authorizationCodeGrant,
  buildAuthorizationUrl,
  calculatePKCECodeChallenge,
  discovery,
  randomNonce,
  randomPKCECodeVerifier,
  randomState,
  type Configuration,
} from 'openid-client';
import { GROUP_OVERAGE, hasGroupOverage, requireSecureUrl } from '../auth/oidcVerifier';

export interface SignInConfig {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Scopes asked of the IdP, `openid` among them. */
  scope: string;
  redirectUri: string;
}

/** Who signed in, as the IdP said: its issuer and the ID token's claims (no protocol claims). */
export interface SignedInPerson {
  issuer: string;
  claims: Record<string, unknown> & { sub: string };
}

const PENDING_TTL_MS = 10 * 60_000;
const MAX_PENDING = 10_000;
const IDP_TIMEOUT_SECONDS = 10;
/** Claims about the token itself (an ID token's, an identity assertion's), not the person; they are not carried into relay tokens. */
const PROTOCOL_CLAIMS = new Set([
  'iss',
  'aud',
  'exp',
  'iat',
  'nbf',
  'nonce',
  'at_hash',
  'c_hash',
  's_hash',
  'auth_time',
  'azp',
  'jti',
  'acr',
  'amr',
  'client_id',
  'resource',
  'scope',
]);

/** The person in claims the IdP vouched for: every claim but those about the token. */
export function personFrom(issuer: string, claims: Record<string, unknown> & { sub: string }): SignedInPerson {
  const person = Object.fromEntries(Object.entries(claims).filter(([name]) => !PROTOCOL_CLAIMS.has(name)));
  return { issuer, claims: { ...person, sub: claims.sub } };
}

export class SignInError extends Error {
  constructor(
    message: string,
    readonly oauthError: 'access_denied' | 'server_error' = 'access_denied',
  ) {
    super(message);
    this.name = 'SignInError';
  }
}

export class FederatedSignIn {
  private configuration: Promise<Configuration> | undefined;
  private readonly pending = new Map<string, { interactionUid: string; verifier: string; nonce: string; until: number }>();

  constructor(private readonly config: SignInConfig) {
    requireSecureUrl(config.issuer, 'OIDC issuer');
    if (!config.scope.split(' ').includes('openid')) throw new Error('the sign-in scope must include openid');
  }

  /** Where to send the browser to sign in for this interaction. */
  async authorizationUrl(interactionUid: string): Promise<URL> {
    const configuration = await this.idp();
    const verifier = randomPKCECodeVerifier();
    const state = randomState();
    const nonce = randomNonce();
    this.sweep();
    if (this.pending.size >= MAX_PENDING)
      throw new SignInError('too many sign-ins are in progress; try again in a few minutes', 'server_error');
    this.pending.set(state, { interactionUid, verifier, nonce, until: Date.now() + PENDING_TTL_MS });
    return buildAuthorizationUrl(configuration, {
      redirect_uri: this.config.redirectUri,
      scope: this.config.scope,
      code_challenge: await calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
  }

  /** The interaction a callback belongs to, or undefined for an unknown or expired state. */
  interactionOf(callbackUrl: URL): string | undefined {
    const state = callbackUrl.searchParams.get('state');
    const entry = state === null ? undefined : this.pending.get(state);
    return entry && entry.until > Date.now() ? entry.interactionUid : undefined;
  }

  /** Redeems the IdP's answer (once): the person, or SignInError with a reason safe to show. */
  async finish(callbackUrl: URL): Promise<SignedInPerson> {
    const state = callbackUrl.searchParams.get('state') ?? '';
    const entry = this.pending.get(state);
    this.pending.delete(state);
    if (!entry || entry.until <= Date.now()) throw new SignInError('the sign-in took too long or was already used; start again');
    const idpError = callbackUrl.searchParams.get('error');
    if (idpError) throw new SignInError(`the identity provider refused the sign-in (${idpError.slice(0, 64)})`);
    const configuration = await this.idp();
    let claims: Record<string, unknown> | undefined;
    try {
      const tokens = await authorizationCodeGrant(configuration, callbackUrl, {
        pkceCodeVerifier: entry.verifier,
        expectedState: state,
        expectedNonce: entry.nonce,
        idTokenExpected: true,
      });
      claims = tokens.claims();
    } catch (error) {
      throw new SignInError(`the identity provider's answer did not check out: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (!claims || typeof claims.sub !== 'string' || claims.sub === '') throw new SignInError('the identity provider named no subject');
    if (hasGroupOverage(claims)) throw new SignInError(GROUP_OVERAGE.replace('token', 'the ID token'));
    return personFrom(this.config.issuer, { ...claims, sub: claims.sub });
  }

  private idp(): Promise<Configuration> {
    if (!this.configuration) {
      const loopback = new URL(this.config.issuer).protocol === 'http:';
      const pending = discovery(new URL(this.config.issuer), this.config.clientId, this.config.clientSecret, undefined, {
        execute: loopback ? [allowInsecureRequests] : [],
        timeout: IDP_TIMEOUT_SECONDS,
      });
      this.configuration = pending;
      pending.catch(() => {
        if (this.configuration === pending) this.configuration = undefined;
      });
    }
    return this.configuration;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [state, entry] of this.pending) if (entry.until <= now) this.pending.delete(state);
  }
}
