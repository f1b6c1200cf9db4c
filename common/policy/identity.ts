/**
 * Who a caller is, as the policy server established it from a verified IdP token. The
 * policy's `groups` section maps these facts to policy groups; nothing else does.
 */
export interface CallerIdentity {
  /** Stable subject: the IdP's `sub` for OIDC, `github:<numeric id>` for GitHub. */
  sub: string;
  /** Which IdP vouched for it: the OIDC issuer URL or `github`. */
  issuer: string;
  email?: string;
  /** Login name where the IdP has one (GitHub login, preferred_username). */
  username?: string;
  /** Verified token claims (OIDC) that group rules may match, e.g. `groups`, `roles`, `tid`. */
  claims: Record<string, unknown>;
  /** GitHub org logins and `org/team` slugs the user belongs to (GitHub sign-in only). */
  githubOrgs?: string[];
  githubTeams?: string[];
}
