/**
 * PolicyStore on PostgreSQL, for several replicas: versions are numbered by the database
 * (the next number under a transaction-scoped advisory lock, so two replicas publishing at
 * once get distinct numbers), revocations are unique per (sub, session, server).
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { PolicyVersionSummary, RevocationRecord } from '../../common/policy/policyServerApi';
import type { NewPolicyVersion, NewRevocation, PolicyStore, PolicyVersionRecord } from './policyStore';

const APPEND_LOCK = 0x7665_7273;

interface VersionRow {
  version: number;
  text: string;
  sha256: string;
  published_at: string;
  published_by: string;
  rolled_back_from: number | null;
}

interface RevocationRow {
  id: string;
  sub: string;
  session_id: string | null;
  server_id: string | null;
  revoked_at: string;
  revoked_by: string;
  reason: string | null;
}

function summaryOf(row: VersionRow): PolicyVersionSummary {
  return {
    version: row.version,
    sha256: row.sha256,
    publishedAt: row.published_at,
    publishedBy: row.published_by,
    ...(row.rolled_back_from !== null ? { rolledBackFrom: row.rolled_back_from } : {}),
  };
}

function revocationOf(row: RevocationRow): RevocationRecord {
  return {
    id: row.id,
    sub: row.sub,
    ...(row.session_id !== null ? { sessionId: row.session_id } : {}),
    ...(row.server_id !== null ? { serverId: row.server_id } : {}),
    revokedAt: row.revoked_at,
    revokedBy: row.revoked_by,
    ...(row.reason !== null ? { reason: row.reason } : {}),
  };
}

export class PostgresPolicyStore implements PolicyStore {
  constructor(private readonly pool: pg.Pool) {}

  async appendVersion(entry: NewPolicyVersion): Promise<PolicyVersionRecord> {
    const client = await this.pool.connect();
    try {
      await client.query('begin');
      await client.query('select pg_advisory_xact_lock($1)', [APPEND_LOCK]);
      const { rows } = await client.query<VersionRow>(
        `insert into policy_versions (version, text, sha256, published_at, published_by, rolled_back_from)
         select coalesce(max(version), 0) + 1, $1, $2, $3, $4, $5 from policy_versions returning *`,
        [entry.text, entry.sha256, entry.publishedAt, entry.publishedBy, entry.rolledBackFrom ?? null],
      );
      await client.query('commit');
      return { ...summaryOf(rows[0]!), text: rows[0]!.text };
    } catch (error) {
      await client.query('rollback').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  async latestVersion(): Promise<PolicyVersionRecord | undefined> {
    const { rows } = await this.pool.query<VersionRow>('select * from policy_versions order by version desc limit 1');
    return rows[0] ? { ...summaryOf(rows[0]), text: rows[0].text } : undefined;
  }

  async getVersion(version: number): Promise<PolicyVersionRecord | undefined> {
    const { rows } = await this.pool.query<VersionRow>('select * from policy_versions where version = $1', [version]);
    return rows[0] ? { ...summaryOf(rows[0]), text: rows[0].text } : undefined;
  }

  async listVersions(): Promise<PolicyVersionSummary[]> {
    const { rows } = await this.pool.query<VersionRow>(
      'select version, sha256, published_at, published_by, rolled_back_from from policy_versions order by version',
    );
    return rows.map(summaryOf);
  }

  async addRevocation(entry: NewRevocation): Promise<RevocationRecord> {
    // A stored credential revoked again takes the new time; a user or session revocation in force stays as it is.
    const { rows } = await this.pool.query<RevocationRow>(
      `insert into revocations (id, sub, session_id, server_id, revoked_at, revoked_by, reason) values ($1, $2, $3, $4, $5, $6, $7)
       on conflict (sub, coalesce(session_id, ''), coalesce(server_id, '')) do update
         set revoked_at = case when revocations.server_id is not null then excluded.revoked_at else revocations.revoked_at end,
             revoked_by = case when revocations.server_id is not null then excluded.revoked_by else revocations.revoked_by end,
             reason = case when revocations.server_id is not null then excluded.reason else revocations.reason end
       returning *`,
      [randomUUID(), entry.sub, entry.sessionId ?? null, entry.serverId ?? null, entry.revokedAt, entry.revokedBy, entry.reason ?? null],
    );
    return revocationOf(rows[0]!);
  }

  async removeRevocation(sub: string, sessionId: string | undefined, serverId?: string): Promise<boolean> {
    const result = await this.pool.query(
      `delete from revocations where sub = $1 and coalesce(session_id, '') = $2 and coalesce(server_id, '') = $3`,
      [sub, sessionId ?? '', serverId ?? ''],
    );
    return (result.rowCount ?? 0) > 0;
  }

  async listRevocations(): Promise<RevocationRecord[]> {
    const { rows } = await this.pool.query<RevocationRow>('select * from revocations order by revoked_at, id');
    return rows.map(revocationOf);
  }

  async close(): Promise<void> {
    // The pool belongs to the composition root, which ends it once everything using it is closed.
  }
}
