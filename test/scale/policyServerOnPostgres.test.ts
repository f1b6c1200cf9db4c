/**
 * The whole policy server suite again, on PostgreSQL (`--store postgres://...`): a real
 * PostgreSQL from Debian's packages, started for this file on loopback (test/support/postgres.ts).
 */
import { describePolicyServer } from '../integration/policyServerSuite';
import { startPostgres, type RunningPostgres } from '../support/postgres';

let postgres: RunningPostgres | undefined;

before(async function () {
  this.timeout(60_000);
  postgres = await startPostgres();
});

after(async () => {
  await postgres?.stop();
});

describePolicyServer('PostgreSQL', () => {
  if (!postgres) throw new Error('PostgreSQL is not running');
  return ['--store', postgres.url];
});
