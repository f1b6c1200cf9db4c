/**
 * A real OpenID Provider (oidc-provider) on 127.0.0.1 for tests. Tokens come out of the
 * real authorization code flow with PKCE, driven over HTTP like a browser would, and are
 * RFC 9068 JWT access tokens for one resource server (the audience). Nothing is minted by hand
 * here; hostileTokens.ts forges the tokens that exist to be refused.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import { browserSession } from './idpBrowser';
import { TOKEN_EXCHANGE_GRANT } from '../../common/oauth/identityAssertion';
import { issueIdentityAssertions, type AssertionClients } from './identityAssertionIssuer';
import { exchangeSubjectTokens, type SubjectExchange } from './subjectTokenExchange';
import { grantWhatIsAsked, MemoryStore, ProviderClass, type Provider } from './oidcProviderApi';

export interface LocalIdp {
  issuer: string;
  audience: string;
  /** A fresh JWT access token for `user`, obtained through the authorization code flow. */
  tokenFor(user: 'alice' | 'bob' | string): Promise<string>;
  /** A fresh ID token for `user` (audience: the test client, `TEST_CLIENT_ID`), from the same flow. */
  idTokenFor(user: string): Promise<string>;
  /** With `identityAssertions`: which client the test client is at an authorization server. */
  assertionClients?: AssertionClients;
  /** With `subjectTokenClient`: whose subject tokens are trusted, and how many were exchanged. */
  subjectExchange?: SubjectExchange;
  stop(): Promise<void>;
}

export interface LocalIdpOptions {
  accessTokenTtlSeconds?: number;
  /** Must be an absolute URI: it is also the RFC 8707 resource indicator clients ask for. */
  audience?: string;
  /** Listen on this port instead of a random one (to bring an IdP back at the same issuer). */
  port?: number;
  /** A loopback address other than 127.0.0.1 (the VS Code suite: code-server rewrites 127.0.0.1 links through its proxy). */
  host?: string;
  /**
   * An MCP server this IdP also authorizes for (upstream OAuth tests): JWT access tokens
   * with `aud` = its URL and only these scopes; clients may register themselves (RFC 7591).
   */
  mcpResource?: { url: string; scopes: string[] };
  /**
   * The policy server's own client here (its MCP authorization server signs people in at
   * this IdP): confidential, redirect to /oauth/sign-in/callback on any loopback port.
   */
  signInClient?: { clientId: string; clientSecret: string };
  /** Exchanges ID tokens for ID-JAGs (enterprise-managed authorization): identityAssertionIssuer.ts. */
  identityAssertions?: boolean;
  /**
   * As `mcpResource`'s authorization server, exchanges the policy server's subject tokens
   * for tokens to it (`relay-oauth`, subjectTokenExchange.ts), for this confidential client.
   */
  subjectTokenClient?: { clientId: string; clientSecret: string };
}

export const DEFAULT_AUDIENCE = 'https://policy.gatehouse.test';
export const RESOURCE_SCOPE = 'policy:read';

const CLIENT_ID = 'gatehouse-test-client';
/** The public client the tests sign in with (and, with `identityAssertions`, exchange its ID tokens). */
export const TEST_CLIENT_ID = CLIENT_ID;
const REDIRECT_URI = 'http://127.0.0.1/callback';
/** The client the extension signs in with: native, public, loopback redirect on any port (RFC 8252), refresh tokens. */
export const VSCODE_CLIENT_ID = 'gatehouse-vscode';

const KNOWN_ACCOUNTS: Record<string, { groups: string[] }> = {
  alice: { groups: ['engineers'] },
  bob: { groups: ['contractors'] },
  dave: { groups: ['engineers'] },
};

export function accountClaims(accountId: string): Record<string, unknown> {
  return {
    sub: accountId,
    email: `${accountId}@example.com`,
    email_verified: true,
    preferred_username: accountId,
    groups: KNOWN_ACCOUNTS[accountId]?.groups ?? [],
  };
}

