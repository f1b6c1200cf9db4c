/**
 * The policy server's PostgreSQL database (`--store postgres://user@host:port/db`), shared
 * by every replica: a `pg` pool, and the schema brought up to date on start. Migrations are
 * numbered, applied in order inside one transaction each, recorded in `gatehouse_migrations`,
 * and serialised across replicas starting together by an advisory lock. The password, when
 * one is needed, comes from a 0600 file (`--store-password-file`), never the URL or argv.
 * The queries against these tables live with their capability (see store/policyStore.ts).
 */
import pg from 'pg';
import { readSecretFile } from '../../common/fs/privateFiles';
import { describeError } from '../../common/log/logger';

/** Each entry is one migration; never edit one that has shipped, add the next. */
const MIGRATIONS: string[] = [
  `create table policy_versions (
     version integer primary key,
     text text not null,
     sha256 text not null,
     published_at text not null,
     published_by text not null,
     rolled_back_from integer
   );
   create table revocations (
     id uuid primary key,
     sub text not null,
     session_id text,
     server_id text,
     revoked_at text not null,
     revoked_by text not null,
     reason text
   );
   create unique index revocations_target on revocations (sub, coalesce(session_id, ''), coalesce(server_id, ''));
   create table audit_events (
     id text primary key,
     time_ms bigint not null,
     user_id text not null,
     server text not null,
     tool text,
     decision text not null,
     event jsonb not null
   );
   create index audit_events_order on audit_events (time_ms, id);`,
  `create table reviews (
     id uuid primary key,
     state text not null,
     expires_ms bigint not null,
     record jsonb not null
   );
   create index reviews_pending on reviews (state, expires_ms);`,
  `create table relay_secrets (
     id text primary key,
     jwe text not null,
     updated_at text not null
   );`,
  `create table relay_sessions (
     server_id text not null,
     session_id text not null,
     sub text not null,
     opened_at bigint not null,
     primary key (server_id, session_id)
   );
   create index relay_sessions_by_user on relay_sessions (sub, opened_at);`,
  `alter table reviews add column consumed boolean not null default false;`,
  `create table relay_user_tokens (
     server_id text not null,
     sub text not null,
     jwe text not null,
     primary key (server_id, sub)
   );
   create index relay_user_tokens_by_user on relay_user_tokens (sub);`,
  `create table oauth_entities (
     model text not null,
     id text not null,
     payload jsonb not null,
     expires_at bigint,
     uid text,
     user_code text,
     grant_id text,
     primary key (model, id)
   );
   create index oauth_entities_by_uid on oauth_entities (model, uid) where uid is not null;
   create index oauth_entities_by_user_code on oauth_entities (model, user_code) where user_code is not null;
   create index oauth_entities_by_grant on oauth_entities (model, grant_id) where grant_id is not null;
   create index oauth_entities_expiry on oauth_entities (expires_at) where expires_at is not null;
   create table oauth_first_use (
     key text primary key,
     expires_at bigint not null
   );
   create index oauth_first_use_expiry on oauth_first_use (expires_at);`,
];

/** Any number: it only has to be the same for every replica. */
const MIGRATION_LOCK = 0x6761_7465;

export interface DatabaseOptions {
  url: string;
  password?: string;
  max?: number;
}

export async function openDatabase(options: DatabaseOptions): Promise<pg.Pool> {
  const url = new URL(options.url);
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') throw new Error('--store must be a postgres:// URL');
  if (url.password) throw new Error('--store must not carry a password: give it in a 0600 file with --store-password-file');
  const pool = new pg.Pool({
    connectionString: options.url,
    ...(options.password !== undefined ? { password: options.password } : {}),
    max: options.max ?? 20,
    connectionTimeoutMillis: 10_000,
  });
  // An idle client losing its server (a restart, a failover) must not crash the process.
  pool.on('error', () => undefined);
  try {
    await migrate(pool);
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw new Error(`cannot prepare the PostgreSQL store: ${describeError(error)}`, { cause: error });
  }
  return pool;
}

/** `--store` and `--store-password-file` as every command takes them: the pool, and a way to open one more connection (LISTEN). */
export async function openStoreDatabase(
  store: { url: string; passwordFile?: string },
  max?: number,
): Promise<{ pool: pg.Pool; newClient: () => pg.Client }> {
  const password = store.passwordFile ? readSecretFile(store.passwordFile) : undefined;
  const withPassword = password !== undefined ? { password } : {};
  const pool = await openDatabase({ url: store.url, ...withPassword, ...(max !== undefined ? { max } : {}) });
  return { pool, newClient: () => new pg.Client({ connectionString: store.url, ...withPassword }) };
}

async function migrate(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await client.query(
      'create table if not exists gatehouse_migrations (version integer primary key, applied_at timestamptz not null default now())',
    );
    const { rows } = await client.query<{ version: number }>('select version from gatehouse_migrations');
    const applied = new Set(rows.map((row) => row.version));
    for (const [index, sql] of MIGRATIONS.entries()) {
      const version = index + 1;
      if (applied.has(version)) continue;
      await client.query('begin');
      try {
        await client.query(sql);
        await client.query('insert into gatehouse_migrations (version) values ($1)', [version]);
        await client.query('commit');
      } catch (error) {
        await client.query('rollback');
        throw error;
      }
    }
  } finally {
    await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    client.release();
  }
}
