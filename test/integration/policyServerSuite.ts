/**
 * The policy server suite (shared by the file-store run in test/integration/policyServer.test.ts
 * and the PostgreSQL run in test/scale/): the policy server as a real process (dist/gatehouse.js policy-server) against a real
 * local OIDC provider: publishing and its refusals, history / diff / rollback, signed
 * per-user bundles verified against the served JWKS, ETag revalidation, revocation and
 * publish pushed over the event stream, key rotation with overlap, and the
 * `gatehouse policy` CLI.
 *
 * The areas live in test/integration/policyServer/, one file each; they run in this order
 * against one server and build on each other (version numbers, revocations, keys).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JSONWebKeySet } from 'jose';
import { startLocalIdp, type LocalIdp } from '../support/localIdp';
import { api } from '../support/policyServerClient';
import { EXAMPLE_POLICY, startServer, type RunningServer } from '../support/policyServerProcess';
import { describeSignedBundles } from './policyServer/bundles';
import { describePolicyCli } from './policyServer/policyCli';
import { describePublishing } from './policyServer/publishing';
import { describeRevocation } from './policyServer/revocation';
import { describeSigningKeys } from './policyServer/signingKeys';

/** What the areas share; filled in by the suite's `before`, and `server` / `call` replaced by the restart test. */
export interface PolicyServerSuiteContext {
  storeArgs: () => string[];
  idp: LocalIdp;
  server: RunningServer;
  dir: string;
  call: ReturnType<typeof api>;
  alice: string;
  bob: string;
  carol: string;
  jwks: () => Promise<JSONWebKeySet>;
}

/**
 * The policy server suite, run against a store: `storeArgs` gives the arguments that pick it
 * (none: the data dir's files; `--store postgres://...`: PostgreSQL).
 */
export function describePolicyServer(label: string, storeArgs: () => string[]): void {
  describe(`policy server (${label})`, function () {
    this.timeout(60_000);
    const suite = { storeArgs } as PolicyServerSuiteContext;

    before(async () => {
      suite.dir = mkdtempSync(join(tmpdir(), 'gatehouse-policy-server-'));
      suite.idp = await startLocalIdp();
      suite.server = await startServer(suite.idp, join(suite.dir, 'data'), ['--bootstrap-policy', EXAMPLE_POLICY, ...storeArgs()]);
      suite.call = api(suite.server.ready.url);
      [suite.alice, suite.bob, suite.carol] = await Promise.all([
        suite.idp.tokenFor('alice'),
        suite.idp.tokenFor('bob'),
        suite.idp.tokenFor('carol'),
      ]);
      suite.jwks = async () => (await suite.call('GET', '/.well-known/jwks.json')).json as JSONWebKeySet;
    });

    after(async () => {
      await suite.server?.stop();
      await suite.idp?.stop();
      if (suite.dir) rmSync(suite.dir, { recursive: true, force: true });
    });

    describePublishing(suite);
    describeSignedBundles(suite);
    describeRevocation(suite);
    describeSigningKeys(suite);
    describePolicyCli(suite);
  });
}
