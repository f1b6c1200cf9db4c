/**
 * Three policy-server replicas on one PostgreSQL (Debian's, started for this file), behind
 * a round-robin TCP balancer (test/support/roundRobinBalancer.ts, standing in for the org's
 * own), sharing the signing keys through one data dir and one public issuer URL. Real
 * managed gateways, and a load of audit batches posted as gateways' shippers post them.
 * One replica is killed (SIGKILL) under that load: gateways and the load fail over, every
 * acknowledged audit event is in the database (counted), and a revocation published on one
 * replica is effective at a gateway connected to another within 5 s (measured).
 */
import { auditEventOf } from '../support/auditEvents';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { FIXTURES, NODE, REPO, startGateway, textOf, waitUntil, type RunningGateway } from '../support/gatewayHarness';
import { startLocalIdp, type LocalIdp } from '../support/localIdp';
import { removeDir, setSecret, startPolicyServer, tokenFile, type RunningPolicyServer } from '../support/policyHarness';
import { startKeyedUpstream, type KeyedUpstream } from '../support/keyedUpstream';
import { startPostgres, type RunningPostgres } from '../support/postgres';
import { startRoundRobinBalancer, type RoundRobinBalancer } from '../support/roundRobinBalancer';

const ISSUER = 'https://policy.gatehouse.test';
const SERVICE_KEY = `sk-live-${'4d3c2b1a'.repeat(4)}`;
const POLICY = `version: 1
org: test
admins: [admins]
servers:
  - id: probe
    title: Probe
    transport: { type: stdio, command: ${NODE}, args: [${join(FIXTURES, 'probe-upstream.mjs')}] }
  - id: vault
    title: Vault API
    transport: { type: streamable-http, url: "VAULT_URL" }
    credential: { mode: shared-key, secretRef: vault-key }
groups:
  - { id: engineers, match: [{ claim: groups, equals: engineers }] }
  - { id: admins, match: [{ user: carol@example.com }] }
  - { id: leads, match: [{ user: carol@example.com }] }
rules:
  - { id: engineers-probe, effect: allow, principals: [group:engineers], servers: [probe], tools: [echo] }
  - { id: engineers-vault, effect: allow, principals: [group:engineers], servers: [vault], tools: [echo] }
  - { id: env-reviewed, effect: confirm, principals: [group:engineers], servers: [probe], tools: [env], reviewers: leads, reason: a lead looks first }
`;

const auditEvent = (user: string) => auditEventOf({ user, client: { name: 'load', version: '1' } });

