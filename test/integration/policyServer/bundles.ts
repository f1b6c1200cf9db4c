/**
 * The policy server suite, signed bundles: a different effective policy per user verified
 * against the JWKS, tampering detected, ETag revalidation, a publish pushed to open streams.
 */
import assert from 'node:assert/strict';
import { verifyPolicyBundle } from '../../../common/policy/policyBundle';
import { withCarolAdmin } from '../../support/policyServerProcess';
import { openEvents, type Reply } from '../../support/policyServerClient';
import type { PolicyServerSuiteContext } from '../policyServerSuite';

export function describeSignedBundles(suite: PolicyServerSuiteContext): void {
  it('signs a different effective policy for alice and bob, verifiable against the JWKS', async () => {
    const { server, call, alice, bob, carol, jwks } = suite;
    const keys = await jwks();
    const [forAlice, forBob, forCarol] = (await Promise.all(
      [alice, bob, carol].map((t) => call('GET', '/v1/effective-policy', { token: t })),
    )) as [Reply, Reply, Reply];
    for (const response of [forAlice, forBob, forCarol]) {
      assert.equal(response.status, 200, response.text);
      assert.match(response.headers.get('content-type') ?? '', /^application\/jwt/);
    }
    const a = await verifyPolicyBundle(forAlice.text, keys, { sub: 'alice', issuer: server.ready.issuer });
    const b = await verifyPolicyBundle(forBob.text, keys, { sub: 'bob', issuer: server.ready.issuer });
    assert.equal(a.ver, 4);
    assert.deepEqual(a.groups.sort(), ['engineers', 'policy-admins']);
    assert.deepEqual(b.groups, ['contractors']);
    assert.deepEqual(a.policy.servers.map((s) => s.id).sort(), ['everything', 'files', 'memory']);
    assert.deepEqual(b.policy.servers.map((s) => s.id).sort(), ['everything', 'files']);
    assert.equal(a.policy.admin, true);
    assert.equal(b.policy.admin, false);
    assert.ok(b.exp - b.iat === 3600);
    // carol is an admin but in no group a rule names: she still gets a bundle, with no servers.
    const c = await verifyPolicyBundle(forCarol.text, keys, { sub: 'carol', issuer: server.ready.issuer });
    assert.deepEqual(c.policy.servers, []);
    // A bundle is only good for the user it names.
    await assert.rejects(verifyPolicyBundle(forAlice.text, keys, { sub: 'bob', issuer: server.ready.issuer }), /claim check failed/);
  });

  it('rejects a tampered bundle', async () => {
    const { server, call, bob, jwks } = suite;
    const jws = (await call('GET', '/v1/effective-policy', { token: bob })).text;
    const [header, payload, signature] = jws.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as { groups: string[]; policy: { groups: string[] } };
    claims.groups = ['engineers'];
    claims.policy.groups = ['engineers'];
    const tampered = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`;
    await assert.rejects(
      verifyPolicyBundle(tampered, await jwks(), { sub: 'bob', issuer: server.ready.issuer }),
      /signature does not verify/,
    );
  });

  it('revalidates with ETag: 304 while nothing changed, a new bundle once something did', async () => {
    const { call, alice, bob } = suite;
    const first = await call('GET', '/v1/effective-policy', { token: alice });
    const etag = first.headers.get('etag')!;
    assert.match(etag, /^"v4\./);
    const again = await call('GET', '/v1/effective-policy', { token: alice, headers: { 'If-None-Match': etag } });
    assert.equal(again.status, 304);
    assert.equal(again.text, '');
    assert.equal(again.headers.get('etag'), etag);
    const bobs = await call('GET', '/v1/effective-policy', { token: bob });
    assert.notEqual(bobs.headers.get('etag'), etag, 'another user has another ETag');
    const stale = await call('GET', '/v1/effective-policy', { token: alice, headers: { 'If-None-Match': '"v3.stale"' } });
    assert.equal(stale.status, 200);
  });

  it('pushes a published version to an open event stream', async () => {
    const { server, call, alice, bob } = suite;
    const stream = await openEvents(server.ready.url, bob);
    try {
      assert.equal(stream.status, 200);
      await stream.next((e) => e.event === 'policy' && e.data.version === 4);
      const started = Date.now();
      const published = await call('POST', '/v1/policies', { token: alice, yaml: `${withCarolAdmin}# comment\n` });
      assert.equal(published.json.version, 5);
      const pushed = await stream.next((e) => e.event === 'policy' && e.data.version === 5);
      console.log(`      publish -> policy event on the stream: ${pushed.at - started} ms (including the publish request)`);
      const etagBefore = (await call('GET', '/v1/effective-policy', { token: bob })).headers.get('etag');
      assert.match(etagBefore ?? '', /^"v5\./);
    } finally {
      stream.close();
    }
  });
}
