/**
 * What the authorization server's own grants (identityAssertionGrant.ts,
 * gatewayTokenExchange.ts) share: the DPoP proof with a token request, the relay token they
 * issue, and refusals that say which check failed. oidc-provider's built-in grants do this
 * themselves; a custom grant handler is given only the request.
 */
import { DpopProofError, verifyDpopProof } from './dpopProof';
import { OAuthErrors, type ProviderContext } from './oidcProvider';
import { RELAY_SCOPE, type AuthorizationServer } from './authorizationServer';

/** The longest token read from a token request (a JWT is a few hundred bytes plus the person's claims). */
export const MAX_GRANT_TOKEN_LENGTH = 16 * 1024;

/** Refuses any scope but the relay scope (none asked means the relay scope). */
export function onlyRelayScope(params: ProviderContext['oidc']['params'], grant: string): void {
  if (typeof params.scope === 'string' && params.scope.split(' ').some((scope) => scope && scope !== RELAY_SCOPE)) {
    throw new OAuthErrors.InvalidScope(`only the ${RELAY_SCOPE} scope is granted for ${grant}`);
  }
}

/** The thumbprint of the key a DPoP proof with a token request proves, if one came (RFC 9449 §5). */
export async function dpopThumbprint(ctx: ProviderContext, server: AuthorizationServer): Promise<string | undefined> {
  const proof = ctx.get('DPoP');
  if (!proof) return undefined;
  try {
    return await verifyDpopProof(proof, { method: 'POST', url: `${server.issuer}/token` }, server.state);
  } catch (error) {
    if (error instanceof DpopProofError) throw new OAuthErrors.InvalidDpopProof(error.message);
    throw error;
  }
}

/** Issues a relay token for one relay server as the token response (bound to `jkt` when given). */
export async function issueRelayToken(
  ctx: ProviderContext,
  server: AuthorizationServer,
  grant: { accountId: string; gty: string; resource: string; jkt: string | undefined; expiresIn?: number },
): Promise<void> {
  const { provider, client } = ctx.oidc;
  const token = new provider.AccessToken({
    accountId: grant.accountId,
    client,
    gty: grant.gty,
    ...(grant.expiresIn !== undefined ? { expiresIn: grant.expiresIn } : {}),
  });
  token.resourceServer = new provider.ResourceServer(grant.resource, server.resourceServerInfo(grant.resource));
  token.scope = RELAY_SCOPE;
  if (grant.jkt) token.setThumbprint('jkt', grant.jkt);
  ctx.oidc.entity('AccessToken', token);
  ctx.body = {
    access_token: await token.save(),
    token_type: token.tokenType,
    expires_in: token.expiration,
    scope: RELAY_SCOPE,
  };
}
