/**
 * Who is calling the policy server: turns an `Authorization: Bearer` header into a
 * CallerIdentity, using the org's OIDC IdP for JWTs and the GitHub API for GitHub tokens.
 * Refusals become RFC 6750 challenges. The token never appears in an error or a log line.
 */
import { createHash } from 'node:crypto';
import type { CallerIdentity } from '../../common/policy/identity';
import { GithubVerifier } from './githubVerifier';
import { OidcVerifier, type TokenVerdict } from './oidcVerifier';

export interface AuthenticatorConfig {
  oidc?: { issuer: string; audience: string; clockToleranceSeconds?: number /* default 30 */ };
  /** GitHub sign-in through the org's Gatehouse OAuth app (tokens of other apps are refused). */
  github?: { apiBaseUrl: string /* e.g. https://api.github.com */; clientId: string; clientSecret: string };
}

const REALM = 'gatehouse';
// Real IdP tokens are a few KB at most; anything far bigger is refused before parsing.
const MAX_TOKEN_LENGTH = 16 * 1024;
// RFC 6750 b64token, which every JWT and every GitHub token matches.
const BEARER_CREDENTIALS = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * A token verified once is trusted for at most this long (and never past its own `exp`):
 * gateways send the same token many times, and a signature check per request costs more
 * than the rest of a revalidation. Revocation does not wait for this: the revocation list
 * is checked on every request. Keyed by the token's SHA-256, so no token is kept.
 */
const VERIFIED_TTL_MS = 60_000;
const MAX_VERIFIED = 10_000;

export type BearerErrorCode = 'invalid_request' | 'invalid_token' | 'invalid_dpop_proof';

/** The caller must (re)authenticate. Answer with 401 and `WWW-Authenticate: <wwwAuthenticate>`. */
export class AuthenticationError extends Error {
  readonly status = 401 as const;
  readonly wwwAuthenticate: string;
  /** Absent when the request carried no bearer token at all (RFC 6750 section 3.1). */
  readonly error: BearerErrorCode | undefined;
  readonly description: string | undefined;

  constructor(
    message: string,
    error?: BearerErrorCode,
    description?: string,
    /** `DPoP` for a refused proof (RFC 9449 section 7.1). */
    private readonly scheme: 'Bearer' | 'DPoP' = 'Bearer',
    /** More challenge parameters, such as RFC 9728's `resource_metadata`. */
    private readonly parameters: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'AuthenticationError';
    this.error = error;
    this.description = description === undefined ? undefined : challengeText(description);
    const fields = [`realm="${REALM}"`];
    if (error !== undefined) fields.push(`error="${error}"`);
    if (this.description !== undefined) fields.push(`error_description="${this.description}"`);
    for (const [name, value] of Object.entries(parameters)) fields.push(`${name}="${challengeText(value)}"`);
    this.wwwAuthenticate = `${scheme} ${fields.join(', ')}`;
  }

  /** The same refusal with more challenge parameters. */
  withParameters(parameters: Record<string, string>): AuthenticationError {
    return new AuthenticationError(this.message, this.error, this.description, this.scheme, { ...this.parameters, ...parameters });
  }

  static invalidToken(reason: string): AuthenticationError {
    return new AuthenticationError(`Bearer token refused: ${reason}. Sign in again.`, 'invalid_token', reason);
  }
}

/**
 * The identity provider could not be asked (down, slow, misconfigured). Not the caller's
 * fault and no reason to sign in again: answer 503 and let the client retry.
 */
export class IdentityProviderUnavailableError extends Error {
  readonly status = 503 as const;

  constructor(provider: string, cause: unknown) {
    super(
      `Could not verify the bearer token with ${provider}: ${cause instanceof Error ? cause.message : String(cause)}. Try again shortly.`,
      { cause },
    );
    this.name = 'IdentityProviderUnavailableError';
  }
}

export class BearerAuthenticator {
  private readonly oidc: OidcVerifier | undefined;
  private readonly github: GithubVerifier | undefined;
  private readonly verified = new Map<string, { identity: CallerIdentity; until: number }>();

