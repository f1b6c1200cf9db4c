/**
 * Signs a person in at the org's OIDC IdP for the MCP authorization server (the policy
 * server is a client of the IdP, like any app in the org's SSO): authorization code with
 * PKCE, state and nonce, all checked by openid-client. What comes back is who the person is
 * to the policy: the ID token's claims, the same facts group rules match for IdP tokens.
 * Pending sign-ins are kept for ten minutes in the authorization server's state (memory, or
 * PostgreSQL shared by replicas); the state names the interaction they belong to.
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
import type { AuthorizationState, OidcAdapter } from './oidcProvider';

/** A sign-in sent to the IdP: what its answer is checked against. */
interface PendingSignIn {
  interactionUid: string;
  verifier: string;
  nonce: string;
}

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

const PENDING_TTL_SECONDS = 10 * 60;
/** The pending sign-ins' model name in the authorization server's state. */
const PENDING_MODEL = 'GatehouseSignIn';
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
  /** Sign-ins sent to the IdP, by their state (a model of our own in the authorization server's state). */
  private readonly pending: OidcAdapter;

  constructor(
    private readonly config: SignInConfig,
    private readonly state: AuthorizationState,
  ) {
    this.pending = state.adapter(PENDING_MODEL);
    requireSecureUrl(config.issuer, 'OIDC issuer');
    if (!config.scope.split(' ').includes('openid')) throw new Error('the sign-in scope must include openid');
  }

  /** Where to send the browser to sign in for this interaction. */
  async authorizationUrl(interactionUid: string): Promise<URL> {
    const configuration = await this.idp();
    const verifier = randomPKCECodeVerifier();
    const state = randomState();
    const nonce = randomNonce();
    await this.pending.upsert(state, { interactionUid, verifier, nonce }, PENDING_TTL_SECONDS);
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
  async interactionOf(callbackUrl: URL): Promise<string | undefined> {
    const state = callbackUrl.searchParams.get('state');
    const entry = state === null ? undefined : await this.pending.find(state);
    return typeof entry?.interactionUid === 'string' ? entry.interactionUid : undefined;
  }

  /** Redeems the IdP's answer (once): the person, or SignInError with a reason safe to show. */
  async finish(callbackUrl: URL): Promise<SignedInPerson> {
    const state = callbackUrl.searchParams.get('state') ?? '';
    // Taken once, whichever replica the IdP's answer (or a replay of it) reaches.
    const entry = state === '' ? undefined : ((await this.state.take(PENDING_MODEL, state)) as PendingSignIn | undefined);
    if (!entry) throw new SignInError('the sign-in took too long or was already used; start again');
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
}
