/**
 * Enterprise-managed authorization (the MCP extension
 * `io.modelcontextprotocol/enterprise-managed-authorization`, SEP-990): a client the
 * person already signed in to at the org's IdP asks the IdP (RFC 8693 token exchange) for
 * an Identity Assertion JWT Authorization Grant (ID-JAG) for this authorization server, and
 * redeems it here with the RFC 7523 JWT bearer grant for a relay token. No browser, no
 * consent screen: the IdP decided the person may use the client, the policy decides calls.
 *
 * An assertion is accepted only if the org's IdP (`--oidc-issuer`, the one trusted issuer)
 * signed it for this authorization server: `typ` oauth-id-jag+jwt, its `iss`, `aud` = this
 * issuer, unexpired, no group overage (oidcVerifier.ts), issued to the client redeeming it
 * (`client_id`), for a relay server (`resource`), carrying every claim the policy's groups
 * and rules match on (`claimsMatchedOn`: an IdP may put fewer claims in an ID-JAG than in
 * its ID tokens, and a missing `groups` would let a deny-by-group rule pass by), and never
 * redeemed before (`jti`). A DPoP proof with the request binds the token to its key, as
 * for the code grant.
 */
import { JWT_BEARER_GRANT } from '../../common/oauth/identityAssertion';
import type { OidcVerifier } from '../auth/oidcVerifier';
import { personFrom } from './federatedSignIn';
import { OAuthErrors, refused, type ProviderContext } from './oidcProvider';
import type { AuthorizationServer } from './authorizationServer';
import { dpopThumbprint, issueRelayToken, MAX_GRANT_TOKEN_LENGTH, onlyRelayScope } from './relayTokenIssuance';
/** Longer than any clock tolerance the assertion verifier allows. */
const REPLAY_MARGIN_SECONDS = 120;

export function registerIdentityAssertionGrant(
  server: AuthorizationServer,
  assertions: OidcVerifier,
  /** The claims the current policy matches people on (claimsMatchedOn). */
  claimsMatchedOn: () => Promise<readonly string[]>,
): void {
  server.provider.registerGrantType(
    JWT_BEARER_GRANT,
    async (ctx: ProviderContext) => {
      const { params, client } = ctx.oidc;
      // A public client proves nothing about who redeems: anyone holding a leaked assertion could quote its client_id.
      if (client.tokenEndpointAuthMethod === 'none') {
        throw new OAuthErrors.UnauthorizedClient('identity assertions are redeemed only by clients that authenticate');
      }
      const assertion = params.assertion;
      if (typeof assertion !== 'string' || assertion === '' || assertion.length > MAX_GRANT_TOKEN_LENGTH) {
        throw new OAuthErrors.InvalidRequest('assertion is missing or too long');
      }
      onlyRelayScope(params, 'an identity assertion');
      const verdict = await assertions.verify(assertion);
      if (!verdict.ok) throw refused(`identity assertion refused: ${verdict.reason}`);
      const claims = verdict.identity.claims;
      if (claims.client_id !== client.clientId) throw refused('identity assertion was issued to another client');
      const resource = typeof claims.resource === 'string' ? claims.resource : undefined;
      if (resource === undefined || server.serverIdOf(resource) === undefined) {
        throw new OAuthErrors.InvalidTarget('identity assertion names no relay server of this policy server as its resource');
      }
      if (params.resource !== undefined && params.resource !== resource) {
        throw new OAuthErrors.InvalidTarget('resource differs from the identity assertion');
      }
      const missing = (await claimsMatchedOn()).filter((claim) => claims[claim] === undefined);
      if (missing.length > 0) {
        throw refused(
          `identity assertion lacks the claims the policy matches people on (${missing.join(', ')}); have the IdP put them in its ID-JAGs`,
        );
      }
      const jkt = await dpopThumbprint(ctx, server);
      // Last, so a request refused above does not use up the assertion.
      if (typeof claims.jti !== 'string' || claims.jti === '' || typeof claims.exp !== 'number') {
        throw refused('identity assertion has no jti');
      }
      // Remembered past the verifier's clock tolerance: an assertion still accepted a little after exp must still be refused twice.
      const rememberUntil = Math.max(claims.exp, Math.floor(Date.now() / 1000)) + REPLAY_MARGIN_SECONDS;
      if (!(await server.state.firstUse(`id-jag ${verdict.identity.issuer} ${claims.jti}`, rememberUntil))) {
        throw refused('identity assertion was already redeemed');
      }

      const accountId = await server.remember(personFrom(verdict.identity.issuer, { ...claims, sub: verdict.identity.sub }));
      await issueRelayToken(ctx, server, { accountId, gty: 'jwt-bearer', resource, jkt });
    },
    ['assertion', 'scope', 'resource'],
  );
}