describe('three policy-server replicas on PostgreSQL', function () {
  this.timeout(180_000);
  let postgres: RunningPostgres;
  let idp: LocalIdp;
  let scratch: string;
  const replicas: RunningPolicyServer[] = [];
  let balancer: RoundRobinBalancer;
  let vault: KeyedUpstream;
  let keyFile: string;
  const tokens: Record<string, string> = {};
  const gateways: RunningGateway[] = [];

  before(async () => {
    postgres = await startPostgres();
    idp = await startLocalIdp();
    for (const user of ['alice', 'dave', 'carol']) tokens[user] = await idp.tokenFor(user);
    scratch = mkdtempSync(join(tmpdir(), 'gatehouse-replicas-'));
    vault = await startKeyedUpstream(SERVICE_KEY);
    keyFile = join(scratch, 'secrets.key');
    await promisify(execFile)(NODE, [join(REPO, 'dist/gatehouse.js'), 'secret', 'init-key', keyFile]);
    const policyFile = join(scratch, 'org-policy.yaml');
    writeFileSync(policyFile, POLICY.replace('VAULT_URL', vault.url));
    // One data dir for all three: the signing keys are shared through its key file. The first makes them.
    // Every replica gets the same secrets key file; the ciphertexts are in the database.
    const shared = { dataDir: scratch, extraArgs: ['--store', postgres.url, '--issuer-url', ISSUER, '--secrets-key-file', keyFile] };
    replicas.push(await startPolicyServer(idp, { ...shared, bootstrapPolicy: policyFile }));
    replicas.push(...(await Promise.all([startPolicyServer(idp, shared), startPolicyServer(idp, shared)])));
    balancer = await startRoundRobinBalancer(replicas.map((r) => r.url));
  });

  after(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    await balancer?.stop();
    await Promise.all(replicas.map((r) => r.stop()));
    await idp?.stop();
    await vault?.stop();
    await postgres?.stop();
    if (scratch) removeDir(scratch);
  });

  async function gateway(user: string, policyServerUrl: string): Promise<{ gateway: RunningGateway; client: Client }> {
    const started = await startGateway(null, {
      extraArgs: [
        '--policy-server',
        policyServerUrl,
        '--policy-keys',
        replicas[0]!.keysPath,
        '--policy-issuer',
        ISSUER,
        '--policy-token-file',
        tokenFile(scratch, `${user}-${gateways.length}`, tokens[user]!),
      ],
    });
    gateways.push(started);
    return { gateway: started, client: await started.connect('probe') };
  }

  it('serves one policy from every replica: the same keys, issuer and version', async () => {
    const answers = await Promise.all(
      replicas.map(async (r) => {
        const jwks = (await (await fetch(`${r.url}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> };
        const policy = await fetch(`${r.url}/v1/effective-policy`, { headers: { Authorization: `Bearer ${tokens.alice}` } });
        return { kids: jwks.keys.map((k) => k.kid).join(','), status: policy.status };
      }),
    );
    assert.equal(new Set(answers.map((a) => a.kids)).size, 1, 'one key set');
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 200, 200],
    );
  });

  it('keeps every acknowledged audit event and keeps serving when a replica is killed under load', async () => {
    const { client } = await gateway('alice', balancer.url);
    assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'before' } })), 'before');

    const acknowledged: string[] = [];
    let refused = 0;
    let stop = false;
    // Four shippers, each posting batches of 50 through the balancer and resending a batch whose answer was lost, as a gateway's shipper does.
    const shipper = async (user: string) => {
      while (!stop) {
        const batch = Array.from({ length: 50 }, () => auditEvent(user));
        for (let attempt = 0; attempt < 10; attempt++) {
          const answer = await fetch(`${balancer.url}/v1/audit`, {
            method: 'POST',
            headers: { Authorization: `Bearer ${tokens[user]}`, 'Content-Type': 'application/json' },
            body: JSON.stringify({ events: batch }),
          }).catch(() => undefined);
          if (answer?.status === 200) {
            await answer.arrayBuffer();
            acknowledged.push(...batch.map((e) => e.id));
            break;
          }
          refused++;
          await answer?.arrayBuffer().catch(() => undefined);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    };
    const load = Promise.all(['alice', 'dave', 'alice', 'dave'].map(shipper));
    await waitUntil(() => acknowledged.length >= 2_000, 60_000);
    const killedAt = acknowledged.length;
    await replicas[1]!.stop('SIGKILL');
    await waitUntil(() => acknowledged.length >= killedAt + 2_000, 60_000);
    stop = true;
    await load;

    const stored = await postgres.query<{ n: string }>('select count(*) as n from audit_events where id = any($1)', [acknowledged]);
    console.log(
      `      audit under load through 3 replicas, one killed: ${acknowledged.length} events acknowledged, ${stored.rows[0]!.n} stored; ${refused} posts retried`,
    );
    assert.equal(Number(stored.rows[0]!.n), acknowledged.length, 'no acknowledged audit event is lost');
    // The gateway behind the balancer keeps working (policy fetches and audit shipping fail over).
    assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'after' } })), 'after');
  });

  it('relays with a service key set once in the database, through any replica', async () => {
    // Set after the replicas started, with the CLI pointed at the database: every replica uses it at its next call.
    await setSecret(join(scratch, 'data'), keyFile, 'vault-key', SERVICE_KEY, ['--store', postgres.url]);
    const relay = (replica: RunningPolicyServer, user: string, body: unknown, sessionId?: string) =>
      fetch(`${replica.url}/relay/vault/mcp`, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${tokens[user]}`,
          'Content-Type': 'application/json',
          Accept: 'application/json, text/event-stream',
          ...(sessionId ? { 'Mcp-Session-Id': sessionId } : {}),
        },
        body: JSON.stringify(body),
      });
    // The session is opened through replica 1 and used through replica 3: its owner is in the database.
    const opened = await relay(replicas[0]!, 'alice', {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'direct', version: '1' } },
    });
    assert.equal(opened.status, 200, await opened.clone().text());
    const sessionId = opened.headers.get('mcp-session-id')!;
    await opened.text();
    assert.equal((await relay(replicas[2]!, 'alice', { jsonrpc: '2.0', method: 'notifications/initialized' }, sessionId)).status, 202);
    const called = await relay(
      replicas[2]!,
      'alice',
      { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { text: 'across replicas' } } },
      sessionId,
    );
    assert.equal(called.status, 200);
    assert.match(await called.text(), /across replicas/);
    assert.equal(
      (await relay(replicas[2]!, 'dave', { jsonrpc: '2.0', id: 3, method: 'tools/list' }, sessionId)).status,
      404,
      'another user cannot use it on any replica',
    );
    assert.ok(
      vault.authorizations.filter((a) => a === `Bearer ${SERVICE_KEY}`).length >= 3,
      'both replicas added the key from the database',
    );
    const rows = await postgres.query<{ jwe: string }>('select jwe from relay_secrets');
    assert.equal(rows.rows.length, 1);
    assert.ok(!rows.rows[0]!.jwe.includes(SERVICE_KEY), 'only the ciphertext is in the database');
  });

  it('shares the review queue: requested and decided through one replica, listed and long-polled through another, answered at once', async () => {
    const auth = (user: string) => ({ Authorization: `Bearer ${tokens[user]}`, 'Content-Type': 'application/json' });
    const requested = await fetch(`${replicas[0]!.url}/v1/reviews`, {
      method: 'POST',
      headers: auth('alice'),
      body: JSON.stringify({ server: 'probe', method: 'tools/call', tool: 'env', arguments: {} }),
    });
    assert.equal(requested.status, 201, await requested.clone().text());
    const { review } = (await requested.json()) as { review: { id: string } };
    const waiting = fetch(`${replicas[2]!.url}/v1/reviews/${review.id}?wait=20`, { headers: auth('alice') }).then(async (r) => ({
      at: performance.now(),
      body: (await r.json()) as { review: { state: string } },
    }));
    await new Promise((r) => setTimeout(r, 200)); // the long-poll is waiting
    const listed = (await (await fetch(`${replicas[2]!.url}/v1/reviews`, { headers: auth('carol') })).json()) as {
      reviews: Array<{ id: string }>;
    };
    assert.ok(
      listed.reviews.some((r) => r.id === review.id),
      'the reviewer sees it through another replica',
    );
    const decidedAt = performance.now();
    const decided = await fetch(`${replicas[0]!.url}/v1/reviews/${review.id}/decision`, {
      method: 'POST',
      headers: auth('carol'),
      body: JSON.stringify({ decision: 'approve' }),
    });
    assert.equal(decided.status, 200, await decided.clone().text());
    const answer = await waiting;
    assert.equal(answer.body.review.state, 'approved');
    console.log(`      review decided on replica 1 -> long-poll on replica 3 answered: ${(answer.at - decidedAt).toFixed(0)} ms`);
    assert.ok(answer.at - decidedAt < 2_000, 'woken by the decision, not by the poll timing out');
    const again = await fetch(`${replicas[2]!.url}/v1/reviews/${review.id}/decision`, {
      method: 'POST',
      headers: auth('carol'),
      body: JSON.stringify({ decision: 'deny' }),
    });
    assert.equal(again.status, 409, 'decided once, whichever replica is asked');
  });

  it('makes a revocation published on one replica effective at a gateway connected to another within 5 s', async () => {
    // dave's gateway talks to replica 3 only (its event stream is there); the admin revokes on replica 1.
    const { client } = await gateway('dave', replicas[2]!.url);
    assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'in' } })), 'in');
    const started = performance.now();
    const revoked = await fetch(`${replicas[0]!.url}/v1/revocations`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${tokens.carol}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ sub: 'dave' }),
    });
    assert.equal(revoked.status, 201, await revoked.text());
    await waitUntil(
      async () =>
        client.callTool({ name: 'echo', arguments: { text: 'x' } }).then(
          () => false,
          () => true,
        ),
      5_000,
    );
    const tookMs = performance.now() - started;
    console.log(`      revocation on replica 1 -> refused at a gateway on replica 3: ${tookMs.toFixed(0)} ms`);
    assert.ok(tookMs < 5_000);
  });
});
