/**
 * The effective policy of one user: the part of the org policy that applies to them, with
 * their groups resolved. The policy server compiles and signs it (the JWS payload); the
 * gateway verifies it and builds its decision tables from it. Rules keep document order.
 */
import type { CallerIdentity } from './identity';
import type { CatalogServerEntry, PolicyDocument, PolicyGroup, PolicyRule } from './policyDocument';

export type EffectiveRule = Omit<PolicyRule, 'principals'>;

export interface BlockedServer {
  id: string;
  title: string;
  reason: string;
}

/** What a user is told about a catalog server no rule lets them use. */
export const NO_RULE_REASON = 'No rule in the org policy lets you use it; ask an admin if you need it.';

export interface EffectivePolicy {
  org: string;
  /** Version of the org policy this was compiled from. */
  ver: number;
  sub: string;
  email?: string;
  groups: string[];
  admin: boolean;
  /** Catalog entries the user may reach at all (some allow or confirm rule names them). */
  servers: CatalogServerEntry[];
  /** The rest of the catalog, named only (never its transport), so the user sees why it is not offered. */
  blocked?: BlockedServer[];
  rules: EffectiveRule[];
  guardrails: PolicyDocument['guardrails'];
  /** Stored upstream credentials an admin revoked: the gateway deletes tokens obtained before `revokedAt`. */
  credentialRevocations?: Array<{ serverId: string; revokedAt: string }>;
}

export function resolveGroups(policy: PolicyDocument, identity: CallerIdentity): string[] {
  return policy.groups.filter((group) => groupMatches(group, identity)).map((group) => group.id);
}

/**
 * The caller's email, only if the IdP vouches for it (`email_verified: true`). Without
 * that, an email is whatever the account owner typed (Entra's optional `email`, GitHub's
 * public email): trusting it would let anyone put an admin's address on their account.
 */
export function trustedEmail(identity: CallerIdentity): string | undefined {
  const verified = identity.claims.email_verified;
  if (verified !== true && verified !== 'true') return undefined;
  return identity.email?.toLowerCase();
}

/**
 * The token claims this policy's groups and rules match people on: for an identity whose
 * token may simply leave a claim out (an ID-JAG carries what its IdP was set up to put in),
 * a missing one would make a deny rule pass by, so such an identity is refused instead.
 */
export function claimsMatchedOn(policy: PolicyDocument): string[] {
  const needed = new Set<string>();
  const byEmail = () => (needed.add('email'), needed.add('email_verified'));
  for (const group of policy.groups) {
    for (const match of group.match) {
      if ('claim' in match) needed.add(match.claim);
      else if ('emailDomain' in match) byEmail();
      else if ('user' in match && match.user.includes('@')) byEmail();
    }
  }
  for (const rule of policy.rules) if (rule.principals.some((p) => p.startsWith('user:') && p.includes('@'))) byEmail();
  return [...needed].sort();
}

function groupMatches(group: PolicyGroup, identity: CallerIdentity): boolean {
  const email = trustedEmail(identity);
  return group.match.some((match) => {
    if ('claim' in match) {
      const value = identity.claims[match.claim];
      return Array.isArray(value) ? value.some((v) => String(v) === match.equals) : value !== undefined && String(value) === match.equals;
    }
    if ('emailDomain' in match) return email !== undefined && email.endsWith(`@${match.emailDomain.toLowerCase()}`);
    if ('githubOrg' in match)
      return identity.issuer === 'github' && (identity.githubOrgs ?? []).some((o) => o.toLowerCase() === match.githubOrg.toLowerCase());
    if ('githubTeam' in match)
      return identity.issuer === 'github' && (identity.githubTeams ?? []).some((t) => t.toLowerCase() === match.githubTeam.toLowerCase());
    return match.user === identity.sub || (email !== undefined && match.user.toLowerCase() === email);
  });
}

function principalMatches(principal: string, identity: CallerIdentity, groups: ReadonlySet<string>): boolean {
  if (principal === '*') return true;
  if (principal.startsWith('group:')) return groups.has(principal.slice('group:'.length));
  const user = principal.slice('user:'.length);
  const email = trustedEmail(identity);
  return user === identity.sub || (email !== undefined && user.toLowerCase() === email);
}

export function compileEffectivePolicy(policy: PolicyDocument, version: number, identity: CallerIdentity): EffectivePolicy {
  const groups = resolveGroups(policy, identity);
  const groupSet = new Set(groups);
  const rules: EffectiveRule[] = policy.rules
    .filter((rule) => rule.principals.some((p) => principalMatches(p, identity, groupSet)))
    .map(({ principals: _principals, ...rule }) => rule);
  const reachable = new Set<string>();
  let everyServer = false;
  for (const rule of rules) {
    if (rule.effect === 'deny') continue;
    for (const server of rule.servers) {
      if (server === '*') everyServer = true;
      else reachable.add(server);
    }
  }
  return {
    org: policy.org,
    ver: version,
    sub: identity.sub,
    // Only a verified email reaches the bundle (and CEL's user.email).
    ...(trustedEmail(identity) ? { email: trustedEmail(identity) } : {}),
    groups,
    admin: policy.admins.some((group) => groupSet.has(group)),
    servers: policy.servers.filter((server) => everyServer || reachable.has(server.id)),
    blocked: policy.servers
      .filter((server) => !everyServer && !reachable.has(server.id))
      .map((server) => ({ id: server.id, title: server.title, reason: NO_RULE_REASON })),
    rules,
    guardrails: policy.guardrails,
  };
}