export async function startLocalIdp(options: LocalIdpOptions = {}): Promise<LocalIdp> {
  const audience = options.audience ?? DEFAULT_AUDIENCE;
  const accessTokenTtl = options.accessTokenTtlSeconds ?? 300;

  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve);
  });
  const issuer = `http://${options.host ?? '127.0.0.1'}:${(server.address() as AddressInfo).port}`;

  /** How tokens for `mcpResource` are made: JWTs with `aud` = its URL and only its scopes. */
  const mcpResourceInfo = () => ({
    scope: options.mcpResource!.scopes.join(' '),
    audience: options.mcpResource!.url,
    accessTokenFormat: 'jwt',
    accessTokenTTL: accessTokenTtl,
    jwt: { sign: { alg: 'RS256' } },
  });
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const signingKey = { ...(await exportJWK(privateKey)), kid: `local-idp-${randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' };
  const store = new MemoryStore();

  const provider = new ProviderClass(issuer, {
    adapter: (model: string) => store.adapter(model),
    clients: [
      {
        client_id: CLIENT_ID,
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        redirect_uris: [REDIRECT_URI],
        grant_types: ['authorization_code', ...(options.identityAssertions ? [TOKEN_EXCHANGE_GRANT] : [])],
        response_types: ['code'],
      },
      {
        client_id: VSCODE_CLIENT_ID,
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        redirect_uris: [REDIRECT_URI],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
      },
      ...(options.subjectTokenClient
        ? [
            {
              client_id: options.subjectTokenClient.clientId,
              client_secret: options.subjectTokenClient.clientSecret,
              token_endpoint_auth_method: 'client_secret_basic',
              redirect_uris: [],
              grant_types: [TOKEN_EXCHANGE_GRANT],
              response_types: [],
            },
          ]
        : []),
      ...(options.signInClient
        ? [
            {
              client_id: options.signInClient.clientId,
              client_secret: options.signInClient.clientSecret,
              application_type: 'native',
              token_endpoint_auth_method: 'client_secret_post',
              redirect_uris: ['http://127.0.0.1/oauth/sign-in/callback'],
              grant_types: ['authorization_code'],
              response_types: ['code'],
            },
          ]
        : []),
    ],
    // Own keys and cookie secrets, so oidc-provider does not warn about development defaults.
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    // Scopes a self-registered client may ask for (oidc-provider checks registrations against them).
    ...(options.mcpResource ? { scopes: ['openid', 'offline_access', ...options.mcpResource.scopes] } : {}),
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['preferred_username'], groups: ['groups'] },
    // The asked-for claims go into the ID token too, as Entra and most IdPs put them there (the policy server's sign-in reads them).
    conformIdTokenClaims: false,
    findAccount: async (_ctx: unknown, accountId: string) => ({
      accountId,
      claims: async () => accountClaims(accountId),
    }),
    // Copies the account's claims into JWT access tokens (RFC 9068 leaves that to the AS).
    extraTokenClaims: async (_ctx: unknown, token: { accountId?: string }) => {
      if (!token.accountId) return undefined;
      const { email, email_verified, preferred_username, groups } = accountClaims(token.accountId);
      return { email, email_verified, preferred_username, groups };
    },
    features: {
      devInteractions: { enabled: false },
      registration: { enabled: options.mcpResource !== undefined },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => audience,
        // Without this the code exchange (scope includes openid) yields an opaque userinfo token.
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx: unknown, resourceIndicator: string) => {
          if (options.mcpResource && resourceIndicator === options.mcpResource.url) return mcpResourceInfo();
          if (resourceIndicator !== audience) throw new Error(`unknown resource indicator ${resourceIndicator}`);
          return {
            scope: RESOURCE_SCOPE,
            audience,
            accessTokenFormat: 'jwt',
            accessTokenTTL: accessTokenTtl,
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    // Refresh tokens for clients allowed the grant (oidc-provider's default also wants offline_access).
    ...(options.mcpResource
      ? {
          issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(grant: string): boolean }) =>
            client.grantTypeAllowed('refresh_token'),
        }
      : {}),
    pkce: { required: () => true },
    clientBasedCORS: () => false,
    ttl: {
      AccessToken: accessTokenTtl,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
      RefreshToken: 86_400,
    },
  });
  const assertionClients = options.identityAssertions ? issueIdentityAssertions(provider, issuer, signingKey) : undefined;
  if (options.subjectTokenClient && (!options.mcpResource || options.identityAssertions))
    throw new Error('subjectTokenClient needs mcpResource, and not identityAssertions (both are token exchange)');
  const subjectExchange =
    options.subjectTokenClient && options.mcpResource
      ? exchangeSubjectTokens(provider, issuer, { ...options.mcpResource, info: mcpResourceInfo })
      : undefined;
  const handleOidc = provider.callback();

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.url?.startsWith('/interaction/')) {
      completeInteraction(provider, req, res).catch((error: unknown) => {
        res.statusCode = 500;
        res.end(`interaction failed: ${error instanceof Error ? error.message : String(error)}`);
      });
      return;
    }
    handleOidc(req, res);
  });

  return {
    issuer,
    audience,
    tokenFor: async (user) => (await authorizationCodeFlow(issuer, audience, user)).accessToken,
    idTokenFor: async (user) => (await authorizationCodeFlow(issuer, audience, user)).idToken,
    ...(assertionClients ? { assertionClients } : {}),
    ...(subjectExchange ? { subjectExchange } : {}),
    stop: () => closeServer(server),
  };
}

/**
 * Stands in for the login and consent pages: the user named by `login_hint` signs in and
 * consents to whatever the client asked for.
 */
async function completeInteraction(provider: Provider, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const interaction = await provider.interactionDetails(req, res);
  const { prompt, params, session, uid } = interaction;
  if (prompt.name === 'login' && params.login_hint === undefined) {
    // A person signing in: a login form (GET), then its answer (POST .../login).
    if (req.method === 'POST' && req.url?.endsWith('/login')) {
      const form = new URLSearchParams(await readBody(req));
      const accountId = form.get('login') ?? '';
      if (!/^[a-z][a-z0-9-]{0,30}$/.test(accountId)) throw new Error('enter a user name');
      await provider.interactionFinished(req, res, { login: { accountId } }, { mergeWithLastSubmission: false });
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(`<!DOCTYPE html><title>Local IdP: sign in</title>
<form method="post" action="/interaction/${uid}/login"><label>User <input name="login" id="login" autofocus></label> <button type="submit" id="sign-in">Sign in</button></form>`);
    return;
  }
  if (prompt.name === 'login') {
    const accountId = params.login_hint;
    if (typeof accountId !== 'string' || accountId === '') {
      await provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'login_hint names no user' },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId } }, { mergeWithLastSubmission: false });
    return;
  }
  if (prompt.name !== 'consent' || !session?.accountId) throw new Error(`unexpected prompt ${prompt.name}`);
  const grantId = await grantWhatIsAsked(provider, interaction, session.accountId);
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

/** What a native app does: authorization request with PKCE, follow redirects, exchange the code. */
async function authorizationCodeFlow(issuer: string, audience: string, user: string): Promise<{ accessToken: string; idToken: string }> {
  const metadata = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as {
    authorization_endpoint: string;
    token_endpoint: string;
  };
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(16).toString('base64url');
  const authorize = new URL(metadata.authorization_endpoint);
  authorize.search = new URLSearchParams({
    client_id: CLIENT_ID,
    redirect_uri: REDIRECT_URI,
    response_type: 'code',
    scope: `openid email profile groups ${RESOURCE_SCOPE}`,
    resource: audience,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    state,
    login_hint: user,
  }).toString();

  const send = browserSession();
  let url = authorize;
  let callback: URL | undefined;
  for (let hop = 0; hop < 10 && !callback; hop++) {
    const response = await send(url);
    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || !location) {
      throw new Error(`local IdP flow stopped at ${url.pathname} with HTTP ${response.status}: ${(await response.text()).slice(0, 300)}`);
    }
    await response.body?.cancel();
    url = new URL(location, url);
    if (url.href.startsWith(REDIRECT_URI)) callback = url;
  }
  if (!callback) throw new Error('local IdP flow did not reach the redirect URI');
  const error = callback.searchParams.get('error');
  if (error) throw new Error(`local IdP refused the authorization: ${error} ${callback.searchParams.get('error_description') ?? ''}`);
  if (callback.searchParams.get('state') !== state) throw new Error('local IdP returned a different state');
  if (callback.searchParams.get('iss') !== issuer) throw new Error('local IdP returned a different iss');
  const code = callback.searchParams.get('code');
  if (!code) throw new Error('local IdP returned no code');

  const tokenResponse = await fetch(metadata.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT_URI,
      code_verifier: verifier,
      client_id: CLIENT_ID,
      resource: audience,
    }),
  });
  const body = (await tokenResponse.json()) as { access_token?: string; id_token?: string; error?: string; error_description?: string };
  if (!tokenResponse.ok || !body.access_token || !body.id_token)
    throw new Error(`local IdP token request failed: ${body.error ?? tokenResponse.status} ${body.error_description ?? ''}`);
  return { accessToken: body.access_token, idToken: body.id_token };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    server.closeAllConnections();
  });
}
