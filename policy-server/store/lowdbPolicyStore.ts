/**
 * The embedded PolicyStore: one lowdb JSON file (`policy-store.json`) in the private data
 * directory. lowdb's writer (steno) replaces the file atomically through a temp file; the
 * process umask (set in main.ts) and a chmod after each write keep it 0600. One process
 * owns the file; several replicas share the PostgreSQL store (`--store`).
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Low } from 'lowdb';
import { JSONFile } from 'lowdb/node';
import { ensurePrivateFile } from '../../common/fs/privateFiles';
import type { PolicyVersionSummary, RevocationRecord } from '../../common/policy/policyServerApi';
import type { NewPolicyVersion, NewRevocation, PolicyStore, PolicyVersionRecord } from './policyStore';
import { describeError } from '../../common/log/logger';

interface StoreData {
  schema: 1;
  versions: PolicyVersionRecord[];
  revocations: RevocationRecord[];
}

export const STORE_FILE = 'policy-store.json';

class PrivateJsonFile<T> extends JSONFile<T> {
  constructor(private readonly path: string) {
    super(path);
  }

  override async write(data: T): Promise<void> {
    await super.write(data);
    ensurePrivateFile(this.path);
  }
}

export class LowdbPolicyStore implements PolicyStore {
  // Mutations run one at a time so version numbers are assigned without races.
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(private readonly db: Low<StoreData>) {}

  static async open(dataDir: string): Promise<LowdbPolicyStore> {
    const path = join(dataDir, STORE_FILE);
    const db = new Low<StoreData>(new PrivateJsonFile<StoreData>(path), { schema: 1, versions: [], revocations: [] });
    try {
      await db.read();
    } catch (error) {
      throw new Error(`cannot read the policy store ${path}: ${describeError(error)}`, { cause: error });
    }
    if (db.data.schema !== 1 || !Array.isArray(db.data.versions) || !Array.isArray(db.data.revocations)) {
      throw new Error(`the policy store ${path} is not a Gatehouse policy store (schema 1)`);
    }
    return new LowdbPolicyStore(db);
  }

  appendVersion(entry: NewPolicyVersion): Promise<PolicyVersionRecord> {
    return this.exclusive(async () => {
      const version = (this.db.data.versions.at(-1)?.version ?? 0) + 1;
      const record: PolicyVersionRecord = { version, ...entry };
      await this.commit(() => this.db.data.versions.push(record));
      return record;
    });
  }

  async latestVersion(): Promise<PolicyVersionRecord | undefined> {
    return this.db.data.versions.at(-1);
  }

  async getVersion(version: number): Promise<PolicyVersionRecord | undefined> {
    return this.db.data.versions.find((v) => v.version === version);
  }

  async listVersions(): Promise<PolicyVersionSummary[]> {
    return this.db.data.versions.map(({ text: _text, ...summary }) => summary);
  }

  addRevocation(entry: NewRevocation): Promise<RevocationRecord> {
    return this.exclusive(async () => {
      const existing = this.db.data.revocations.find(
        (r) => r.sub === entry.sub && r.sessionId === entry.sessionId && r.serverId === entry.serverId,
      );
      // A stored credential revoked again (the user signed in since): the new time counts.
      if (existing && entry.serverId !== undefined) {
        const updated: RevocationRecord = { ...existing, ...entry };
        await this.commit(() => {
          this.db.data.revocations = this.db.data.revocations.map((r) => (r === existing ? updated : r));
        });
        return updated;
      }
      if (existing) return existing;
      const record: RevocationRecord = { id: randomUUID(), ...entry };
      await this.commit(() => this.db.data.revocations.push(record));
      return record;
    });
  }

  removeRevocation(sub: string, sessionId: string | undefined, serverId?: string): Promise<boolean> {
    return this.exclusive(async () => {
      const remaining = this.db.data.revocations.filter((r) => !(r.sub === sub && r.sessionId === sessionId && r.serverId === serverId));
      if (remaining.length === this.db.data.revocations.length) return false;
      await this.commit(() => {
        this.db.data.revocations = remaining;
      });
      return true;
    });
  }

  async listRevocations(): Promise<RevocationRecord[]> {
    return [...this.db.data.revocations];
  }

  async close(): Promise<void> {
    await this.queue.catch(() => undefined);
  }

  /** Applies a change in memory and writes it; a failed write undoes the change, so memory never runs ahead of the file. */
  private async commit(change: () => void): Promise<void> {
    const before = structuredClone(this.db.data);
    change();
    try {
      await this.db.write();
    } catch (error) {
      this.db.data = before;
      throw new Error(`cannot write the policy store: ${describeError(error)}`, { cause: error });
    }
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
