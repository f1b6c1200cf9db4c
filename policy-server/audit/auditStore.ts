/**
 * The central audit trail behind one small interface: gateways append the events they
 * spooled, admins query and export them. The embedded implementation keeps append-only
 * JSONL segment files in the data dir (`fileAuditStore.ts`); replicas share the PostgreSQL
 * one (`postgresAuditStore.ts`), so everything here is async, and paging is by a keyset
 * cursor ((time, id) of the last event returned), which both can serve without offsets.
 */
import type { AuditEvent } from '../../common/audit/auditEvent';
import type { AuditBatchResponse, AuditQueryFilters } from '../../common/policy/policyServerApi';

export type { AuditEvent, AuditQueryFilters };

export type AuditAppendResult = AuditBatchResponse;

export interface AuditPage {
  /** Oldest first: by `time`, then `id`. */
  events: AuditEvent[];
  /** Present when more events may match: pass it as `cursor` with the same filters. */
  nextCursor?: string;
}

export interface AuditStore {
  /**
   * Stores the events whose id is not stored yet and resolves once they are durable (a
   * crash after it resolves loses none of them). Events already stored, or repeated in the
   * call, count as duplicates and are left as first stored: a resend never rewrites the
   * trail. Concurrent calls carrying the same id store it once, and neither resolves before
   * that copy is durable. The caller validates the events (schema, who may send them).
   * Rejects with `AuditStoreUnavailableError` when the store cannot write.
   */
  append(events: AuditEvent[]): Promise<AuditAppendResult>;
  /** At most `limit` matching events after `cursor`. Rejects with `InvalidAuditCursorError` for a cursor it did not make. */
  query(filters: AuditQueryFilters, page: { limit: number; cursor?: string }): Promise<AuditPage>;
  /** How many stored events match. */
  count(filters: AuditQueryFilters): Promise<number>;
  close(): Promise<void>;
}

export class InvalidAuditCursorError extends Error {
  constructor() {
    super('The cursor is not one this server returned; start again without a cursor.');
    this.name = 'InvalidAuditCursorError';
  }
}

export class AuditStoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AuditStoreUnavailableError';
  }
}

/** The keyset a cursor carries: the last returned event's time (epoch ms) and id. */
export interface AuditCursorKey {
  timeMs: number;
  id: string;
}

export function encodeAuditCursor(key: AuditCursorKey): string {
  return Buffer.from(`${key.timeMs}.${key.id}`, 'utf8').toString('base64url');
}

export function decodeAuditCursor(cursor: string): AuditCursorKey {
  const match = /^(-?\d{1,16})\.([0-9A-Za-z]{26})$/.exec(cursor.length <= 64 ? Buffer.from(cursor, 'base64url').toString('utf8') : '');
  if (!match) throw new InvalidAuditCursorError();
  return { timeMs: Number(match[1]), id: match[2]! };
}

/** Orders by time, then id: the order queries and exports return. */
export function compareAuditKeys(a: AuditCursorKey, b: AuditCursorKey): number {
  return a.timeMs - b.timeMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
