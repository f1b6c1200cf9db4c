/**
 * For stores other processes write too (PostgreSQL shared by replicas): the two reads every
 * request makes (the latest policy version, the revocation list) are kept for at most
 * `maxAgeMs`, and dropped at once when this replica writes or another replica's event
 * arrives (LISTEN/NOTIFY, events/clusterEvents.ts). So a revocation or publish made anywhere
 * is in force here as soon as its event arrives, and within `maxAgeMs` if the event was lost.
 */
import type { PolicyVersionSummary, RevocationRecord } from '../../common/policy/policyServerApi';
import type { NewPolicyVersion, NewRevocation, PolicyStore, PolicyVersionRecord } from './policyStore';

interface Cached<T> {
  value: Promise<T>;
  at: number;
}

export class CachedPolicyStore implements PolicyStore {
  private latest: Cached<PolicyVersionRecord | undefined> | undefined;
  private revocations: Cached<RevocationRecord[]> | undefined;

  constructor(
    private readonly inner: PolicyStore,
    private readonly maxAgeMs = 1_000,
  ) {}

  /** Another replica changed something (or this one did): read again next time. */
  invalidate(): void {
    this.latest = undefined;
    this.revocations = undefined;
  }

  latestVersion(): Promise<PolicyVersionRecord | undefined> {
    if (!this.isFresh(this.latest)) {
      const entry = { value: this.inner.latestVersion(), at: Date.now() };
      entry.value.catch(() => {
        if (this.latest === entry) this.latest = undefined;
      }); // a failed read is not kept
      this.latest = entry;
    }
    return this.latest!.value;
  }

  listRevocations(): Promise<RevocationRecord[]> {
    if (!this.isFresh(this.revocations)) {
      const entry = { value: this.inner.listRevocations(), at: Date.now() };
      entry.value.catch(() => {
        if (this.revocations === entry) this.revocations = undefined;
      });
      this.revocations = entry;
    }
    return this.revocations!.value;
  }

  async appendVersion(entry: NewPolicyVersion): Promise<PolicyVersionRecord> {
    try {
      return await this.inner.appendVersion(entry);
    } finally {
      this.invalidate();
    }
  }

  async addRevocation(entry: NewRevocation): Promise<RevocationRecord> {
    try {
      return await this.inner.addRevocation(entry);
    } finally {
      this.invalidate();
    }
  }

  async removeRevocation(sub: string, sessionId: string | undefined, serverId?: string): Promise<boolean> {
    try {
      return await this.inner.removeRevocation(sub, sessionId, serverId);
    } finally {
      this.invalidate();
    }
  }

  getVersion(version: number): Promise<PolicyVersionRecord | undefined> {
    return this.inner.getVersion(version);
  }

  listVersions(): Promise<PolicyVersionSummary[]> {
    return this.inner.listVersions();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private isFresh(cached: Cached<unknown> | undefined): boolean {
    return cached !== undefined && Date.now() - cached.at <= this.maxAgeMs;
  }
}
