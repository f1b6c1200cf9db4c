/**
 * The policy server suite, signing keys and persistence: rotation with overlap (CLI and
 * API), expired keys dropped from the JWKS, a restart keeping versions, revocations, keys.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader } from 'jose';
import { verifyPolicyBundle } from '../../../common/policy/policyBundle';
import { SigningKeyRing } from '../../../policy-server/keys/signingKeyRing';
import { EXAMPLE_POLICY, runCli, startServer } from '../../support/policyServerProcess';
import { api } from '../../support/policyServerClient';
import type { PolicyServerSuiteContext } from '../policyServerSuite';

export function describeSigningKeys(suite: PolicyServerSuiteContext): void {
  it('rotates the signing key with overlap: old bundles keep verifying', async () => {
    const { server, call, alice, bob, jwks, storeArgs } = suite;
    const oldBundle = (await call('GET', '/v1/effective-policy', { token: alice })).text;
    const oldKid = decodeProtectedHeader(oldBundle).kid;
    assert.equal(oldKid, server.ready.kid);

    const rotated = await runCli(['policy-server', 'rotate-key', '--data-dir', server.dataDir, ...storeArgs()]);
    assert.equal(rotated.code, 0, rotated.stderr);
    const rotation = JSON.parse(rotated.stdout) as { kid: string; previousKid: string; previousServedUntil: string };
    assert.equal(rotation.previousKid, oldKid);
    // The overlap is the longest bundle lifetime (3600 s) plus a minute of clock skew.
    const overlap = Date.parse(rotation.previousServedUntil) - Date.now();
    assert.ok(overlap > 3_600_000 && overlap <= 3_660_000, `overlap ${overlap} ms`);
    assert.equal(statSync(join(server.dataDir, 'signing-keys.json')).mode & 0o777, 0o600);

    const keys = await jwks();
    assert.deepEqual(keys.keys.map((k) => k.kid).sort(), [oldKid, rotation.kid].sort());
    await verifyPolicyBundle(oldBundle, keys, { sub: 'alice', issuer: server.ready.issuer });
    const newBundle = (await call('GET', '/v1/effective-policy', { token: alice })).text;
    assert.equal(decodeProtectedHeader(newBundle).kid, rotation.kid, 'the running server signs with the new key');
    await verifyPolicyBundle(newBundle, keys, { sub: 'alice', issuer: server.ready.issuer });

    const viaApi = await call('POST', '/v1/keys/rotate', { token: alice });
    assert.equal(viaApi.status, 201, viaApi.text);
    assert.equal((await call('POST', '/v1/keys/rotate', { token: bob })).status, 403);
    const three = await jwks();
    assert.equal(three.keys.length, 3);
    await verifyPolicyBundle(oldBundle, three, { sub: 'alice', issuer: server.ready.issuer });
  });

  it('drops a rotated-out key from the JWKS once its bundles have expired', async () => {
    const keyDir = mkdtempSync(join(tmpdir(), 'gatehouse-keys-'));
    try {
      const start = Date.now();
      const ring = await SigningKeyRing.openOrCreate(keyDir, start);
      const first = ring.current().kid;
      const { kid: second } = await ring.rotate(60, start);
      assert.deepEqual(
        ring.jwks(start + 59_000).keys.map((k) => k.kid),
        [first, second],
      );
      assert.deepEqual(
        ring.jwks(start + 61_000).keys.map((k) => k.kid),
        [second],
      );
      // The next rotation also deletes the expired key from the file.
      await ring.rotate(60, start + 120_000);
      const stored = JSON.parse(readFileSync(join(keyDir, 'signing-keys.json'), 'utf8')) as { keys: Array<{ kid: string }> };
      assert.ok(!stored.keys.some((k) => k.kid === first));
    } finally {
      rmSync(keyDir, { recursive: true, force: true });
    }
  });

  it('survives a restart with its versions, revocations and keys', async () => {
    const { alice, idp, storeArgs } = suite;
    let { server, call } = suite;
    await call('POST', '/v1/revocations', { token: alice, json: { sub: 'dave' } });
    const kidBefore = decodeProtectedHeader((await call('GET', '/v1/effective-policy', { token: alice })).text).kid;
    await server.stop();
    server = suite.server = await startServer(idp, server.dataDir, ['--bootstrap-policy', EXAMPLE_POLICY, ...storeArgs()]);
    call = suite.call = api(server.ready.url);
    assert.equal(server.ready.version, 5, 'the bootstrap policy is ignored once a policy exists');
    assert.equal(server.ready.kid, kidBefore);
    assert.deepEqual(
      (await call('GET', '/v1/revocations', { token: alice })).json.revocations.map((r: { sub: string }) => r.sub),
      ['dave'],
    );
  });
}
