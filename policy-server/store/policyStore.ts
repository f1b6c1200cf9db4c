/**
 * Durable state of the policy server behind one small interface: published policy versions
 * (append-only; a rollback is a new version) and revocations. The embedded implementation
 * is lowdb (`lowdbPolicyStore.ts`); replicas share `postgres/postgresPolicyStore.ts`, so
 * everything here is async and no caller keeps state the store does not have (a short-lived
 * cache aside: `cachedPolicyStore.ts`).
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
