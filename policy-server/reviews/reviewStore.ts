/**
 * Where reviews are kept: this process's memory (one policy server), or PostgreSQL shared
 * by every replica, so a review queued through one replica is seen and decided through any.
 * Deciding is a compare-and-set on `pending`: two reviewers (on two replicas) answering at
 * once cannot both win. A pending review past its `expiresAt` reads as expired.
 */
import type pg from 'pg';
import type { ReviewRecord } from '../../common/policy/policyServerApi';

/** A review as kept: with the digest of the unredacted arguments, which the API never shows. */
export type StoredReview = ReviewRecord & { argumentsDigest?: string };

export interface ReviewStore {
  insert(record: StoredReview): Promise<void>;
  get(id: string): Promise<ReviewRecord | undefined>;
  /** Pending and not expired, oldest first. */
  pending(now: number): Promise<ReviewRecord[]>;
  /** Writes `settled` (state, reviewer, note, decidedAt) only if the review is still pending; the stored record after. */
  settle(settled: ReviewRecord): Promise<{ won: boolean; record: ReviewRecord | undefined }>;
  /** Forgets reviews decided or expired before `before` (ms). */
  purge(before: number): Promise<void>;
  /** Marks an approved review used by the call it approved; false when it was used already. */
  consume(id: string): Promise<boolean>;
}

/** Expired in fact: still `pending` in the store, but past its deadline. */
export function withExpiry(record: ReviewRecord, now: number): ReviewRecord {
  return record.state === 'pending' && Date.parse(record.expiresAt) <= now
    ? { ...record, state: 'expired', decidedAt: record.expiresAt }
    : record;
}

export class MemoryReviewStore implements ReviewStore {
  private readonly records = new Map<string, ReviewRecord>();
  private readonly consumed = new Set<string>();

  async consume(id: string): Promise<boolean> {
    if (this.consumed.has(id) || !this.records.has(id)) return false;
    this.consumed.add(id);
    return true;
  }

  async insert(record: ReviewRecord): Promise<void> {
    this.records.set(record.id, structuredClone(record));
  }

  async get(id: string): Promise<ReviewRecord | undefined> {
    const record = this.records.get(id);
    return record ? structuredClone(record) : undefined;
  }

  async pending(now: number): Promise<ReviewRecord[]> {
    return [...this.records.values()].filter((r) => withExpiry(r, now).state === 'pending').map((r) => structuredClone(r));
  }

  async settle(settled: ReviewRecord): Promise<{ won: boolean; record: ReviewRecord | undefined }> {
    const current = this.records.get(settled.id);
    if (!current || current.state !== 'pending') return { won: false, record: current && structuredClone(current) };
    this.records.set(settled.id, structuredClone(settled));
    return { won: true, record: structuredClone(settled) };
  }

  async purge(before: number): Promise<void> {
    for (const [id, record] of this.records) {
      const ended = record.state !== 'pending' ? Date.parse(record.decidedAt ?? record.expiresAt) : Date.parse(record.expiresAt);
      if (ended < before) {
        this.records.delete(id);
        this.consumed.delete(id);
      }
    }
  }
}

export class PostgresReviewStore implements ReviewStore {
  constructor(private readonly pool: pg.Pool) {}

  async consume(id: string): Promise<boolean> {
    const result = await this.pool.query('update reviews set consumed = true where id = $1 and not consumed', [id]);
    return (result.rowCount ?? 0) === 1;
  }

  async insert(record: ReviewRecord): Promise<void> {
    await this.pool.query('insert into reviews (id, state, expires_ms, record) values ($1, $2, $3, $4)', [
      record.id,
      record.state,
      Date.parse(record.expiresAt),
      JSON.stringify(record),
    ]);
  }

  async get(id: string): Promise<ReviewRecord | undefined> {
    const { rows } = await this.pool.query<{ record: ReviewRecord }>('select record from reviews where id = $1', [id]);
    return rows[0]?.record;
  }

  async pending(now: number): Promise<ReviewRecord[]> {
    const { rows } = await this.pool.query<{ record: ReviewRecord }>(
      "select record from reviews where state = 'pending' and expires_ms > $1 order by expires_ms",
      [now],
    );
    return rows.map((row) => row.record);
  }

  async settle(settled: ReviewRecord): Promise<{ won: boolean; record: ReviewRecord | undefined }> {
    const won = await this.pool.query<{ record: ReviewRecord }>(
      "update reviews set state = $2, record = $3 where id = $1 and state = 'pending' returning record",
      [settled.id, settled.state, JSON.stringify(settled)],
    );
    if (won.rows[0]) return { won: true, record: won.rows[0].record };
    return { won: false, record: await this.get(settled.id) };
  }

  async purge(before: number): Promise<void> {
    await this.pool.query('delete from reviews where expires_ms < $1', [before]);
  }
}
