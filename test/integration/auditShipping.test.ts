/**
 * Central audit end to end, all real processes: a local IdP, the policy server, managed
 * gateways for alice (engineer, admin) and bob (contractor), the probe upstream. Calls
 * reach the central trail within seconds; the policy server going away loses nothing and
 * duplicates nothing; a `kill -9` of the gateway loses no answered call's event; nobody
 * can write someone else's events; CSV and JSON-lines exports agree; only admins read.
 */
import { auditEventOf } from '../support/auditEvents';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { createAuditEventId, digestArguments, type AuditEvent } from '../../common/audit/auditEvent';
import type { AuditQueryResponse } from '../../common/policy/policyServerApi';
import {
  FIXTURES,
  NODE,
  REPO,
  settledSpoolEvents,
  spoolEvents,
  startGateway,
  textOf,
  waitUntil,
  type RunningGateway,
} from '../support/gatewayHarness';
import { startLocalIdp, type LocalIdp } from '../support/localIdp';
import { managedArgs, removeDir, startPolicyServer, tokenFile, type RunningPolicyServer } from '../support/policyHarness';
import { csvEvents } from '../support/auditCsvReader';
import { spoolShippedThrough } from '../support/spoolEvents';

const PROBE = join(FIXTURES, 'probe-upstream.mjs');

const POLICY = `version: 1
org: test
admins: [admins]
servers:
  - id: probe
    title: Probe
    transport: { type: stdio, command: ${NODE}, args: [${PROBE}] }
groups:
  - { id: engineers, match: [{ claim: groups, equals: engineers }] }
  - { id: contractors, match: [{ claim: groups, equals: contractors }] }
  - { id: admins, match: [{ user: alice@example.com }] }
rules:
  - { id: engineers-all, effect: allow, principals: [group:engineers], servers: [probe] }
  - { id: contractors-echo, effect: allow, principals: [group:contractors], servers: [probe], tools: [echo] }
guardrails:
  bundleTtlSeconds: 3600
`;

