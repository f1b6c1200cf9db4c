/**
 * The local IdP (localIdp.ts) is built on the same typed slice of oidc-provider as the
 * policy server's authorization server (policy-server/authorization/oidcProvider.ts).
 */
import type { Interaction, Provider } from '../../policy-server/authorization/oidcProvider';

export {
  MemoryStore,
  OAuthErrors,
  ProviderClass,
  type Interaction,
  type Provider,
  type ProviderContext,
} from '../../policy-server/authorization/oidcProvider';

/**
 * Consents to exactly what the interaction says is missing (scopes, claims, resource
 * scopes): the org, not the user, decides what a client may reach, so there is no consent screen.
 */
export async function grantWhatIsAsked(provider: Provider, interaction: Interaction, accountId: string): Promise<string> {
  const { prompt, params, grantId } = interaction;
  const grant =
    (grantId ? await provider.Grant.find(grantId) : undefined) ?? new provider.Grant({ accountId, clientId: String(params.client_id) });
  const details = prompt.details as {
    missingOIDCScope?: string[];
    missingOIDCClaims?: string[];
    missingResourceScopes?: Record<string, string[]>;
  };
  if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
  if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(details.missingResourceScopes ?? {}))
    grant.addResourceScope(indicator, scopes.join(' '));
  return grant.save();
}
