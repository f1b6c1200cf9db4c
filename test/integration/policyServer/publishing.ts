/**
 * The policy server suite, publishing: the bootstrap version and private data, who may
 * publish, invalid policies and requests answered with what is wrong, history / diff /
 * rollback.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { PolicyHistoryResponse } from '../../../common/policy/policyServerApi';
import { examplePolicy, withCarolAdmin } from '../../support/policyServerProcess';
import type { PolicyServerSuiteContext } from '../policyServerSuite';

export function describePublishing(suite: PolicyServerSuiteContext): void {
  it('starts with the bootstrap policy as version 1 and keeps its data private', async () => {
    const { server, call, jwks, storeArgs } = suite;
    assert.equal(server.ready.version, 1);
    assert.equal(server.ready.issuer, server.ready.url);
    assert.equal((await call('GET', '/healthz')).status, 200);
    assert.equal(statSync(server.dataDir).mode & 0o777, 0o700);
    assert.equal(statSync(join(server.dataDir, 'signing-keys.json')).mode & 0o777, 0o600);
    if (storeArgs().length === 0) assert.equal(statSync(join(server.dataDir, 'policy-store.json')).mode & 0o777, 0o600);
    const keys = await jwks();
    assert.deepEqual(
      keys.keys.map((k) => k.kid),
      [server.ready.kid],
    );
    for (const key of keys.keys) {
      assert.equal(key.d, undefined, 'the JWKS must not carry private key material');
      assert.equal(key.alg, 'EdDSA');
    }
  });

  it('refuses callers without a valid token with 401 and a Bearer challenge', async () => {
    const { call, alice } = suite;
    const missing = await call('GET', '/v1/effective-policy');
    assert.equal(missing.status, 401);
    assert.match(missing.headers.get('www-authenticate') ?? '', /^Bearer realm="gatehouse"/);
    assert.equal(missing.json.error, 'unauthorized');
    const forged = await call('GET', '/v1/policies', { token: `${alice.slice(0, -4)}AAAA` });
    assert.equal(forged.status, 401);
    assert.match(forged.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
  });

  it('lets alice (admin) publish and refuses bob with 403 naming the admin groups', async () => {
    const { call, alice, bob } = suite;
    const byBob = await call('POST', '/v1/policies', { token: bob, yaml: withCarolAdmin });
    assert.equal(byBob.status, 403);
    assert.equal(byBob.json.error, 'forbidden');
    assert.match(byBob.json.message, /bob@example\.com is not in an admin group \(admins: policy-admins\)/);

    const byAlice = await call('POST', '/v1/policies', { token: alice, yaml: withCarolAdmin });
    assert.equal(byAlice.status, 201, byAlice.text);
    assert.equal(byAlice.json.version, 2);
    assert.equal(byAlice.json.sha256, createHash('sha256').update(withCarolAdmin).digest('hex'));

    const again = await call('POST', '/v1/policies', { token: alice, yaml: withCarolAdmin });
    assert.equal(again.status, 200, 'the same text again is not a new version');
    assert.deepEqual([again.json.version, again.json.unchanged], [2, true]);
  });

  it('answers an invalid policy with 422 and the line of each problem', async () => {
    const { call, alice } = suite;
    const broken = withCarolAdmin.replace('effect: confirm', 'effect: maybe');
    const line = broken.split('\n').findIndex((l) => l.includes('effect: maybe')) + 1;
    const response = await call('POST', '/v1/policies', { token: alice, yaml: broken });
    assert.equal(response.status, 422);
    assert.equal(response.json.error, 'invalid_policy');
    assert.ok(
      response.json.problems.some((p: string) => p.startsWith(`policy.yaml:${line}:`) && p.includes('rules.1.effect')),
      JSON.stringify(response.json.problems),
    );

    const syntax = await call('POST', '/v1/policies', { token: alice, yaml: 'version: 1\norg: x\n  admins: [a]\n' });
    assert.equal(syntax.status, 422);
    // YAML syntax errors carry a position too (which line is common/yamlDocument.ts's business).
    assert.match(syntax.json.problems[0], /^policy\.yaml:\d+:\d+: /);

    const celBroken = withCarolAdmin.replace('size(args.message) <= 40', 'size(args.message) <=');
    const cel = await call('POST', '/v1/policies', { token: alice, yaml: celBroken });
    assert.equal(cel.status, 422);
    assert.ok(
      cel.json.problems.some((p: string) => /rules\.3\.when/.test(p)),
      JSON.stringify(cel.json.problems),
    );
  });

  it('validates the request itself: media type, size, parameters', async () => {
    const { call, alice } = suite;
    const json = await call('POST', '/v1/policies', { token: alice, json: { policy: 'x' } });
    assert.equal(json.status, 415);
    assert.equal(json.json.error, 'unsupported_media_type');
    const huge = await call('POST', '/v1/policies', { token: alice, yaml: `# ${'x'.repeat(1024 * 1024 + 10)}\n` });
    assert.equal(huge.status, 413);
    assert.equal(huge.json.error, 'payload_too_large');
    assert.equal((await call('GET', '/v1/policies/abc', { token: alice })).status, 400);
    assert.equal((await call('GET', '/v1/policies/99', { token: alice })).status, 404);
    assert.equal((await call('GET', '/v1/policies/diff?from=1', { token: alice })).status, 400);
    const badRollback = await call('POST', '/v1/policies/rollback', { token: alice, json: { version: '1' } });
    assert.equal(badRollback.status, 400);
    assert.match(badRollback.json.message, /version/);
    assert.equal((await call('POST', '/v1/revocations', { token: alice, json: { sub: 'x', extra: true } })).status, 400);
    assert.equal((await call('GET', '/v1/nothing', { token: alice })).status, 404);
  });

  it('keeps a history, diffs versions and rolls back', async () => {
    const { call, alice } = suite;
    const history = (await call('GET', '/v1/policies', { token: alice })).json as PolicyHistoryResponse;
    assert.equal(history.current, 2);
    assert.deepEqual(
      history.versions.map((v) => [v.version, v.publishedBy]),
      [
        [1, 'bootstrap'],
        [2, 'alice'],
      ],
    );
    assert.equal(history.versions[0]!.sha256, createHash('sha256').update(examplePolicy).digest('hex'));

    const text = await call('GET', '/v1/policies/2', { token: alice });
    assert.equal(text.status, 200);
    assert.match(text.headers.get('content-type') ?? '', /^application\/yaml/);
    assert.equal(text.text, withCarolAdmin);

    const diff = await call('GET', '/v1/policies/diff?from=1&to=2', { token: alice });
    assert.equal(diff.status, 200);
    assert.match(diff.text, /^--- version 1\n\+\+\+ version 2\n@@ -\d+,\d+ \+\d+,\d+ @@\n/);
    assert.match(diff.text, /^- {4}match: \[\{ user: alice@example\.com \}\]$/m);
    assert.match(diff.text, /^\+ {4}match: \[\{ user: alice@example\.com \}, \{ user: carol@example\.com \}\]$/m);

    const rollback = await call('POST', '/v1/policies/rollback', { token: alice, json: { version: 1 } });
    assert.equal(rollback.status, 201, rollback.text);
    assert.deepEqual([rollback.json.version, rollback.json.rolledBackFrom], [3, 1]);
    assert.equal((await call('GET', '/v1/policies/diff?from=1&to=3', { token: alice })).text, '');
    // Back to the version with carol as admin, for the revocation tests below.
    assert.equal((await call('POST', '/v1/policies', { token: alice, yaml: withCarolAdmin })).json.version, 4);
  });
}
