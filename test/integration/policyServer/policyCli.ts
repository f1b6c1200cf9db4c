/**
 * The policy server suite, the `gatehouse policy` CLI: validate, publish / history / diff /
 * rollback against the running server, and its refusals.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../support/gatewayHarness';
import { EXAMPLE_POLICY, examplePolicy, runCli, withCarolAdmin } from '../../support/policyServerProcess';
import type { PolicyServerSuiteContext } from '../policyServerSuite';

export function describePolicyCli(suite: PolicyServerSuiteContext): void {
  describe('gatehouse policy CLI', () => {
    let aliceTokenFile: string;
    let bobTokenFile: string;

    before(() => {
      const { dir, alice, bob } = suite;
      aliceTokenFile = join(dir, 'alice.token');
      bobTokenFile = join(dir, 'bob.token');
      writeFileSync(aliceTokenFile, `${alice}\n`, { mode: 0o600 });
      writeFileSync(bobTokenFile, `${bob}\n`, { mode: 0o600 });
    });

    it('validate: exit 1 with file:line:col for a broken file, 0 for the example', async () => {
      const { dir } = suite;
      const broken = join(dir, 'broken.yaml');
      writeFileSync(broken, examplePolicy.replace('effect: confirm', 'effect: maybe'));
      const line =
        readFileSync(broken, 'utf8')
          .split('\n')
          .findIndex((l) => l.includes('effect: maybe')) + 1;
      const bad = await runCli(['policy', 'validate', broken]);
      assert.equal(bad.code, 1);
      assert.match(bad.stdout, new RegExp(`^${broken.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${line}:\\d+: rules\\.1\\.effect: `, 'm'));
      const good = await runCli(['policy', 'validate', EXAMPLE_POLICY]);
      assert.equal(good.code, 0, good.stderr);
      assert.match(good.stdout, /^valid/);
      const missing = await runCli(['policy', 'validate', join(dir, 'nope.yaml')]);
      assert.equal(missing.code, 1);
      assert.match(missing.stdout, /cannot read file: ENOENT/);
    });

    it('publish, history, diff and rollback against the server', async () => {
      const { server, dir } = suite;
      const server_ = ['--server', server.ready.url, '--token-file', aliceTokenFile];
      const file = join(dir, 'next.yaml');
      writeFileSync(file, `${withCarolAdmin}# from the CLI\n`);
      const published = await runCli(['policy', 'publish', file, ...server_]);
      assert.equal(published.code, 0, published.stderr);
      assert.match(published.stdout, /^published version 6 /);

      const history = await runCli(['policy', 'history', ...server_]);
      assert.equal(history.code, 0, history.stderr);
      assert.match(history.stdout, /^\s+6\s+\S+\s+alice\s+[0-9a-f]{12}\s+current$/m);
      assert.match(history.stdout, /^\s+3\s+.*rollback to 1$/m);

      const diff = await runCli(['policy', 'diff', '5', '6', ...server_]);
      assert.equal(diff.code, 0, diff.stderr);
      assert.match(diff.stdout, /^-# comment\n\+# from the CLI$/m);

      const rollback = await runCli(['policy', 'rollback', '5', ...server_]);
      assert.equal(rollback.code, 0, rollback.stderr);
      assert.match(rollback.stdout, /version 5 republished as version 7/);
    });

    it('fails clearly: not an admin, invalid file, unreachable server, bad usage', async () => {
      const { server, dir } = suite;
      const asBob = await runCli(['policy', 'history', '--server', server.ready.url, '--token-file', bobTokenFile]);
      assert.equal(asBob.code, 1);
      assert.match(asBob.stderr, /not in an admin group .* \(HTTP 403 forbidden\)/);

      const broken = join(dir, 'broken.yaml');
      const invalid = await runCli(['policy', 'publish', broken, '--server', server.ready.url, '--token-file', aliceTokenFile]);
      assert.equal(invalid.code, 1);
      assert.match(invalid.stderr, /rules\.1\.effect/);

      const closedPort = await freePort();
      const unreachable = await runCli(['policy', 'history', '--server', `http://127.0.0.1:${closedPort}`, '--token-file', aliceTokenFile]);
      assert.equal(unreachable.code, 1);
      assert.match(unreachable.stderr, new RegExp(`cannot reach the policy server at http://127\\.0\\.0\\.1:${closedPort}: ECONNREFUSED`));

      const remoteHttp = await runCli(['policy', 'history', '--server', 'http://policy.example.com', '--token-file', aliceTokenFile]);
      assert.equal(remoteHttp.code, 1);
      assert.match(remoteHttp.stderr, /must use https/);

      const noToken = await runCli(['policy', 'history', '--server', server.ready.url]);
      assert.equal(noToken.code, 2);
      assert.match(noToken.stderr, /--token-file <path> is required/);
      assert.equal((await runCli(['policy', 'diff', '1', '--server', server.ready.url, '--token-file', aliceTokenFile])).code, 2);
    });
  });
}
