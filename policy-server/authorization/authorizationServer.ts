/**
 * The policy server as an MCP authorization server (`/oauth`), so any MCP client (VS Code's
 * own, CLIs, agents) reaches relayed servers with the org's SSO and no consent screen:
 * oidc-provider does the OAuth (authorization code + PKCE, RFC 8414 metadata, dynamic
 * registration, Client ID Metadata Documents with its own SSRF guard, RFC 8707 resource
 * binding, RFC 9207 `iss`, DPoP); this file configures it and puts the org's IdP behind its
 * login step (federatedSignIn.ts). Consent is the org's, given by policy, so none is asked.
 * Access tokens are RFC 9068 JWTs for exactly one relay server (`aud`), ten minutes long,
 * carrying who signed in at the IdP (`idp`) for the relay to decide on (relayAccess.ts).
 * Sign-ins in progress, registered clients and tokens live in `state`: this process's memory,
 * or PostgreSQL shared by replicas (postgresAuthorizationState.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type Router } from 'express';
import { describeError, type Logger } from '../../common/log/logger';
import { ID_PATTERN } from '../../common/policy/policyDocument';
import { POLICY_SERVER_PATHS } from '../../common/policy/policyServerApi';
import type { AuthorizationKeys } from './authorizationKeys';
import { ACCESS_TOKEN_ALGORITHM } from './authorizationKeys';
import { DPOP_ALGORITHMS } from './dpopProof';
import { SignInError, type FederatedSignIn, type SignedInPerson } from './federatedSignIn';
import {
  OAuthErrors,
  providerAdapter,
  ProviderClass,
  type AuthorizationState,
  type Grant,
  type OidcAdapter,
  type Provider,
  type ProviderContext,
} from './oidcProvider';

/** Where the authorization server lives under the policy server's URL; also its issuer's path. */
export const AUTHORIZATION_PATH = POLICY_SERVER_PATHS.authorization;
export const SIGN_IN_CALLBACK_PATH = `${AUTHORIZATION_PATH}/sign-in/callback`;
/** The one scope a relay token carries. */
export const RELAY_SCOPE = 'relay';
export const ACCESS_TOKEN_TTL_SECONDS = 600;
const SESSION_TTL_SECONDS = 8 * 3600;
const KNOWN_SCOPES = ['openid', 'offline_access', RELAY_SCOPE];

export interface AuthorizationServerDeps {
  /** The policy server's public base URL, without a path. */
  publicUrl: string;
  keys: AuthorizationKeys;
  signIn: FederatedSignIn;
  /** Where sign-ins, tokens, people and once-used ids are kept (memory, or PostgreSQL for replicas). */
  state: AuthorizationState;
  /** Clients the server registers itself (the gateway's, gatewayTokenExchange.ts). */
  clients?: Array<Record<string, unknown>>;
  log: Logger;
}

export class AuthorizationServer {
  readonly issuer: string;
  readonly provider: Provider;
  readonly state: AuthorizationState;
  /** Who the IdP vouched for, by account id, for their tokens' claims (a model of our own in the state). */
  private readonly people: OidcAdapter;

