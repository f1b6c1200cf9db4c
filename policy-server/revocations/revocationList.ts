/**
 * Revoked users, sessions and stored upstream credentials. A revocation of a `sub` shuts
 * that user out of every endpoint; one with a `sessionId` shuts out only tokens whose `sid`
 * claim names that session. Revoking pushes `revoked` to the user's open event streams at
 * once; bundles the user's gateway already holds stop working at their expiry at the latest.
 * One with a `serverId` leaves the user in: it revokes the credential their gateway holds
 * for that `user-oauth` server. It is pushed (`credential-revoked`) and listed in the
 * user's effective policy, so a gateway that was offline deletes the token when it is back.
 * Credentials held here (`relay-oauth` tokens) are deleted at once: the server's, or all of
 * a revoked user's (`forgetCredentials`).
 */
import type { CallerIdentity } from '../../common/policy/identity';
import type { EventFanout } from '../events/clusterEvents';
import type { Logger } from '../../common/log/logger';
import type { PolicyStore, RevocationRecord } from '../store/policyStore';

export class RevocationList {
  constructor(
    private readonly store: PolicyStore,
    private readonly events: EventFanout,
    private readonly log: Logger,
    /** Deletes the user's credentials kept at the policy server: for one server, or all. */
    private readonly forgetCredentials: (sub: string, serverId?: string) => Promise<void> = async () => undefined,
  ) {}

  async revoke(
    entry: { sub: string; sessionId?: string; serverId?: string; reason?: string },
    revokedBy: string,
  ): Promise<{ revocation: RevocationRecord; streamsTold: number }> {
    const revocation = await this.store.addRevocation({
      sub: entry.sub,
      ...(entry.sessionId !== undefined ? { sessionId: entry.sessionId } : {}),
      ...(entry.serverId !== undefined ? { serverId: entry.serverId } : {}),
      revokedAt: new Date().toISOString(),
      revokedBy,
      ...(entry.reason !== undefined ? { reason: entry.reason } : {}),
    });
    if (entry.sessionId === undefined) await this.forgetCredentials(entry.sub, entry.serverId);
    const streamsTold =
      entry.serverId !== undefined
        ? this.events.credentialRevoked(entry.sub, entry.serverId)
        : this.events.revoked(entry.sub, entry.sessionId);
    this.log.info('revoked', { sub: entry.sub, sessionId: entry.sessionId, serverId: entry.serverId, by: revokedBy, streamsTold });
    return { revocation, streamsTold };
  }

  async lift(sub: string, sessionId: string | undefined, liftedBy: string, serverId?: string): Promise<boolean> {
    const lifted = await this.store.removeRevocation(sub, sessionId, serverId);
    if (lifted) this.log.info('revocation lifted', { sub, sessionId, by: liftedBy });
    return lifted;
  }

  list(): Promise<RevocationRecord[]> {
    return this.store.listRevocations();
  }

  /** The revocation that shuts this caller out, if any (a revoked credential does not). */
  async find(caller: CallerIdentity): Promise<RevocationRecord | undefined> {
    const sid = typeof caller.claims.sid === 'string' ? caller.claims.sid : undefined;
    const all = await this.store.listRevocations();
    return all.find((r) => r.sub === caller.sub && r.serverId === undefined && (r.sessionId === undefined || r.sessionId === sid));
  }

  /** This user's revoked upstream credentials, for their effective policy. */
  async credentialsOf(sub: string): Promise<Array<{ serverId: string; revokedAt: string }>> {
    const all = await this.store.listRevocations();
    return all.filter((r) => r.sub === sub && r.serverId !== undefined).map((r) => ({ serverId: r.serverId!, revokedAt: r.revokedAt }));
  }
}