describe('audit shipping: managed gateways to the central trail', function () {
  this.timeout(180_000);
  let idp: LocalIdp;
  let server: RunningPolicyServer;
  let aliceToken: string;
  let bobToken: string;
  let aliceTokenPath: string;
  let bobTokenPath: string;
  let alice: RunningGateway;
  let bob: RunningGateway;
  let aliceClient: Client;

  const api = async (token: string | undefined, path: string, init: RequestInit = {}) =>
    fetch(`${server.url}${path}`, {
      ...init,
      headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(init.body ? { 'Content-Type': 'application/json' } : {}) },
    });
  /** Every central event matching `query`, through the cursor pages. */
  const central = async (query: Record<string, string>, limit = 1000): Promise<AuditEvent[]> => {
    const events: AuditEvent[] = [];
    let cursor: string | undefined;
    do {
      const params = new URLSearchParams({ ...query, limit: String(limit), ...(cursor ? { cursor } : {}) });
      const response = await api(aliceToken, `/v1/audit?${params}`);
      assert.equal(response.status, 200, await response.clone().text());
      const page = (await response.json()) as AuditQueryResponse;
      events.push(...page.events);
      cursor = page.nextCursor;
    } while (cursor);
    return events;
  };
  const post = (token: string, events: AuditEvent[]) => api(token, '/v1/audit', { method: 'POST', body: JSON.stringify({ events }) });
  const cli = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        NODE,
        [join(REPO, 'dist/gatehouse.js'), 'policy', 'audit', ...args],
        { env: { PATH: process.env.PATH } },
        (error, stdout, stderr) => {
          resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
        },
      );
    });

  before(async () => {
    idp = await startLocalIdp();
    aliceToken = await idp.tokenFor('alice');
    bobToken = await idp.tokenFor('bob');
    server = await startPolicyServer(idp, { policyYaml: POLICY });
    aliceTokenPath = tokenFile(server.dir, 'alice', aliceToken);
    bobTokenPath = tokenFile(server.dir, 'bob', bobToken);
    alice = await startGateway(null, { extraArgs: managedArgs(server, aliceTokenPath) });
    bob = await startGateway(null, { extraArgs: managedArgs(server, bobTokenPath) });
    aliceClient = await alice.connect('probe', { name: 'shipping-test' });
  });

  after(async () => {
    await alice?.stop();
    await bob?.stop();
    await server?.stop();
    await idp?.stop();
    if (server) removeDir(server.dir);
  });

  it('brings each call through a managed gateway to the central trail within a few seconds', async () => {
    const latencies: number[] = [];
    for (let i = 0; i < 8; i++) {
      assert.equal(textOf(await aliceClient.callTool({ name: 'echo', arguments: { text: `hello ${i}` } })), `hello ${i}`);
      const answeredAt = Date.now();
      await waitUntil(async () => (await central({ user: 'alice', tool: 'echo' })).length === i + 1, 5_000, 10);
      latencies.push(Date.now() - answeredAt);
    }
    latencies.sort((a, b) => a - b);
    console.log(
      `      call answered -> visible centrally: min ${latencies[0]} ms, median ${latencies[4]} ms, max ${latencies.at(-1)} ms (8 calls)`,
    );
    assert.ok(latencies.at(-1)! < 3_000);
    const events = await central({ user: 'alice', tool: 'echo' });
    assert.deepEqual(
      events.map((e) => [e.user, e.server, e.method, e.tool, e.decision, e.status, e.rule, e.client.name]),
      Array.from({ length: 8 }, () => ['alice', 'probe', 'tools/call', 'echo', 'allow', 'ok', 'engineers-all', 'shipping-test']),
    );
    assert.deepEqual(
      events,
      (await settledSpoolEvents(join(alice.dir, 'state'))).filter((e) => e.tool === 'echo'),
      'the central copy is the spooled event',
    );
    // A refusal is audited and shipped too (bob may only echo).
    const bobClient = await bob.connect('probe');
    await assert.rejects(bobClient.callTool({ name: 'sleep', arguments: { ms: 1 } }), /No policy rule allows/);
    await waitUntil(async () => (await central({ user: 'bob', decision: 'deny' })).length === 1, 5_000);
    assert.equal((await central({ user: 'bob', tool: 'sleep' }))[0]!.status, 'denied');
  });

  it('keeps calls working while the policy server is down, then delivers every spooled event exactly once', async () => {
    await server.stop();
    for (let i = 0; i < 10; i++) {
      assert.equal(textOf(await aliceClient.callTool({ name: 'echo', arguments: { text: `offline ${i}` } })), `offline ${i}`);
    }
    const spooled = await settledSpoolEvents(join(alice.dir, 'state'));
    assert.equal(spooled.filter((e) => e.tool === 'echo').length, 18);
    await new Promise((r) => setTimeout(r, 300)); // what a shipper would have done by now, it tried
    const centralBefore = new Set((await readCentralOffline()).map((e) => e.id));
    assert.ok(
      spooled.some((e) => !centralBefore.has(e.id)),
      'the offline calls are only in the spool',
    );
    const restartedAt = Date.now();
    const url = new URL(server.url);
    server = await startPolicyServer(idp, { dataDir: server.dir, port: Number(url.port) });
    const took = await waitUntil(async () => (await central({ user: 'alice' })).length >= spooled.length, 40_000, 50);
    console.log(`      policy server back -> spooled events delivered: ${Date.now() - restartedAt} ms after restart (poll ${took} ms)`);
    const events = await central({ user: 'alice' }, 7);
    const ids = events.map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, 'no event twice');
    assert.deepEqual([...ids].sort(), spooled.map((e) => e.id).sort(), 'every spooled event, exactly once');
    await waitUntil(
      () => spoolShippedThrough(join(alice.dir, 'state')) > 0 && spoolEvents(join(alice.dir, 'state')).length === spooled.length,
      5_000,
    );
  });

  /** The central events read straight from the stopped server's files (it cannot answer now). */
  async function readCentralOffline(): Promise<AuditEvent[]> {
    const dir = join(server.dir, 'data', 'audit');
    return readdirSync(dir)
      .filter((f) => f.endsWith('.jsonl'))
      .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean))
      .map((line) => JSON.parse(line) as AuditEvent);
  }

  it("delivers every answered call's event after a kill -9 of the gateway, once it restarts on the same state dir", async () => {
    const clients = [aliceClient, await alice.connect('probe')];
    const answered: string[] = [];
    let stop = false;
    const workers = clients.flatMap((client, c) =>
      Array.from({ length: 4 }, async (_, w) => {
        for (let i = 0; !stop; i++) {
          const text = `k9-${c}-${w}-${i}`;
          try {
            await client.callTool({ name: 'echo', arguments: { text } }, undefined, { timeout: 2_000 });
            answered.push(text);
          } catch {
            return;
          }
        }
      }),
    );
    // Shipping keeps up under load; then the policy server stalls (SIGSTOP) with a batch in
    // flight while calls go on, and the gateway dies in that state.
    await new Promise((r) => setTimeout(r, 1_000));
    server.child.kill('SIGSTOP');
    let killedAt: number;
    try {
      await new Promise((r) => setTimeout(r, 500));
      alice.child.kill('SIGKILL');
      killedAt = answered.length;
      stop = true;
      await Promise.all(workers);
      await new Promise((r) =>
        alice.child.exitCode !== null || alice.child.signalCode !== null ? r(undefined) : alice.child.once('exit', r),
      );
    } finally {
      server.child.kill('SIGCONT');
    }
    assert.ok(answered.length > 50, `load too light (${answered.length} answered)`);
    const key = Buffer.from(readFileSync(join(alice.dir, 'state', 'audit', 'args-digest.key'), 'utf8').trim(), 'base64url');
    const wanted = new Set(answered.map((text) => digestArguments({ text }, key)));
    const centralNow = new Set((await central({ user: 'alice', tool: 'echo' })).map((e) => e.argsDigest));
    const missingAtKill = [...wanted].filter((d) => !centralNow.has(d)).length;
    assert.ok(missingAtKill > 0, "calls answered while the server stalled exist only in the dead gateway's spool");
    const spooled = spoolEvents(join(alice.dir, 'state'));

    const restartedAt = Date.now();
    alice = await startGateway(null, { dir: alice.dir, extraArgs: managedArgs(server, aliceTokenPath) });
    const readyAfter = Date.now() - restartedAt;
    await waitUntil(
      async () => {
        const digests = new Set((await central({ user: 'alice', tool: 'echo' })).map((e) => e.argsDigest));
        return [...wanted].every((d) => digests.has(d));
      },
      30_000,
      50,
    );
    console.log(
      `      kill -9 with the server stalled: ${answered.length} calls answered (${killedAt} before the kill), ${missingAtKill} of them only in the spool; ` +
        `all central ${Date.now() - restartedAt} ms after the restart began (gateway ready after ${readyAfter} ms)`,
    );
    // The restart recorded any answered call whose outcome never reached the spool (status unknown): the spool now.
    const spooledAfter = await settledSpoolEvents(join(alice.dir, 'state'));
    assert.ok(spooledAfter.length >= spooled.length);
    await waitUntil(async () => (await central({ user: 'alice' })).length >= spooledAfter.length, 10_000);
    const ids = (await central({ user: 'alice' })).map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, 'no event twice, though the batch in flight at the kill was sent again');
    assert.deepEqual(ids.sort(), spooledAfter.map((e) => e.id).sort(), 'the central trail is the spool, every event once');
    aliceClient = await alice.connect('probe', { name: 'shipping-test' });
  });

  it('refuses a batch that records someone else (403) and stores nothing of it; resends are acknowledged once', async () => {
    const bobsOwn = auditEventOf({ user: 'bob', client: { name: 'hand-made', version: '1' } });
    const forged: AuditEvent = { ...bobsOwn, id: createAuditEventId(), user: 'alice' };
    for (const batch of [[forged], [bobsOwn, forged]]) {
      const response = await post(bobToken, batch);
      assert.equal(response.status, 403);
      assert.match(
        ((await response.json()) as { message: string }).message,
        /only be sent by the user they record.*Nothing in this batch was stored/,
      );
    }
    const ids = new Set((await central({})).map((e) => e.id));
    assert.ok(!ids.has(forged.id) && !ids.has(bobsOwn.id));
    assert.equal((await post('not-a-token', [bobsOwn])).status, 401);
    const first = await post(bobToken, [bobsOwn]);
    assert.equal(first.status, 200);
    assert.deepEqual(await first.json(), { accepted: 1, duplicates: 0 });
    assert.deepEqual(await (await post(bobToken, [bobsOwn, bobsOwn])).json(), { accepted: 0, duplicates: 2 });
    assert.equal((await central({})).filter((e) => e.id === bobsOwn.id).length, 1);
    const invalid = await post(bobToken, [{ ...bobsOwn, decision: 'maybe' as AuditEvent['decision'] }]);
    assert.equal(invalid.status, 400);
    assert.equal(
      (await api(bobToken, '/v1/audit', { method: 'POST', body: JSON.stringify({ events: Array.from({ length: 501 }, () => bobsOwn) }) }))
        .status,
      400,
    );
  });

  it('exports the same events as CSV and as JSON lines, through the API and `gatehouse policy audit`', async () => {
    // Values that need RFC 4180 quoting, in bob's own events.
    const tricky = [
      { tool: 'a,"quoted" tool\nwith a newline', client: { name: 'Code, "Insiders"', version: '1.0\r\n2' } },
      {
        tool: 'plain',
        client: { name: 'x', version: 'y' },
        redactions: { 'github-token': 2, 'aws-access-key': 1 },
        flags: ['injection-marker', 'a,b'],
        rule: 'r-1',
        reviewer: 'carol',
      },
    ].map((extra, n): AuditEvent => ({
      id: createAuditEventId(),
      time: new Date(Date.now() - 60_000 + n).toISOString(),
      user: 'bob',
      server: 'probe',
      method: 'tools/call',
      decision: 'allow',
      status: 'ok',
      redactions: {},
      flags: [],
      latencyMs: 0.125,
      argsDigest: 'cd'.repeat(32),
      ...extra,
    }));
    assert.equal((await post(bobToken, tricky)).status, 200);
    for (const filters of [{ user: 'bob' }, { user: 'alice', tool: 'echo' }, { decision: 'deny' }] as Array<Record<string, string>>) {
      const params = new URLSearchParams(filters);
      const jsonl = await api(aliceToken, `/v1/audit/export?format=jsonl&${params}`);
      assert.equal(jsonl.status, 200);
      assert.match(jsonl.headers.get('content-type') ?? '', /^application\/x-ndjson/);
      const jsonlEvents = (await jsonl.text())
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as AuditEvent);
      const csv = await api(aliceToken, `/v1/audit/export?format=csv&${params}`);
      assert.equal(csv.status, 200);
      assert.match(csv.headers.get('content-type') ?? '', /^text\/csv/);
      assert.match(csv.headers.get('content-disposition') ?? '', /attachment; filename="gatehouse-audit-.*\.csv"/);
      const csvText = await csv.text();
      assert.ok(jsonlEvents.length > 0, JSON.stringify(filters));
      assert.deepEqual(csvEvents(csvText), jsonlEvents, `CSV and JSONL agree for ${JSON.stringify(filters)}`);
      assert.deepEqual(jsonlEvents, await central(filters, 3), 'the export is what the query pages show');
      // The CLI prints the same export.
      const filterArgs = Object.entries(filters).flatMap(([name, value]) => [`--${name}`, value]);
      const viaCli = await cli([...filterArgs, '--format', 'csv', '--server-url', server.url, '--token-file', aliceTokenPath]);
      assert.equal(viaCli.code, 0, viaCli.stderr);
      assert.equal(viaCli.stdout, csvText);
      const viaCliJsonl = await cli([...filterArgs, '--server-url', server.url, '--token-file', aliceTokenPath]);
      assert.deepEqual(
        viaCliJsonl.stdout
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as AuditEvent),
        jsonlEvents,
      );
    }
    const bobs = await central({ user: 'bob', tool: 'plain' });
    assert.deepEqual(bobs, [tricky[1]]);
    // Filters by MCP server and time window.
    const window = await central({ server: 'probe', from: tricky[0]!.time, to: new Date(Date.parse(tricky[1]!.time) + 1).toISOString() });
    assert.deepEqual(
      window.map((e) => e.id),
      tricky.map((e) => e.id),
    );
    const usage = await cli(['--server', server.url, '--token-file', aliceTokenPath]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--server filters by MCP server id; give the policy server with --server-url/);
    assert.equal((await api(aliceToken, '/v1/audit?limit=10001')).status, 400);
    assert.equal((await api(aliceToken, '/v1/audit?color=red')).status, 400);
    assert.equal((await api(aliceToken, '/v1/audit?from=yesterday')).status, 400);
    assert.equal((await api(aliceToken, '/v1/audit?cursor=bogus')).status, 400);
    assert.equal((await api(aliceToken, '/v1/audit/export?format=xml')).status, 400);
  });

  it('lets only admins query and export (403 for anyone else, 401 without a token)', async () => {
    for (const path of ['/v1/audit', '/v1/audit?user=bob', '/v1/audit/export?format=csv', '/v1/audit/export?format=jsonl&user=bob']) {
      const response = await api(bobToken, path);
      assert.equal(response.status, 403, path);
      assert.match(((await response.json()) as { message: string }).message, /not in an admin group/);
      assert.equal((await api(undefined, path)).status, 401, path);
    }
    const viaCli = await cli(['--user', 'bob', '--server-url', server.url, '--token-file', bobTokenPath]);
    assert.equal(viaCli.code, 1);
    assert.match(viaCli.stderr, /not in an admin group.*HTTP 403 forbidden/);
    assert.equal(viaCli.stdout, '');
  });
});
