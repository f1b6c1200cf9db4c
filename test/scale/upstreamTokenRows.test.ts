/**
 * The rows `relay-oauth` keeps its per-user upstream tokens in (ciphertexts; sealing is the
 * relay's, tested in test/integration/relayOAuth.test.ts), on a real PostgreSQL from
 * Debian's packages (the `relay_user_tokens` migration applied by the policy server's own
 * `openStoreDatabase`) and in the data dir's file: both keep the same promises.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { openStoreDatabase } from '../../policy-server/store/postgresDatabase';
import {
  FileUpstreamTokenRows,
  PostgresUpstreamTokenRows,
  type UpstreamTokenRows,
} from '../../policy-server/tokenExchange/upstreamTokenRows';
import { removeDir } from '../support/policyHarness';
import { startPostgres, type RunningPostgres } from '../support/postgres';

describe('relay-oauth token rows', function () {
  this.timeout(60_000);
  let postgres: RunningPostgres;
  let pool: pg.Pool;
  let dir: string;

  before(async () => {
    postgres = await startPostgres();
    ({ pool } = await openStoreDatabase({ url: postgres.url }, 2));
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-token-rows-'));
  });

  after(async () => {
    await pool?.end();
    await postgres?.stop();
    if (dir) removeDir(dir);
  });

  const contract = (rows: () => UpstreamTokenRows) => async () => {
    const store = rows();
    assert.equal(await store.read('notes', 'alice'), undefined);
    await store.write('notes', 'alice', 'jwe-1');
    await store.write('notes', 'alice', 'jwe-2');
    await store.write('tickets', 'alice', 'jwe-3');
    await store.write('notes', 'dave', 'jwe-4');
    await store.write('notes', '__proto__', 'jwe-5');
    assert.equal(await store.read('notes', 'alice'), 'jwe-2', 'a new token replaces the kept one');
    assert.equal(await store.read('notes', '__proto__'), 'jwe-5', 'any subject is just a key');
    await store.delete('alice', 'notes');
    assert.equal(await store.read('notes', 'alice'), undefined, 'one server revoked');
    assert.equal(await store.read('tickets', 'alice'), 'jwe-3', 'the other server stays');
    await store.delete('alice');
    assert.equal(await store.read('tickets', 'alice'), undefined, 'all of a revoked user');
    assert.equal(await store.read('notes', 'dave'), 'jwe-4', "another person's stays");
  };

  it(
    'keep, replace and delete per server and person in PostgreSQL',
    contract(() => new PostgresUpstreamTokenRows(pool)),
  );
  it(
    'keep, replace and delete per server and person in the data dir',
    contract(() => new FileUpstreamTokenRows(dir)),
  );
});
