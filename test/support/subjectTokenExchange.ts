/**
 * An upstream MCP server's authorization server that takes the policy server's subject
 * tokens (credential mode `relay-oauth`), added to the local IdP (TEST FIXTURE on the real
 * oidc-provider, as Keycloak's or Auth0's token exchange is set up to trust an external
 * issuer): RFC 8693 token exchange of a JWT from the trusted issuer, checked with its key
 * set (fetched from `<issuer>/jwks`, as its discovery names it), for an access token to the
 * MCP server this IdP authorizes for. Counts the exchanges, so tests see when a kept token
 * was used instead.
 */
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT } from '../../common/oauth/identityAssertion';
import { OAuthErrors, type Provider, type ProviderContext } from './oidcProviderApi';

export interface SubjectExchange {
  /** Trust subject tokens from this issuer (the policy server starts after this IdP). */
  trust(issuer: string): void;
  /** Subject tokens exchanged so far. */
  readonly exchanges: number;
}

export function exchangeSubjectTokens(
  provider: Provider,
  issuer: string,
  resource: { url: string; scopes: string[]; info: () => Record<string, unknown> },
): SubjectExchange {
  let trusted: { issuer: string; keys: ReturnType<typeof createRemoteJWKSet> } | undefined;
  let exchanges = 0;
  provider.registerGrantType(
    TOKEN_EXCHANGE_GRANT,
    async (ctx: ProviderContext) => {
      const { params, client } = ctx.oidc;
      if (params.subject_token_type !== JWT_TOKEN_TYPE || (params.requested_token_type ?? ACCESS_TOKEN_TYPE) !== ACCESS_TOKEN_TYPE) {
        throw new OAuthErrors.InvalidRequest('only JWT subject tokens are exchanged, and only for access tokens');
      }
      if (params.resource !== resource.url)
        throw new OAuthErrors.InvalidTarget('this authorization server issues tokens for one MCP server');
      const scope = typeof params.scope === 'string' ? params.scope : resource.scopes.join(' ');
      if (scope.split(' ').some((s) => !resource.scopes.includes(s))) throw new OAuthErrors.InvalidScope('scope not offered');
      let subject: string;
      try {
        if (!trusted) throw new Error('no trusted issuer');
        const { payload } = await jwtVerify(String(params.subject_token ?? ''), trusted.keys, { issuer: trusted.issuer, audience: issuer });
        subject = String(payload.sub);
      } catch {
        throw Object.assign(new OAuthErrors.InvalidGrant('subject_token is not from the trusted issuer'), {
          error_description: 'subject_token is not from the trusted issuer, or not for this authorization server',
        });
      }
      const token = new provider.AccessToken({ accountId: subject, client, gty: 'token-exchange' });
      token.resourceServer = new provider.ResourceServer(resource.url, resource.info());
      token.scope = scope;
      ctx.body = {
        access_token: await token.save(),
        issued_token_type: ACCESS_TOKEN_TYPE,
        token_type: 'Bearer',
        expires_in: token.expiration,
        scope,
      };
      exchanges++;
    },
    ['subject_token', 'subject_token_type', 'requested_token_type', 'resource', 'scope', 'audience'],
  );
  return {
    trust: (trustedIssuer) => {
      trusted = { issuer: trustedIssuer, keys: createRemoteJWKSet(new URL(`${trustedIssuer}/jwks`)) };
    },
    get exchanges() {
      return exchanges;
    },
  };
}
