/**
 * The policy server suite, revocation: a user (pushed on their stream at once, every
 * request refused), one session, a stored upstream credential (the user stays in).
 */
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { createAuditEventId, type AuditEvent } from '../../../common/audit/auditEvent';
import { openEvents, waitFor } from '../../support/policyServerClient';
import type { PolicyServerSuiteContext } from '../policyServerSuite';

export function describeRevocation(suite: PolicyServerSuiteContext): void {
  it('revokes alice: her stream is told at once and every request is refused with 403', async () => {
    const { server, call, alice, bob, carol } = suite;
    const aliceStream = await openEvents(server.ready.url, alice);
    const bobStream = await openEvents(server.ready.url, bob);
    try {
      await aliceStream.next((e) => e.event === 'policy');
      await bobStream.next((e) => e.event === 'policy');
      const self = await call('POST', '/v1/revocations', { token: alice, json: { sub: 'alice' } });
      assert.equal(self.status, 400, 'an admin cannot lock themselves out');

      const started = Date.now();
      const revoked = await call('POST', '/v1/revocations', { token: carol, json: { sub: 'alice', reason: 'laptop lost' } });
      assert.equal(revoked.status, 201, revoked.text);
      assert.equal(revoked.json.streamsTold, 1);
      const event = await aliceStream.next((e) => e.event === 'revoked');
      console.log(`      revocation -> revoked event on alice's stream: ${event.at - started} ms (including the revoke request)`);
      assert.deepEqual(event.data, { sub: 'alice' });

      const refused = await call('GET', '/v1/effective-policy', { token: alice });
      assert.equal(refused.status, 403);
      assert.equal(refused.json.error, 'revoked');
      assert.match(refused.json.message, /laptop lost/);
      assert.equal((await call('GET', '/v1/policies', { token: alice })).status, 403, 'a revoked admin is no admin');
      const lastCalls = await call('POST', '/v1/audit', { token: alice, json: { events: [auditEventFor('alice')] } });
      assert.equal(lastCalls.status, 200, "a revoked user's gateway still hands in the audit of what was done before");
      assert.equal(lastCalls.json.accepted, 1);
      assert.equal((await openEvents(server.ready.url, alice)).status, 403);
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(!bobStream.events.some((e) => e.event === 'revoked'), 'only the revoked user is told');
      assert.ok(aliceStream.ended || (await waitFor(() => aliceStream.ended, 2_000)), 'the revoked stream ends');

      const list = await call('GET', '/v1/revocations', { token: carol });
      assert.deepEqual(
        list.json.revocations.map((r: { sub: string; revokedBy: string }) => [r.sub, r.revokedBy]),
        [['alice', 'carol']],
      );
      assert.equal((await call('GET', '/v1/revocations', { token: bob })).status, 403);

      const lifted = await call('DELETE', '/v1/revocations', { token: carol, json: { sub: 'alice' } });
      assert.equal(lifted.status, 204);
      assert.equal((await call('GET', '/v1/effective-policy', { token: alice })).status, 200);
    } finally {
      aliceStream.close();
      bobStream.close();
    }
  });

  it('revokes one session only when a sessionId is given', async () => {
    const { call, alice, bob } = suite;
    const revoked = await call('POST', '/v1/revocations', { token: alice, json: { sub: 'bob', sessionId: 'some-other-session' } });
    assert.equal(revoked.status, 201);
    // bob's token carries no such session, so bob is still in.
    assert.equal((await call('GET', '/v1/effective-policy', { token: bob })).status, 200);
    assert.equal(
      (await call('DELETE', '/v1/revocations', { token: alice, json: { sub: 'bob', sessionId: 'some-other-session' } })).status,
      204,
    );
  });

  it("revokes a stored upstream credential: pushed on the user's open stream (kept open), listed in their bundle, the user stays in", async () => {
    const { server, call, alice, bob } = suite;
    const bobStream = await openEvents(server.ready.url, bob);
    try {
      await bobStream.next((e) => e.event === 'policy');
      assert.equal(
        (await call('POST', '/v1/revocations', { token: alice, json: { sub: 'bob', serverId: 'github', sessionId: 's' } })).status,
        400,
        'one target per revocation',
      );
      const revoked = await call('POST', '/v1/revocations', { token: alice, json: { sub: 'bob', serverId: 'github' } });
      assert.equal(revoked.status, 201, revoked.text);
      const event = await bobStream.next((e) => e.event === 'credential-revoked');
      assert.deepEqual(event.data, { sub: 'bob', serverId: 'github' });
      assert.equal(bobStream.ended, false, 'the stream stays open: the user keeps access');
      const bundle = await call('GET', '/v1/effective-policy', { token: bob });
      assert.equal(bundle.status, 200, 'bob is still in');
      const listed = (decodeJwt(bundle.text).policy as { credentialRevocations?: Array<{ serverId: string; revokedAt: string }> })
        .credentialRevocations;
      assert.deepEqual(
        listed?.map((r) => r.serverId),
        ['github'],
      );
      // Revoked again later (bob signed in since): the new time counts.
      await new Promise((r) => setTimeout(r, 5));
      await call('POST', '/v1/revocations', { token: alice, json: { sub: 'bob', serverId: 'github' } });
      const again = (
        decodeJwt((await call('GET', '/v1/effective-policy', { token: bob })).text).policy as {
          credentialRevocations?: Array<{ revokedAt: string }>;
        }
      ).credentialRevocations;
      assert.ok(again?.[0] && Date.parse(again[0].revokedAt) > Date.parse(listed![0]!.revokedAt));
      assert.equal(
        (await call('DELETE', '/v1/revocations', { token: alice, json: { sub: 'bob' } })).status,
        404,
        "lifting bob's access is not lifting the credential revocation",
      );
      assert.equal((await call('DELETE', '/v1/revocations', { token: alice, json: { sub: 'bob', serverId: 'github' } })).status, 204);
    } finally {
      bobStream.close();
    }
  });
}

function auditEventFor(user: string): AuditEvent {
  return {
    id: createAuditEventId(),
    time: new Date().toISOString(),
    user,
    client: { name: 'test', version: '1' },
    server: 'memory',
    method: 'tools/call',
    tool: 'read_graph',
    decision: 'allow',
    status: 'ok',
    redactions: {},
    flags: [],
    latencyMs: 1,
  };
}