  constructor(private readonly deps: AuthorizationServerDeps) {
    this.issuer = `${deps.publicUrl}${AUTHORIZATION_PATH}`;
    this.state = deps.state;
    this.people = deps.state.adapter('GatehousePerson');
    this.provider = new ProviderClass(this.issuer, {
      adapter: (model: string) => providerAdapter(deps.state, model),
      clients: deps.clients ?? [],
      jwks: { keys: [deps.keys.signingJwk] },
      // Own cookie names: browsers share cookies across ports, and the org's IdP may well run oidc-provider too.
      cookies: {
        keys: deps.keys.cookieKeys,
        names: { session: '_gatehouse_session', interaction: '_gatehouse_interaction', resume: '_gatehouse_resume' },
      },
      scopes: KNOWN_SCOPES,
      claims: { openid: ['sub'] },
      responseTypes: ['code'],
      // Its one key is ES256 (oidc-provider's client default would be RS256).
      clientDefaults: {
        grant_types: ['authorization_code'],
        response_types: ['code'],
        id_token_signed_response_alg: ACCESS_TOKEN_ALGORITHM,
      },
      pkce: { required: () => true },
      enabledJWA: { dPoPSigningAlgValues: DPOP_ALGORITHMS },
      findAccount: async (_ctx: unknown, accountId: string) =>
        (await this.personOf(accountId)) ? { accountId, claims: async () => ({ sub: accountId }) } : undefined,
      // Who the person is at the IdP, for the relay's policy decisions (RFC 9068 leaves extra claims to the AS).
      extraTokenClaims: async (_ctx: unknown, token: { accountId?: string }) => {
        const person = token.accountId === undefined ? undefined : await this.personOf(token.accountId);
        return person ? { idp: { iss: person.issuer, claims: person.claims } } : undefined;
      },
      features: {
        devInteractions: { enabled: false },
        registration: { enabled: true },
        revocation: { enabled: true },
        userinfo: { enabled: false },
        dPoP: { enabled: true },
        clientIdMetadataDocument: { enabled: true, ack: 'draft-02' },
        resourceIndicators: {
          enabled: true,
          defaultResource: async () => undefined,
          useGrantedResource: async () => true,
          getResourceServerInfo: async (_ctx: unknown, indicator: string) => this.resourceServerInfo(indicator),
        },
      },
      loadExistingGrant: (ctx: ProviderContext) => this.orgGrant(ctx),
      interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `${AUTHORIZATION_PATH}/interaction/${interaction.uid}` },
      ttl: {
        AuthorizationCode: 60,
        Interaction: 600,
        Session: SESSION_TTL_SECONDS,
        Grant: SESSION_TTL_SECONDS,
        RefreshToken: SESSION_TTL_SECONDS,
        AccessToken: ACCESS_TOKEN_TTL_SECONDS,
      },
    });
    // RFC 6749 section 3.3 lets the server default the scope: a request for a relay server without one asks for the relay scope.
    this.provider.use(async (ctx: { path: string; method: string; query: Record<string, unknown> }, next: () => Promise<void>) => {
      if (ctx.path === '/auth' && ctx.method === 'GET' && ctx.query.scope === undefined && typeof ctx.query.resource === 'string') {
        ctx.query = { ...ctx.query, scope: RELAY_SCOPE };
      }
      await next();
    });
    // Refused token requests, for whoever debugs a client (the error only: no token or code is in it).
    this.provider.on('grant.error', (_ctx: unknown, error: unknown) => {
      const refusal = error as { error?: string; error_description?: string; error_detail?: string };
      deps.log.info('token request refused', {
        error: refusal.error,
        description: refusal.error_description,
        detail: refusal.error_detail,
      });
    });
    this.provider.on('server_error', (_ctx: unknown, error: unknown) =>
      deps.log.error('authorization server error', { error: describeError(error) }),
    );
  }

  /** The resource indicator (and relay URL) of one relay server. */
  relayResource(serverId: string): string {
    return `${this.deps.publicUrl}${POLICY_SERVER_PATHS.relay}/${serverId}/mcp`;
  }

  /** What a token for a relay server is (oidc-provider's resource server info): a ten-minute JWT for that server alone. */
  resourceServerInfo(indicator: string): Record<string, unknown> {
    if (this.serverIdOf(indicator) === undefined) {
      throw new OAuthErrors.InvalidTarget('resource must be a relay server of this policy server (<url>/relay/<server>/mcp)');
    }
    return {
      scope: RELAY_SCOPE,
      audience: indicator,
      accessTokenFormat: 'jwt',
      accessTokenTTL: ACCESS_TOKEN_TTL_SECONDS,
      jwt: { sign: { alg: ACCESS_TOKEN_ALGORITHM } },
    };
  }

  /** The relay server a resource indicator names, or undefined if it names none. */
  serverIdOf(resource: string): string | undefined {
    const prefix = `${this.deps.publicUrl}${POLICY_SERVER_PATHS.relay}/`;
    if (!resource.startsWith(prefix) || !resource.endsWith('/mcp')) return undefined;
    const serverId = resource.slice(prefix.length, -'/mcp'.length);
    return ID_PATTERN.test(serverId) ? serverId : undefined;
  }

  /** Someone the IdP vouched for (federated sign-in, or an identity assertion), for their tokens' claims. */
  async remember(person: SignedInPerson): Promise<string> {
    const accountId = person.claims.sub;
    await this.people.upsert(accountId, { person }, SESSION_TTL_SECONDS);
    return accountId;
  }

  private async personOf(accountId: string): Promise<SignedInPerson | undefined> {
    return (await this.people.find(accountId))?.person as SignedInPerson | undefined;
  }

  /**
   * The grant for a signed-in person and a client: what the client asked for, given without
   * a consent screen because the org's policy, not the person, decides what is reached
   * (the relay decides every call). A relay server's grant is the relay scope.
   */
  private async orgGrant(ctx: ProviderContext): Promise<Grant | undefined> {
    const { oidc } = ctx;
    const accountId = oidc.session?.accountId;
    if (!accountId) return undefined;
    const existing = oidc.result?.consent?.grantId ?? oidc.session?.grantIdFor(oidc.client.clientId);
    if (existing) return this.provider.Grant.find(existing);
    const grant = new this.provider.Grant({ accountId, clientId: oidc.client.clientId });
    const oidcScopes = String(oidc.params.scope ?? '')
      .split(' ')
      .filter((scope) => KNOWN_SCOPES.includes(scope));
    if (oidcScopes.length > 0) grant.addOIDCScope(oidcScopes.join(' '));
    const resources = ([] as unknown[]).concat(oidc.params.resource ?? []);
    for (const resource of resources)
      if (typeof resource === 'string' && this.serverIdOf(resource) !== undefined) grant.addResourceScope(resource, RELAY_SCOPE);
    await grant.save();
    return grant;
  }

  routes(): Router {
    const router = express.Router();
    const oauth = this.provider.callback();
    // RFC 8414 puts the metadata of an issuer with a path at /.well-known/oauth-authorization-server/<path>.
    router.get(`/.well-known/oauth-authorization-server${AUTHORIZATION_PATH}`, (req, res) => {
      req.url = '/.well-known/openid-configuration';
      req.originalUrl = `${AUTHORIZATION_PATH}${req.url}`;
      oauth(req, res);
    });
    router.get(`${AUTHORIZATION_PATH}/interaction/:uid`, (req, res) => this.interaction(req, res));
    router.get(SIGN_IN_CALLBACK_PATH, (req, res) => this.signedIn(req, res));
    router.use(AUTHORIZATION_PATH, oauth);
    return router;
  }

  /** The login step sends the browser to the IdP (consent is the org's: see `orgGrant`). */
  private async interaction(req: IncomingMessage & { params: Record<string, string> }, res: ServerResponse): Promise<void> {
    const details = await this.provider.interactionDetails(req, res);
    if (details.uid !== req.params.uid) throw new OAuthErrors.InvalidRequest('interaction mismatch');
    if (details.prompt.name === 'login') {
      try {
        redirect(res, (await this.deps.signIn.authorizationUrl(details.uid)).href);
      } catch (error) {
        this.deps.log.warn('sign-in could not start', { error: describeError(error) });
        const description = error instanceof SignInError ? error.message : 'the identity provider cannot be reached; try again shortly';
        await this.provider.interactionFinished(
          req,
          res,
          { error: 'temporarily_unavailable', error_description: description },
          { mergeWithLastSubmission: false },
        );
      }
      return;
    }
    this.deps.log.warn('unsupported sign-in step refused', { prompt: details.prompt.name, reasons: details.prompt.details });
    await this.provider.interactionFinished(
      req,
      res,
      { error: 'access_denied', error_description: 'this sign-in step is not supported' },
      { mergeWithLastSubmission: false },
    );
  }

  /**
   * The IdP's redirect back. The interaction's own cookie is scoped to its URL, so the
   * interaction is found through the sign-in's state; the browser is still bound to it by
   * oidc-provider's resume cookie, which only the browser that started it holds.
   */
  private async signedIn(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const callbackUrl = new URL(req.url ?? '', this.deps.publicUrl);
    const uid = await this.deps.signIn.interactionOf(callbackUrl);
    const interaction = uid === undefined ? undefined : await this.provider.Interaction.find(uid);
    if (!interaction) {
      res
        .writeHead(400, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' })
        .end('This sign-in expired or was already used. Start again from your MCP client.');
      return;
    }
    try {
      const accountId = await this.remember(await this.deps.signIn.finish(callbackUrl));
      interaction.result = { login: { accountId } };
    } catch (error) {
      this.deps.log.warn('sign-in refused', { error: describeError(error) });
      const description = error instanceof SignInError ? error.message : 'the sign-in failed';
      interaction.result = { error: error instanceof SignInError ? error.oauthError : 'server_error', error_description: description };
    }
    await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
    redirect(res, interaction.returnTo);
  }
}

function redirect(res: ServerResponse, location: string): void {
  res.writeHead(303, { Location: location, 'Content-Length': '0', 'Cache-Control': 'no-store' }).end();
}
