/**
 * store/ holds the PolicyStore (this file and its implementations) and what every store of
 * the policy server shares: the PostgreSQL database (`postgresDatabase.ts`: the pool and
 * every table's migrations) and private files.
 *
 * Where PostgreSQL code lives: each capability keeps its PostgreSQL implementation next to
 * its interface and its file or memory one (`audit/postgresAuditStore.ts`,
 * `reviews/reviewStore.ts`, `relay/relaySessions.ts`, `secrets/secretStore.ts`,
 * `events/clusterEvents.ts`, `postgresPolicyStore.ts` here), so whoever changes what a
 * capability stores finds and changes both backends in one folder; only the schema is
 * central, because migrations must run in one order on one database.
 *
 * Durable state of the policy server behind one small interface: published policy versions
 * (append-only; a rollback is a new version) and revocations. The embedded implementation
 * is lowdb (`lowdbPolicyStore.ts`); replicas share `postgresPolicyStore.ts`, so everything
 * here is async and no caller keeps state the store does not have (a short-lived cache
 * aside: `cachedPolicyStore.ts`).
 */
import type { PolicyVersionSummary, RevocationRecord } from '../../common/policy/policyServerApi';

export type { PolicyVersionSummary, RevocationRecord };

export interface PolicyVersionRecord extends PolicyVersionSummary {
  /** The YAML exactly as published, so history, diff and rollback show what admins wrote. */
  text: string;
}

export interface NewPolicyVersion {
  text: string;
  sha256: string;
  publishedAt: string;
  publishedBy: string;
  rolledBackFrom?: number;
}

export type NewRevocation = Omit<RevocationRecord, 'id'>;

export interface PolicyStore {
  /** Stores a new version with the next number; concurrent appends get distinct numbers. */
  appendVersion(entry: NewPolicyVersion): Promise<PolicyVersionRecord>;
  latestVersion(): Promise<PolicyVersionRecord | undefined>;
  getVersion(version: number): Promise<PolicyVersionRecord | undefined>;
  /** Oldest first. */
  listVersions(): Promise<PolicyVersionSummary[]>;
  /** Adds a revocation unless the same (sub, sessionId) is already revoked; returns the one in force. */
  addRevocation(entry: NewRevocation): Promise<RevocationRecord>;
  /** Lifts a revocation of exactly (sub, sessionId); false when there was none. */
  removeRevocation(sub: string, sessionId: string | undefined, serverId?: string): Promise<boolean>;
  listRevocations(): Promise<RevocationRecord[]>;
  close(): Promise<void>;
}
