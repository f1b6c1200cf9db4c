/**
 * AuditStore on PostgreSQL (`--store postgres://...`), shared by every replica: one row per
 * event, idempotent on its id (`on conflict do nothing`, so a gateway's resend after a lost
 * ack, to any replica, is a duplicate), committed before `append` resolves. Queries page by
 * the same (time, id) keyset as the file store, on the index over those two columns.
 */
import type pg from 'pg';
import type { AuditEvent } from '../../common/audit/auditEvent';
import {
  AuditStoreUnavailableError,
  decodeAuditCursor,
  encodeAuditCursor,
  type AuditAppendResult,
  type AuditPage,
  type AuditQueryFilters,
  type AuditStore,
} from './auditStore';
import { describeError } from '../../common/log/logger';

/** Rows per insert statement (parameters stay well under PostgreSQL's 65,535). */
const INSERT_CHUNK = 1_000;

export class PostgresAuditStore implements AuditStore {
  constructor(private readonly pool: pg.Pool) {}

  async append(events: AuditEvent[]): Promise<AuditAppendResult> {
    if (events.length === 0) return { accepted: 0, duplicates: 0 };
    let accepted = 0;
    try {
      const client = await this.pool.connect();
      try {
        await client.query('begin');
        for (let start = 0; start < events.length; start += INSERT_CHUNK) {
          const chunk = events.slice(start, start + INSERT_CHUNK);
          const values: unknown[] = [];
          const rows = chunk.map((event, i) => {
            values.push(
              event.id,
              Date.parse(event.time),
              event.user,
              event.server,
              event.tool ?? null,
              event.decision,
              JSON.stringify(event),
            );
            const p = i * 7;
            return `($${p + 1}, $${p + 2}, $${p + 3}, $${p + 4}, $${p + 5}, $${p + 6}, $${p + 7})`;
          });
          const result = await client.query(
            `insert into audit_events (id, time_ms, user_id, server, tool, decision, event) values ${rows.join(', ')} on conflict (id) do nothing`,
            values,
          );
          accepted += result.rowCount ?? 0;
        }
        await client.query('commit');
      } catch (error) {
        await client.query('rollback').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    } catch (error) {
      throw new AuditStoreUnavailableError(`The audit database refused the write: ${describeError(error)}`, { cause: error });
    }
    return { accepted, duplicates: events.length - accepted };
  }

  async query(filters: AuditQueryFilters, page: { limit: number; cursor?: string }): Promise<AuditPage> {
    const limit = Math.max(1, Math.floor(page.limit));
    const { where, values } = whereOf(filters);
    if (page.cursor !== undefined) {
      const after = decodeAuditCursor(page.cursor);
      values.push(after.timeMs, after.id);
      where.push(`(time_ms, id) > ($${values.length - 1}, $${values.length})`);
    }
    values.push(limit + 1);
    const { rows } = await this.pool.query<{ id: string; time_ms: string; event: AuditEvent }>(
      `select id, time_ms, event from audit_events ${where.length ? `where ${where.join(' and ')}` : ''} order by time_ms, id limit $${values.length}`,
      values,
    );
    const more = rows.length > limit;
    if (more) rows.pop();
    const last = rows.at(-1);
    return {
      events: rows.map((row) => row.event),
      ...(more && last ? { nextCursor: encodeAuditCursor({ timeMs: Number(last.time_ms), id: last.id }) } : {}),
    };
  }

  async count(filters: AuditQueryFilters): Promise<number> {
    const { where, values } = whereOf(filters);
    const { rows } = await this.pool.query<{ count: string }>(
      `select count(*) from audit_events ${where.length ? `where ${where.join(' and ')}` : ''}`,
      values,
    );
    return Number(rows[0]?.count ?? 0);
  }

  async close(): Promise<void> {
    // The pool belongs to the composition root.
  }
}

function whereOf(filters: AuditQueryFilters): { where: string[]; values: unknown[] } {
  const where: string[] = [];
  const values: unknown[] = [];
  const equal = (column: string, value: string | undefined) => {
    if (value === undefined) return;
    values.push(value);
    where.push(`${column} = $${values.length}`);
  };
  equal('user_id', filters.user);
  equal('server', filters.server);
  equal('tool', filters.tool);
  equal('decision', filters.decision);
  for (const [bound, op] of [
    [filters.from, '>='],
    [filters.to, '<'],
  ] as const) {
    if (bound === undefined) continue;
    const ms = Date.parse(bound);
    if (Number.isNaN(ms)) throw new RangeError('from and to must be ISO 8601 times');
    values.push(ms);
    where.push(`time_ms ${op} $${values.length}`);
  }
  return { where, values };
}
