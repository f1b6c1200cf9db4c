/**
 * The authorization server's state in PostgreSQL (`--store`), so replicas behind a balancer
 * serve one sign-in between them (it may start on one, come back from the IdP to another,
 * and redeem its code at a third) and an id used once is used once on all of them: a DPoP
 * proof replayed to another replica, or an identity assertion redeemed twice, is refused.
 * oidc-provider's models are rows of `oauth_entities` (its payload as JSON, the lookups it
 * needs as columns); once-used ids are rows of `oauth_first_use`, claimed by one atomic
 * insert (oidc-provider's own replay records are claimed there too: providerAdapter); a code
 * or refresh token is consumed by one conditional update. Expired rows are deleted at most
 * once a minute per replica.
 */
import type pg from 'pg';
import { alreadyUsed, type AuthorizationState, type OidcAdapter } from './oidcProvider';

const SWEEP_INTERVAL_MS = 60_000;

export class PostgresAuthorizationState implements AuthorizationState {
  private lastSweep = 0;

  constructor(private readonly pool: pg.Pool) {}

  async firstUse(key: string, expiresAt: number): Promise<boolean> {
    await this.sweep();
    // A row whose time ran out is claimed again; otherwise the conflict leaves it and returns nothing.
    const { rowCount } = await this.pool.query(
      `insert into oauth_first_use (key, expires_at) values ($1, $2)
       on conflict (key) do update set expires_at = excluded.expires_at where oauth_first_use.expires_at <= $3`,
      [key, expiresAt, Math.floor(Date.now() / 1000)],
    );
    return rowCount === 1;
  }

  async take(model: string, id: string): Promise<Record<string, unknown> | undefined> {
    const { rows } = await this.pool.query<{ payload: Record<string, unknown> }>(
      'delete from oauth_entities where model = $1 and id = $2 and (expires_at is null or expires_at > $3) returning payload',
      [model, id, Date.now()],
    );
    return rows[0]?.payload;
  }

  adapter(model: string): OidcAdapter {
    const live = 'and (expires_at is null or expires_at > $3)';
    const findBy = async (column: 'id' | 'uid' | 'user_code', value: string) => {
      const { rows } = await this.pool.query<{ payload: Record<string, unknown> }>(
        `select payload from oauth_entities where model = $1 and ${column} = $2 ${live} limit 1`,
        [model, value, Date.now()],
      );
      return rows[0]?.payload;
    };
    return {
      upsert: async (id, payload, expiresIn) => {
        await this.sweep();
        await this.pool.query(
          `insert into oauth_entities (model, id, payload, expires_at, uid, user_code, grant_id) values ($1, $2, $3, $4, $5, $6, $7)
           on conflict (model, id) do update set payload = excluded.payload, expires_at = excluded.expires_at,
             uid = excluded.uid, user_code = excluded.user_code, grant_id = excluded.grant_id`,
          [
            model,
            id,
            JSON.stringify(payload),
            expiresIn ? Date.now() + expiresIn * 1000 : null,
            stringOrNull(payload.uid),
            stringOrNull(payload.userCode),
            stringOrNull(payload.grantId),
          ],
        );
      },
      find: (id) => findBy('id', id),
      findByUid: (uid) => findBy('uid', uid),
      findByUserCode: (userCode) => findBy('user_code', userCode),
      consume: async (id) => {
        // Once: of two replicas redeeming the same code or refresh token at once, the second is refused.
        const { rowCount } = await this.pool.query(
          `update oauth_entities set payload = jsonb_set(payload, '{consumed}', to_jsonb($3::bigint))
           where model = $1 and id = $2 and not payload ? 'consumed'`,
          [model, id, Math.floor(Date.now() / 1000)],
        );
        if (rowCount === 0 && (await findBy('id', id)) !== undefined) throw alreadyUsed(model);
      },
      destroy: async (id) => {
        await this.pool.query('delete from oauth_entities where model = $1 and id = $2', [model, id]);
      },
      revokeByGrantId: async (grantId) => {
        await this.pool.query('delete from oauth_entities where model = $1 and grant_id = $2', [model, grantId]);
      },
    };
  }

  /** Deletes expired rows, at most once a minute (the queries above already ignore them). */
  private async sweep(): Promise<void> {
    const now = Date.now();
    if (now - this.lastSweep < SWEEP_INTERVAL_MS) return;
    this.lastSweep = now;
    await this.pool.query('delete from oauth_entities where expires_at <= $1', [now]);
    await this.pool.query('delete from oauth_first_use where expires_at <= $1', [Math.floor(now / 1000)]);
  }
}

function stringOrNull(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}
