/**
 * Relay tokens for Gatehouse's own gateway, bound to a key it holds in memory (RFC 9449),
 * so a relay token copied off the laptop, out of a proxy's log or a crash dump is useless:
 * the gateway exchanges the person's IdP token (RFC 8693; the token it already sends the
 * policy server) for a relay token for one relay server, with a DPoP proof of its key.
 *
 * The exchange grants nothing the IdP token does not already grant (the relay takes that
 * token too, unless `--relay-requires-dpop`): the same person, narrowed to one relay
 * server, ten minutes at most and never past the IdP token's own expiry. So the gateway is
 * a public client (`gatehouse-gateway`; a laptop keeps no secret), and the proof is
 * required. The subject token is checked as on every other route (BearerAuthenticator:
 * the org's IdP, its audience, unexpired) and the person must not be revoked. GitHub
 * tokens are not exchanged: a relay token carries claims, not GitHub org and team
 * membership, which a GitHub-based policy matches on.
 */
import { ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE, JWT_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT } from '../../common/oauth/identityAssertion';
import { GATEWAY_CLIENT_ID } from '../../common/policy/policyServerApi';
import { AuthenticationError, type BearerAuthenticator } from '../auth/bearerAuthenticator';
import type { RevocationList } from '../revocations/revocationList';
import { ACCESS_TOKEN_TTL_SECONDS, type AuthorizationServer } from './authorizationServer';
import { personFrom } from './federatedSignIn';
import { OAuthErrors, refused, type ProviderContext } from './oidcProvider';
import { dpopThumbprint, issueRelayToken, MAX_GRANT_TOKEN_LENGTH, onlyRelayScope } from './relayTokenIssuance';

const SUBJECT_TOKEN_TYPES = new Set([ACCESS_TOKEN_TYPE, ID_TOKEN_TYPE, JWT_TOKEN_TYPE]);

/** The gateway's client registration, for oidc-provider's static `clients`. */
export const GATEWAY_CLIENT = {
  client_id: GATEWAY_CLIENT_ID,
  client_name: 'Gatehouse gateway',
  token_endpoint_auth_method: 'none',
  grant_types: [TOKEN_EXCHANGE_GRANT],
  response_types: [],
  redirect_uris: [],
};

export function registerGatewayTokenExchange(
  server: AuthorizationServer,
  authenticator: BearerAuthenticator,
  revocations: RevocationList,
): void {
  server.provider.registerGrantType(
    TOKEN_EXCHANGE_GRANT,
    async (ctx: ProviderContext) => {
      const { params, client } = ctx.oidc;
      // A client that registered itself (DCR, CIMD) may name this grant; only the gateway is given it.
      if (client.clientId !== GATEWAY_CLIENT_ID) {
        throw new OAuthErrors.UnauthorizedClient(`token exchange is for the Gatehouse gateway (${GATEWAY_CLIENT_ID}) only`);
      }
      const subjectToken = params.subject_token;
      if (typeof subjectToken !== 'string' || subjectToken === '' || subjectToken.length > MAX_GRANT_TOKEN_LENGTH) {
        throw new OAuthErrors.InvalidRequest('subject_token is missing or too long');
      }
      if (typeof params.subject_token_type !== 'string' || !SUBJECT_TOKEN_TYPES.has(params.subject_token_type)) {
        throw new OAuthErrors.InvalidRequest(`subject_token_type must be one of ${[...SUBJECT_TOKEN_TYPES].join(', ')}`);
      }
      if (params.requested_token_type !== undefined && params.requested_token_type !== ACCESS_TOKEN_TYPE) {
        throw new OAuthErrors.InvalidRequest(`requested_token_type can only be ${ACCESS_TOKEN_TYPE}`);
      }
      if (params.actor_token !== undefined) throw new OAuthErrors.InvalidRequest('delegation (actor_token) is not supported');
      onlyRelayScope(params, 'a token exchange');
      const resource = params.resource;
      if (typeof resource !== 'string' || server.serverIdOf(resource) === undefined) {
        throw new OAuthErrors.InvalidTarget('resource must be one relay server of this policy server (<url>/relay/<server>/mcp)');
      }
      if (!ctx.get('DPoP'))
        throw new OAuthErrors.InvalidRequest('a DPoP proof is required: the relay tokens of this exchange are bound to a key');

      let identity;
      try {
        identity = await authenticator.authenticate(`Bearer ${subjectToken}`);
      } catch (error) {
        if (error instanceof AuthenticationError) throw refused(`subject token refused: ${error.description ?? error.message}`);
        throw error;
      }
      if (identity.issuer === 'github') throw refused('GitHub tokens are not exchanged for relay tokens');
      const revocation = await revocations.find(identity);
      if (revocation) throw refused(`access was revoked by an admin at ${revocation.revokedAt}`);
      // Only now is the proof's id claimed: nobody without a token of the org's IdP can fill the once-used store.
      const jkt = (await dpopThumbprint(ctx, server))!;

      const exp = identity.claims.exp;
      const secondsLeft = typeof exp === 'number' ? exp - Math.floor(Date.now() / 1000) : ACCESS_TOKEN_TTL_SECONDS;
      if (secondsLeft <= 0) throw refused('subject token has expired');
      const accountId = await server.remember(personFrom(identity.issuer, { ...identity.claims, sub: identity.sub }));
      await issueRelayToken(ctx, server, {
        accountId,
        gty: 'token-exchange',
        resource,
        jkt,
        expiresIn: Math.min(ACCESS_TOKEN_TTL_SECONDS, secondsLeft),
      });
      // RFC 8693 §2.2.1: the exchange says what kind of token it issued.
      (ctx.body as Record<string, unknown>).issued_token_type = ACCESS_TOKEN_TYPE;
    },
    ['subject_token', 'subject_token_type', 'requested_token_type', 'scope', 'resource', 'actor_token'],
  );
}
