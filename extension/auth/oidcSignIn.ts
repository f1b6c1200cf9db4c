/**
 * Signing in to the org's OpenID Provider from VS Code, without `vscode` (so it is tested
 * against a real provider outside VS Code): authorization code + PKCE S256 + state + nonce
 * through `openid-client`, the browser sent to the authorization URL, the answer taken on a
 * loopback redirect (127.0.0.1, a random port, one path, one answer: RFC 8252). The
 * library checks state, nonce, the ID token and the RFC 9207 `iss` parameter where the
 * provider supports it; this module adds: the issuer must be https (http only on loopback,
 * for local providers), the authorization URL is checked before any browser sees it, the
 * loopback server takes exactly one answer and closes, and a sign-in not finished in time
 * is abandoned. Tokens are returned to the caller (the extension keeps them in
 * SecretStorage) and are never logged.
 */
import * as client from 'openid-client';
import { checkAuthorizationUrl as checkUrl } from '../../common/net/authorizationUrl';
import { isLoopbackHost, isSecureOrLoopback } from '../../common/net/loopback';
import { listenForRedirect } from '../../common/net/loopbackRedirect';
import { describeError } from '../../common/log/logger';

export interface OidcSettings {
  issuer: string;
  clientId: string;
  scopes: string[];
  /** RFC 8707 resource indicator: the audience of the access token (the policy server). */
  resource?: string;
}

export interface OidcTokens {
  /** The issuer that issued them: a refresh token goes back to it only. */
  issuer: string;
  accessToken: string;
  refreshToken?: string;
  /** Seconds since the epoch. */
  expiresAt?: number;
  idTokenClaims: { sub: string; email?: string; name?: string; preferred_username?: string };
}

const SIGN_IN_TIMEOUT_MS = 5 * 60_000;

export class SignInError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SignInError';
  }
}

/** The provider's metadata, by OIDC discovery (https; http only on loopback). */
export async function discoverProvider(settings: OidcSettings): Promise<client.Configuration> {
  const issuer = safeUrl(settings.issuer, 'The sign-in issuer');
  const loopback = issuer.protocol === 'http:' && isLoopbackHost(issuer.hostname);
  if (!isSecureOrLoopback(issuer))
    throw new SignInError(`The sign-in issuer must be https (http only on this machine), not ${issuer.protocol}`);
  try {
    return await client.discovery(
      issuer,
      settings.clientId,
      undefined,
      client.None(),
      loopback ? { execute: [client.allowInsecureRequests] } : undefined,
    );
  } catch (error) {
    throw new SignInError(`Cannot reach the sign-in provider ${issuer.origin}: ${describeError(error)}`);
  }
}

/**
 * The interactive sign-in: `openBrowser` gets the checked authorization URL (the extension
 * passes `vscode.env.openExternal`). Resolves when the provider has answered on the
 * loopback redirect and the code was exchanged.
 */
export async function signInWithBrowser(
  settings: OidcSettings,
  openBrowser: (url: URL) => Promise<void>,
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<OidcTokens> {
  const config = await discoverProvider(settings);
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const loopback = await listenForRedirect(state, {
    done: 'You are signed in to Gatehouse.',
    failed: 'Sign-in was not completed.',
    timedOut: () => new SignInError('The sign-in was not finished in the browser in time.'),
    cancelled: () => new SignInError('The sign-in was cancelled.'),
  });
  try {
    const redirectUri = loopback.redirectUri;
    const authorizationUrl = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: settings.scopes.join(' '),
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...(settings.scopes.includes('offline_access') ? { prompt: 'consent' } : {}),
      ...(settings.resource ? { resource: settings.resource } : {}),
    });
    checkAuthorizationUrl(authorizationUrl, config);
    const answered = loopback.answer(options.timeoutMs ?? SIGN_IN_TIMEOUT_MS, options.signal);
    await openBrowser(authorizationUrl);
    const callbackUrl = await answered;
    let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
    try {
      tokens = await client.authorizationCodeGrant(
        config,
        callbackUrl,
        { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true },
        settings.resource ? { resource: settings.resource } : undefined,
      );
    } catch (error) {
      throw new SignInError(`The sign-in was refused: ${describeError(error)}`);
    }
    return toTokens(settings.issuer, tokens);
  } finally {
    loopback.close();
  }
}

/** A new access token from a refresh token; throws SignInError when the provider refuses (sign in again). */
export async function refreshTokens(
  settings: OidcSettings,
  session: Pick<OidcTokens, 'issuer' | 'idTokenClaims'> & { refreshToken: string },
): Promise<OidcTokens> {
  if (session.issuer !== settings.issuer) throw new SignInError('The sign-in provider changed since you signed in; sign in again.');
  const previous = session.idTokenClaims;
  const refreshToken = session.refreshToken;
  const config = await discoverProvider(settings);
  try {
    const tokens = await client.refreshTokenGrant(config, refreshToken, settings.resource ? { resource: settings.resource } : undefined);
    const next = toTokens(settings.issuer, tokens, previous);
    if (next.idTokenClaims.sub !== previous.sub) throw new SignInError('The provider answered the refresh for another user.');
    return { ...next, refreshToken: next.refreshToken ?? refreshToken };
  } catch (error) {
    if (error instanceof SignInError) throw error;
    throw new SignInError(`Your sign-in expired and could not be renewed (${describeError(error)}); sign in again.`);
  }
}

function toTokens(
  issuer: string,
  tokens: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers,
  previous?: OidcTokens['idTokenClaims'],
): OidcTokens {
  const claims = tokens.claims() ?? previous;
  if (!claims?.sub) throw new SignInError('The provider returned no ID token.');
  const expiresIn = tokens.expiresIn();
  return {
    issuer,
    accessToken: tokens.access_token,
    ...(tokens.refresh_token ? { refreshToken: tokens.refresh_token } : {}),
    ...(expiresIn !== undefined ? { expiresAt: Math.floor(Date.now() / 1000) + expiresIn } : {}),
    idTokenClaims: {
      sub: claims.sub,
      ...(typeof claims.email === 'string' ? { email: claims.email } : {}),
      ...(typeof claims.name === 'string' ? { name: claims.name } : {}),
      ...(typeof claims.preferred_username === 'string' ? { preferred_username: claims.preferred_username } : {}),
    },
  };
}

/** The authorization URL must be the provider's own endpoint (common/net/authorizationUrl.ts). */
export function checkAuthorizationUrl(url: URL, config: client.Configuration): void {
  try {
    checkUrl(url, config.serverMetadata().authorization_endpoint);
  } catch (error) {
    throw new SignInError(describeError(error));
  }
}

function safeUrl(value: string, what: string): URL {
  try {
    return new URL(value);
  } catch {
    throw new SignInError(`${what} is not a URL.`);
  }
}
