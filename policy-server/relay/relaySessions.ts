/**
 * Which user opened each upstream session the relay passes through: a session id works
 * only for the user who opened it (any other caller gets 404). In memory for one policy
 * server; in PostgreSQL with `--store`, so a gateway whose requests land on different
 * replicas (a balancer without stickiness) keeps its session. A user holds at most
 * `maxPerUser`; opening one more forgets their oldest.
 */
import type pg from 'pg';

/** Sessions one user may hold through the relay; the oldest of theirs is forgotten first. */
export const MAX_SESSIONS_PER_USER = 50;

export interface RelaySessions {
  ownerOf(serverId: string, sessionId: string): Promise<string | undefined>;
  bind(serverId: string, sessionId: string, sub: string): Promise<void>;
  forget(serverId: string, sessionId: string): Promise<void>;
}

export class MemoryRelaySessions implements RelaySessions {
  private readonly owners = new Map<string, string>();
  private readonly ofUser = new Map<string, string[]>();

  constructor(private readonly maxPerUser = MAX_SESSIONS_PER_USER) {}

  async ownerOf(serverId: string, sessionId: string): Promise<string | undefined> {
    return this.owners.get(`${serverId}\n${sessionId}`);
  }

  async bind(serverId: string, sessionId: string, sub: string): Promise<void> {
    const key = `${serverId}\n${sessionId}`;
    if (this.owners.get(key) === sub) return;
    const mine = this.ofUser.get(sub) ?? [];
    mine.push(key);
    if (mine.length > this.maxPerUser) this.owners.delete(mine.shift()!);
    this.ofUser.set(sub, mine);
    this.owners.set(key, sub);
  }

  async forget(serverId: string, sessionId: string): Promise<void> {
    const key = `${serverId}\n${sessionId}`;
    const sub = this.owners.get(key);
    this.owners.delete(key);
    if (sub)
      this.ofUser.set(
        sub,
        (this.ofUser.get(sub) ?? []).filter((known) => known !== key),
      );
  }
}

export class PostgresRelaySessions implements RelaySessions {
  constructor(
    private readonly pool: pg.Pool,
    private readonly maxPerUser = MAX_SESSIONS_PER_USER,
  ) {}

  async ownerOf(serverId: string, sessionId: string): Promise<string | undefined> {
    const { rows } = await this.pool.query<{ sub: string }>('select sub from relay_sessions where server_id = $1 and session_id = $2', [
      serverId,
      sessionId,
    ]);
    return rows[0]?.sub;
  }

  async bind(serverId: string, sessionId: string, sub: string): Promise<void> {
    // A session id already bound to someone stays theirs: an upstream cannot hand one user's session to another.
    await this.pool.query(
      'insert into relay_sessions (server_id, session_id, sub, opened_at) values ($1, $2, $3, $4) on conflict (server_id, session_id) do nothing',
      [serverId, sessionId, sub, Date.now()],
    );
    await this.pool.query(
      `delete from relay_sessions where sub = $1 and (server_id, session_id) not in
         (select server_id, session_id from relay_sessions where sub = $1 order by opened_at desc limit $2)`,
      [sub, this.maxPerUser],
    );
  }

  async forget(serverId: string, sessionId: string): Promise<void> {
    await this.pool.query('delete from relay_sessions where server_id = $1 and session_id = $2', [serverId, sessionId]);
  }
}
