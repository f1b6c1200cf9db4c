/**
 * The policy server suite on its embedded store (lowdb and files in the data dir); the same
 * suite runs on PostgreSQL in test/scale/policyServerOnPostgres.test.ts.
 */
import { describePolicyServer } from './policyServerSuite';

describePolicyServer('data dir files', () => []);
