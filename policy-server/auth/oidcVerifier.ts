/**
 * Verifies OIDC JWT access tokens from the org's IdP: keys come from the issuer's JWKS,
 * found through issuer discovery. Returns a verdict instead of throwing for a refused token,
 * so the caller decides how to challenge; anything thrown means the IdP could not be asked.
 */
import {
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import { allowInsecureRequests, discovery } from 'openid-client';
import { isLoopbackHost } from '../../common/net/loopback';
import type { CallerIdentity } from '../../common/policy/identity';

export interface OidcVerifierConfig {
  issuer: string;
  audience: string;
  /** Allowed clock skew for exp/nbf, in seconds. Default 30. */
  clockToleranceSeconds?: number;
  /** The JWT `typ` header required (an identity assertion's `oauth-id-jag+jwt`); any when unset. */
  typ?: string;
}

/** A refused token carries a reason that is safe to show the caller (it never quotes the token). */
export type TokenVerdict = { ok: true; identity: CallerIdentity } | { ok: false; reason: string };

/** Asymmetric algorithms only: `none` and the HS* family (shared secrets) are never accepted. */
export const ACCEPTED_ALGORITHMS: readonly string[] = ['RS256', 'PS256', 'ES256', 'EdDSA'];

const DEFAULT_CLOCK_TOLERANCE_SECONDS = 30;
const IDP_TIMEOUT_SECONDS = 5;

// Discovery wants a client id although a resource server is not a client; it is never sent.
const DISCOVERY_CLIENT_ID = 'gatehouse-policy-server';

export function isLoopbackUrl(url: URL): boolean {
  return isLoopbackHost(url.hostname);
}

/**
 * Plain http is acceptable only when the other end is this machine (tests, local
 * development); anywhere else a token or key set would travel in the clear.
 */
export function requireSecureUrl(value: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`${what} is not a valid URL: ${value}`);
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && isLoopbackUrl(url)) return url;
  throw new Error(`${what} must use https (plain http is allowed only for loopback: 127.0.0.0/8, localhost or [::1]): ${value}`);
}

export class OidcVerifier {
  readonly issuer: string;
  private readonly issuerUrl: URL;
  private readonly audience: string;
  private readonly clockTolerance: number;
  private readonly typ: string | undefined;
  /** Discovery + key set, created on first use; cleared on failure so the next call retries. */
  private keySet: Promise<JWTVerifyGetKey> | undefined;

  constructor(config: OidcVerifierConfig) {
    this.issuerUrl = requireSecureUrl(config.issuer, 'OIDC issuer');
    if (!config.audience) throw new Error('OIDC audience must not be empty');
    this.issuer = config.issuer;
    this.audience = config.audience;
    this.clockTolerance = config.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;
    this.typ = config.typ;
  }

  async verify(token: string): Promise<TokenVerdict> {
    // Cheap checks on the unverified token first: they only ever refuse, never accept, and
    // they spare the IdP a key-set refetch for tokens that were never ours.
    let alg: string | undefined;
    let unverifiedIssuer: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
      unverifiedIssuer = decodeJwt(token).iss;
    } catch {
      return refuse('token is not a well-formed JWT');
    }
    if (alg === undefined || !ACCEPTED_ALGORITHMS.includes(alg)) return refuse(algorithmReason());
    if (unverifiedIssuer !== this.issuer) return refuse(issuerReason());

    const keys = await this.keys();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        issuer: this.issuer,
        audience: this.audience,
        algorithms: [...ACCEPTED_ALGORITHMS],
        clockTolerance: this.clockTolerance,
        requiredClaims: ['sub', 'exp'],
        ...(this.typ ? { typ: this.typ } : {}),
      }));
    } catch (error) {
      const reason = describeRefusal(error);
      if (reason === undefined) throw error;
      return refuse(reason);
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') return refuse('token has no usable sub claim');

    if (hasGroupOverage(payload)) return refuse(GROUP_OVERAGE);
    const identity: CallerIdentity = { sub: payload.sub, issuer: this.issuer, claims: { ...payload } };
    if (typeof payload.email === 'string') identity.email = payload.email;
    if (typeof payload.preferred_username === 'string') identity.username = payload.preferred_username;
    return { ok: true, identity };
  }

  private keys(): Promise<JWTVerifyGetKey> {
    if (!this.keySet) {
      const pending = this.discoverKeys();
      this.keySet = pending;
      pending.catch(() => {
        if (this.keySet === pending) this.keySet = undefined;
      });
    }
    return this.keySet;
  }

  private async discoverKeys(): Promise<JWTVerifyGetKey> {
    const loopback = this.issuerUrl.protocol === 'http:';
    const configuration = await discovery(this.issuerUrl, DISCOVERY_CLIENT_ID, undefined, undefined, {
      execute: loopback ? [allowInsecureRequests] : [],
      timeout: IDP_TIMEOUT_SECONDS,
    });
    const jwksUri = configuration.serverMetadata().jwks_uri;
    if (!jwksUri) throw new Error(`OIDC issuer ${this.issuer} publishes no jwks_uri in its discovery document`);
    const jwksUrl = requireSecureUrl(jwksUri, `jwks_uri of OIDC issuer ${this.issuer}`);
    if (jwksUrl.protocol === 'http:' && !loopback) throw new Error(`OIDC issuer ${this.issuer} publishes a plain-http jwks_uri`);
    return createRemoteJWKSet(jwksUrl, { timeoutDuration: IDP_TIMEOUT_SECONDS * 1000 });
  }
}

export const GROUP_OVERAGE = 'token omits the groups claim (group overage); configure the IdP to emit groups or app roles';

/**
 * Entra replaces `groups` with a pointer when a user has too many: group rules would
 * silently stop matching (a deny by group would fail open), so such a token is refused.
 */
export function hasGroupOverage(claims: Record<string, unknown>): boolean {
  const claimNames = claims._claim_names as Record<string, unknown> | undefined;
  return claims.hasgroups === true || claims.hasgroups === 'true' || (claimNames !== undefined && 'groups' in claimNames);
}

function refuse(reason: string): TokenVerdict {
  return { ok: false, reason };
}

function algorithmReason(): string {
  return `token signing algorithm is not accepted (accepted: ${ACCEPTED_ALGORITHMS.join(', ')})`;
}

function issuerReason(): string {
  return 'token issuer is not the identity provider this policy server trusts';
}

/** Maps jose's token errors to caller-safe reasons; undefined means "not the token's fault". */
function describeRefusal(error: unknown): string | undefined {
  if (error instanceof joseErrors.JWTExpired) return 'token has expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.reason === 'missing') return `token has no ${error.claim} claim`;
    switch (error.claim) {
      case 'aud':
        return 'token audience is not this policy server';
      case 'iss':
        return issuerReason();
      case 'nbf':
        return 'token is not valid yet';
      default:
        return `token ${error.claim} claim is not valid`;
    }
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return algorithmReason();
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'token signature is not valid';
  if (error instanceof joseErrors.JWKSNoMatchingKey || error instanceof joseErrors.JWKSMultipleMatchingKeys) {
    return 'token was not signed by a key of the identity provider this policy server trusts';
  }
  if (error instanceof joseErrors.JWSInvalid || error instanceof joseErrors.JWTInvalid || error instanceof joseErrors.JOSENotSupported) {
    return 'token is not a well-formed signed JWT';
  }
  return undefined;
}