  constructor(config: AuthenticatorConfig) {
    if (!config.oidc && !config.github) throw new Error('AuthenticatorConfig needs oidc, github or both');
    this.oidc = config.oidc ? new OidcVerifier(config.oidc) : undefined;
    this.github = config.github ? new GithubVerifier(config.github) : undefined;
  }

  /**
   * Resolves the caller's identity or throws AuthenticationError (401) or
   * IdentityProviderUnavailableError (503).
   */
  async authenticate(authorization: string | undefined): Promise<CallerIdentity> {
    const token = bearerToken(authorization);
    // Only JWTs (checked offline against the IdP's keys); GitHub tokens keep the GitHub verifier's own short cache.
    const cacheable = token.split('.').length === 3;
    const key = createHash('sha256').update(token).digest('base64url');
    const known = cacheable ? this.verified.get(key) : undefined;
    if (known && known.until > Date.now()) return known.identity;
    const verdict = await this.verify(token);
    if (!verdict.ok) throw AuthenticationError.invalidToken(verdict.reason);
    if (!cacheable) return verdict.identity;
    const exp = verdict.identity.claims.exp;
    const until = Math.min(Date.now() + VERIFIED_TTL_MS, typeof exp === 'number' ? exp * 1000 : Number.POSITIVE_INFINITY);
    if (this.verified.size >= MAX_VERIFIED) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(key, { identity: verdict.identity, until });
    return verdict.identity;
  }

  private async verify(token: string): Promise<TokenVerdict> {
    const looksLikeJwt = token.split('.').length === 3;
    const [verifier, provider] = looksLikeJwt
      ? [this.oidc, this.oidc ? `the identity provider ${this.oidc.issuer}` : '']
      : [this.github, 'GitHub'];
    if (!verifier) {
      return { ok: false, reason: looksLikeJwt ? 'this policy server does not accept OIDC tokens' : 'token is not a JWT' };
    }
    try {
      return await verifier.verify(token);
    } catch (error) {
      throw new IdentityProviderUnavailableError(provider, error);
    }
  }
}

function bearerToken(authorization: string | undefined): string {
  return authorizationCredentials(authorization, ['Bearer']).token;
}

/**
 * The scheme (lowercased) and token of an Authorization header whose scheme is one of
 * `schemes`, the token checked as an RFC 6750 b64token of sane length; AuthenticationError
 * otherwise. (RFC 9449 gives DPoP-bound tokens the same syntax.)
 */
export function authorizationCredentials(authorization: string | undefined, schemes: string[]): { scheme: string; token: string } {
  const wanted = schemes.join(' or ');
  const header = authorization?.trim() ?? '';
  if (header === '') throw new AuthenticationError(`The request has no Authorization header; send a ${wanted} token.`);
  const space = header.indexOf(' ');
  const scheme = (space === -1 ? header : header.slice(0, space)).toLowerCase();
  if (!schemes.some((accepted) => accepted.toLowerCase() === scheme)) {
    // Another auth scheme counts as no credentials at all (RFC 6750 section 3.1).
    throw new AuthenticationError(`The Authorization header is not a ${wanted} token; send a ${wanted} token.`);
  }
  const token = space === -1 ? '' : header.slice(space + 1).trim();
  if (token === '') throw new AuthenticationError('Bearer token missing.', 'invalid_request', 'Authorization header has no bearer token');
  if (!BEARER_CREDENTIALS.test(token)) {
    throw new AuthenticationError(
      'Bearer token malformed.',
      'invalid_request',
      'Authorization header is not a single well-formed bearer token',
    );
  }
  if (token.length > MAX_TOKEN_LENGTH) throw AuthenticationError.invalidToken('token is too long');
  return { scheme, token };
}

/** error_description allows printable ASCII except `"` and `\` (RFC 6750 section 3). */
function challengeText(text: string): string {
  return text.replace(/"/g, "'").replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, '');
}
