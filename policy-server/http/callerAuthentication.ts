/**
 * Who may call what. Every `/v1` route needs an IdP bearer token (BearerAuthenticator); the
 * relay also takes the policy server's own relay tokens when it is an authorization server;
 * revoked users and sessions are refused everywhere; admin routes also need the caller to
 * be in one of the current policy's `admins` groups. There is no other kind of account.
 */
import type { RequestHandler, Response } from 'express';
import { compileEffectivePolicy } from '../../common/policy/effectivePolicy';
import { ID_PATTERN } from '../../common/policy/policyDocument';
import type { CallerIdentity } from '../../common/policy/identity';
import { AuthenticationError, type BearerAuthenticator } from '../auth/bearerAuthenticator';
import type { RelayAccess } from '../authorization/relayAccess';
import type { PolicyService } from '../policies/policyService';
import type { RevocationList } from '../revocations/revocationList';
import { ApiError } from './apiErrors';

/**
 * `acceptRevoked` is for audit ingest only: a revoked user's gateway may still hand in the
 * trail of what was done before the revocation; refusing it would lose exactly the
 * events an investigation wants. Everything else refuses revoked callers.
 */
export function authenticateCaller(
  authenticator: BearerAuthenticator,
  revocations: RevocationList,
  options: { acceptRevoked?: boolean } = {},
): RequestHandler {
  return async (req, res, next) => {
    const caller = await authenticator.authenticate(req.get('authorization'));
    if (!options.acceptRevoked) await refuseRevoked(revocations, caller);
    res.locals.caller = caller;
    next();
  };
}

/**
 * For `/relay/<server>/mcp`: the IdP's tokens as everywhere, and when the policy server is
 * an authorization server (`relayAccess`), also its own tokens for exactly that relay
 * server (or only those, bound to a key, with `--relay-requires-dpop`); a refusal then
 * points the client at the server's protected-resource metadata.
 */
export function authenticateRelayCaller(
  authenticator: BearerAuthenticator,
  revocations: RevocationList,
  relayAccess: RelayAccess | undefined,
): RequestHandler {
  return async (req, res, next) => {
    // A server id as policies spell them: an encoded one (`%78`) names none here, whatever the route decodes it to.
    const pathId = /^\/([^/]+)\/mcp$/.exec(req.path)?.[1];
    const serverId = pathId !== undefined && ID_PATTERN.test(pathId) ? pathId : undefined;
    try {
      // Deny when unsure: a path that names no relay server gets no IdP-token check in its place.
      if (relayAccess?.keyBoundOnly && serverId === undefined) throw AuthenticationError.invalidToken('no relay server at this path');
      const caller =
        relayAccess && serverId !== undefined && (relayAccess.keyBoundOnly || relayAccess.carriesOurToken(req))
          ? await relayAccess.authenticate(req, serverId)
          : await authenticator.authenticate(req.get('authorization'));
      await refuseRevoked(revocations, caller);
      res.locals.caller = caller;
    } catch (error) {
      if (relayAccess && serverId !== undefined && error instanceof AuthenticationError) throw relayAccess.challenge(error, serverId);
      throw error;
    }
    next();
  };
}

async function refuseRevoked(revocations: RevocationList, caller: CallerIdentity): Promise<void> {
  const revocation = await revocations.find(caller);
  if (!revocation) return;
  const what = revocation.sessionId === undefined ? `Access for ${caller.sub}` : `Session ${revocation.sessionId} of ${caller.sub}`;
  throw new ApiError(
    403,
    'revoked',
    `${what} was revoked by an admin at ${revocation.revokedAt}${revocation.reason ? ` (${revocation.reason})` : ''}. Ask your admin to restore it.`,
  );
}

export function requireAdmin(policies: PolicyService): RequestHandler {
  return async (_req, res, next) => {
    const caller = callerOf(res);
    const current = await policies.current();
    if (!current) {
      throw new ApiError(
        403,
        'forbidden',
        'No policy has been published yet, so there are no admins. Start the policy server with --bootstrap-policy <file> to publish the first policy.',
      );
    }
    if (!compileEffectivePolicy(current.document, current.version, caller).admin) {
      const name = caller.email ?? caller.username ?? caller.sub;
      throw new ApiError(
        403,
        'forbidden',
        `${name} is not in an admin group (admins: ${current.document.admins.join(', ')}). Ask an admin to add you to one in the org policy.`,
      );
    }
    next();
  };
}

export function callerOf(res: Response): CallerIdentity {
  const caller = res.locals.caller as CallerIdentity | undefined;
  if (!caller) throw new Error('route is missing authenticateCaller');
  return caller;
}
