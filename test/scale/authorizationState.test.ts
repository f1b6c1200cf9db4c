/**
 * Where the MCP authorization server keeps its state (sign-ins, tokens, people, once-used
 * ids): on a real PostgreSQL from Debian's packages (the migration applied by the policy
 * server's own `openStoreDatabase`, two pools standing in for two replicas) and in one
 * process's memory. Both keep the same promises; on PostgreSQL a once-used id is used once
 * across pools, however many claim it at the same moment.
 */
import assert from 'node:assert/strict';
import type pg from 'pg';
import { MemoryStore, providerAdapter, type AuthorizationState } from '../../policy-server/authorization/oidcProvider';
import { PostgresAuthorizationState } from '../../policy-server/authorization/postgresAuthorizationState';
import { openStoreDatabase } from '../../policy-server/store/postgresDatabase';
import { startPostgres, type RunningPostgres } from '../support/postgres';

/** oidc-provider's invalid_grant, saying what was used twice. */
const alreadyUsed = (error: { error?: string; error_description?: string }) =>
  error.error === 'invalid_grant' && /already used/.test(error.error_description ?? '');

describe('authorization server state', function () {
  this.timeout(60_000);
  let postgres: RunningPostgres;
  let pools: pg.Pool[];

  before(async () => {
    postgres = await startPostgres();
    pools = [(await openStoreDatabase({ url: postgres.url }, 4)).pool, (await openStoreDatabase({ url: postgres.url }, 4)).pool];
  });

  after(async () => {
    for (const pool of pools ?? []) await pool.end();
    await postgres?.stop();
  });

  const contract = (states: () => [AuthorizationState, AuthorizationState]) => async () => {
    const [one, other] = states();
    const codes = one.adapter('AuthorizationCode');
    assert.equal(await codes.find('c1'), undefined);
    await codes.upsert('c1', { grantId: 'g1', uid: 'u1', accountId: 'alice' }, 60);
    await codes.upsert('c2', { grantId: 'g2', accountId: 'dave' }, 60);
    await one.adapter('AccessToken').upsert('t1', { grantId: 'g1' }, 60);
    const seen = other.adapter('AuthorizationCode');
    assert.deepEqual(await seen.find('c1'), { grantId: 'g1', uid: 'u1', accountId: 'alice' }, 'what one wrote, the other reads');
    assert.deepEqual(await seen.findByUid('u1'), { grantId: 'g1', uid: 'u1', accountId: 'alice' });
    assert.equal(await other.adapter('Session').find('c1'), undefined, 'models are apart');

    await seen.consume('c1');
    assert.equal(typeof (await codes.find('c1'))?.consumed, 'number', 'a consumed code says so everywhere');
    await assert.rejects(codes.consume('c1'), alreadyUsed, 'consumed once: the second of two racing redemptions is refused');

    // oidc-provider's replay records (its own DPoP proofs, client assertions) are written once.
    await providerAdapter(one, 'ReplayDetection').upsert('proof-1', { iss: 'x' }, 60);
    await assert.rejects(providerAdapter(other, 'ReplayDetection').upsert('proof-1', { iss: 'x' }, 60), alreadyUsed);

    await seen.revokeByGrantId('g1');
    assert.equal(await codes.find('c1'), undefined, "the grant's codes are gone");
    assert.deepEqual(await codes.find('c2'), { grantId: 'g2', accountId: 'dave' }, "another grant's stay");
    assert.deepEqual(await one.adapter('AccessToken').find('t1'), { grantId: 'g1' }, "another model's rows are its own adapter's business");
    await codes.destroy('c2');
    assert.equal(await seen.find('c2'), undefined);

    // A pending sign-in is taken once: of two replicas the IdP's answer (or its replay) reaches, one gets it.
    await one.adapter('GatehouseSignIn').upsert('state-1', { interactionUid: 'i1' }, 60);
    const takes = await Promise.all([one.take('GatehouseSignIn', 'state-1'), other.take('GatehouseSignIn', 'state-1')]);
    assert.deepEqual(takes.filter(Boolean), [{ interactionUid: 'i1' }], 'taken by one');
    assert.equal(await other.adapter('GatehouseSignIn').find('state-1'), undefined, 'and gone');

    await codes.upsert('short', { accountId: 'alice' }, 1);
    assert.ok(await seen.find('short'));
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    assert.equal(await seen.find('short'), undefined, 'an expired entry is not found');

    const now = Math.floor(Date.now() / 1000);
    const claims = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? one : other).firstUse('dpop https://x/relay/a/mcp jti-1', now + 120)),
    );
    assert.equal(claims.filter(Boolean).length, 1, 'twenty claims at once: one wins');
    assert.equal(await other.firstUse('dpop https://x/relay/a/mcp jti-2', now + 120), true);
    assert.equal(await one.firstUse('dpop https://x/relay/a/mcp jti-2', now + 120), false, 'used on one, used on the other');
    assert.equal(await one.firstUse('id-jag gone', now - 1), true);
    assert.equal(await other.firstUse('id-jag gone', now + 120), true, 'a claim whose time ran out may be made again');
  };

  it(
    'shares sign-ins, tokens and once-used ids between replicas on PostgreSQL',
    contract(() => [new PostgresAuthorizationState(pools[0]!), new PostgresAuthorizationState(pools[1]!)]),
  );
  it(
    'keeps the same promises in one process',
    contract(() => {
      const memory = new MemoryStore();
      return [memory, memory];
    }),
  );
});
