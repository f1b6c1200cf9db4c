/**
 * Every id the extension contributes or stores, in one place: they must match
 * package.json's `contributes`, and renaming one silently breaks users' settings and keys.
 */
export const EXTENSION_ID = 'gatehouse.gatehouse';

export const MCP_PROVIDER_ID = 'gatehouse';

export const VIEW_CONTAINER_ID = 'gatehouse';
export const VIEWS = {
  catalog: 'gatehouse.catalog',
  reviews: 'gatehouse.reviews',
} as const;

export const COMMANDS = {
  restartGateway: 'gatehouse.restartGateway',
  showLog: 'gatehouse.showLog',
  refresh: 'gatehouse.refresh',
  refreshReviews: 'gatehouse.reviews.refresh',
  approveReview: 'gatehouse.reviews.approve',
  denyReview: 'gatehouse.reviews.deny',
  enableServer: 'gatehouse.server.enable',
  disableServer: 'gatehouse.server.disable',
  showScopes: 'gatehouse.showScopes',
  showAudit: 'gatehouse.showAudit',
  /** (format, target uri, filter): writes the trail without a save dialog, for scripts and tests. */
  exportAudit: 'gatehouse.audit.export',
  callTool: 'gatehouse.tool.call',
  signIn: 'gatehouse.signIn',
  signOut: 'gatehouse.signOut',
} as const;

/** Keys in SecretStorage: tokens live only there. */
export const SECRET_KEYS = {
  /** The `gatehouse-oidc` session: access, refresh and ID token claims. */
  oidcSession: 'gatehouse.oidc.session',
} as const;

/** Context keys for `when` clauses in package.json. */
export const CONTEXT_KEYS = {
  /** The gateway's state kind: not-configured, starting, ready, failed (welcome content). */
  gatewayState: 'gatehouse.gatewayState',
} as const;

/** Keys in the extension's global state (not secrets: those go to SecretStorage). */
export const STATE_KEYS = {
  enabledServers: 'gatehouse.enabledServers',
} as const;

/** The MCP server definition id VS Code gives a Gatehouse server (provider-scoped). */
export function mcpDefinitionId(serverId: string): string {
  return `${EXTENSION_ID}/${serverId}`;
}

export const SETTINGS = {
  section: 'gatehouse',
  /** Unmanaged mode: a local gateway config (YAML) whose servers are all allowed. */
  gatewayConfig: 'gatewayConfig',
  /** Managed mode: the org policy server and the keys its bundles must be signed with. */
  policyServerUrl: 'policyServer.url',
  policyServerKeysFile: 'policyServer.keysFile',
  /** Managed mode without VS Code sign-in (scripts, tests): a 0600 file holding the user's IdP token. */
  policyServerTokenFile: 'policyServer.tokenFile',
  /** How the org signs developers in: oidc | microsoft | github (empty: the token file). */
  signInProvider: 'signIn.provider',
  signInScopes: 'signIn.scopes',
  signInOidcIssuer: 'signIn.oidc.issuer',
  signInOidcClientId: 'signIn.oidc.clientId',
  /** RFC 8707 resource (the policy server's audience) for the access token. */
  signInOidcResource: 'signIn.oidc.resource',
  signInMicrosoftTenant: 'signIn.microsoft.tenant',
  signInMicrosoftClientId: 'signIn.microsoft.clientId',
} as const;
