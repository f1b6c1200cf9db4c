/**
 * Shared service keys behind the policy server's relay (credential mode `shared-key`), with
 * real parts: the local IdP (oidc-provider), the real policy server started with a secret
 * store key made by the real `gatehouse secret init-key`, the key set and rotated by the
 * real `gatehouse secret set` (value on stdin), a real managed gateway, and a remote MCP
 * server on loopback that accepts only the service key (test/support/keyedUpstream.ts).
 * Shown: calls work through the gateway with the key added at the relay; the user's token
 * never reaches the upstream; an upstream echoing its key is scrubbed; the relay decides
 * again (a client going around the gateway cannot call a denied tool); other users, no
 * token, and revoked users are refused; rotation takes effect without a restart; the key
 * is in no response, log line, audit record or file on the laptop side.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { AuditQueryResponse } from '../../common/policy/policyServerApi';
import { NODE, REPO, startGateway, textOf, waitUntil, type RunningGateway } from '../support/gatewayHarness';
import { startKeyedUpstream, type KeyedUpstream } from '../support/keyedUpstream';
import { startLocalIdp, type LocalIdp } from '../support/localIdp';
import {
  filesUnder,
  managedArgs,
  removeDir,
  setSecret,
  startPolicyServer,
  tokenFile,
  type RunningPolicyServer,
} from '../support/policyHarness';

const CLI = join(REPO, 'dist/gatehouse.js');
const FIRST_KEY = `sk-live-${'a1b2c3d4'.repeat(4)}`;
const SECOND_KEY = `sk-live-${'e5f6a7b8'.repeat(4)}`;

function policy(upstreamUrl: string): string {
  return `version: 1
org: test
admins: [admins]
servers:
  - id: vault
    title: Vault API
    transport: { type: streamable-http, url: "${upstreamUrl}" }
    credential: { mode: shared-key, secretRef: vault-key }
groups:
  - { id: engineers, match: [{ user: alice }] }
  - { id: admins, match: [{ user: carol }] }
  - { id: leads, match: [{ user: carol }] }
rules:
  - { id: engineers-vault, effect: allow, principals: [group:engineers], servers: [vault], tools: [echo, leak] }
  - { id: no-drops, effect: deny, principals: ["*"], servers: [vault], tools: [drop_table], reason: tables stay }
  - id: deploys-confirmed
    effect: confirm
    principals: [group:engineers]
    servers: [vault]
    tools: [echo]
    when: args.text.startsWith("deploy")
  - id: releases-reviewed
    effect: confirm
    principals: [group:engineers]
    servers: [vault]
    tools: [echo]
    when: args.text.startsWith("release")
    reviewers: leads
    reason: a lead signs releases
`;
}

describe("shared service keys behind the policy server's relay", function () {
  this.timeout(120_000);
  let idp: LocalIdp;
  let upstream: KeyedUpstream;
  let server: RunningPolicyServer;
  let gateway: RunningGateway;
  let client: Client;
  let keyFile: string;
  const tokens: Record<string, string> = {};

  const relay = (token: string | undefined, body: unknown, sessionId?: string) =>
    fetch(`${server.url}/relay/vault/mcp`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream',
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
        ...(sessionId ? { 'Mcp-Session-Id': sessionId } : {}),
      },
      body: JSON.stringify(body),
    });
  const initialize = {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'direct', version: '1' } },
  };

  before(async () => {
    idp = await startLocalIdp();
    for (const user of ['alice', 'bob', 'carol']) tokens[user] = await idp.tokenFor(user);
    upstream = await startKeyedUpstream(FIRST_KEY);
    const scratch = mkdtempSync(join(tmpdir(), 'gatehouse-relay-'));
    keyFile = join(scratch, 'secrets.key');
    await promisify(execFile)(NODE, [CLI, 'secret', 'init-key', keyFile]);
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    // The harness keeps the server's data in <dir>/data.
    await setSecret(join(scratch, 'data'), keyFile, 'vault-key', FIRST_KEY);
    server = await startPolicyServer(idp, {
      dataDir: scratch,
      policyYaml: policy(upstream.url),
      extraArgs: ['--secrets-key-file', keyFile],
    });
    gateway = await startGateway(null, { extraArgs: managedArgs(server, tokenFile(scratch, 'alice', tokens.alice!)) });
    client = await gateway.connect('vault');
  });

  after(async () => {
    await client?.close();
    await gateway?.stop();
    await server?.stop();
    await upstream?.stop();
    await idp?.stop();
    if (server) removeDir(server.dir);
  });

  it("calls the upstream through the gateway and the relay, which adds the key; the user's token never reaches the upstream", async () => {
    const tools = (await client.listTools()).tools.map((tool) => tool.name).sort();
    assert.deepEqual(tools, ['echo', 'leak'], 'the denied tool is not listed');
    assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'through the relay' } })), 'through the relay');
    assert.ok(upstream.authorizations.length > 0);
    assert.ok(
      upstream.authorizations.every((header) => header === `Bearer ${FIRST_KEY}`),
      "only the service key, never alice's token",
    );
    assert.equal(gateway.ready.servers[0]?.url?.startsWith('http://'), true);
  });

  it('scrubs the key from an upstream answer that echoes it', async () => {
    const answer = textOf(await client.callTool({ name: 'leak', arguments: {} }));
    assert.match(answer, /I was called with: Bearer \[REDACTED:relay-credential\]/);
    assert.ok(!answer.includes(FIRST_KEY));
  });

  it('decides again at the relay: a client going around the gateway cannot call a denied tool', async () => {
    const opened = await relay(tokens.alice, initialize);
    assert.equal(opened.status, 200);
    const sessionId = opened.headers.get('mcp-session-id')!;
    await opened.text();
    await relay(tokens.alice, { jsonrpc: '2.0', method: 'notifications/initialized' }, sessionId).then((r) => r.text());
    const refused = await relay(
      tokens.alice,
      { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'drop_table', arguments: { table: 'users' } } },
      sessionId,
    );
    const body = (await refused.json()) as { error?: { code: number; message: string } };
    assert.equal(body.error?.code, -32003);
    assert.match(body.error!.message, /no-drops/);
    // The relay cannot see a confirmation, so a confirm rule refuses there.
    const unconfirmed = (await (
      await relay(
        tokens.alice,
        { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'echo', arguments: { text: 'deploy prod' } } },
        sessionId,
      )
    ).json()) as { error?: { message: string } };
    assert.match(unconfirmed.error?.message ?? '', /deploys-confirmed.*cannot tell whether anyone confirmed/);
    // What the relay decides is what the upstream gets: keys equal but for case or form, and unknown members or methods, are refused.
    for (const tricky of [
      { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'echo', Name: 'drop_table', arguments: { text: 'x' } } },
      {
        jsonrpc: '2.0',
        id: 6,
        method: 'tools/call',
        params: { name: 'echo', arguments: { text: 'x' }, 'argument\u017f': { table: 'users' } },
      },
      { jsonrpc: '2.0', ID: 7, method: 'tools/call', params: { name: 'drop_table', arguments: { table: 'users' } } },
      { jsonrpc: '2.0', id: 8, method: 'debug/exec', params: {} },
    ]) {
      const refusedTrick = await relay(tokens.alice, tricky, sessionId);
      assert.equal(refusedTrick.status, 400, JSON.stringify(tricky));
      await refusedTrick.text();
    }
    // Lists are filtered at the relay as at the gateway: the denied tool's name does not leave either.
    const listed = await relay(tokens.alice, { jsonrpc: '2.0', id: 10, method: 'tools/list' }, sessionId);
    assert.equal(listed.status, 200);
    const listText = await listed.text();
    assert.ok(!listText.includes('drop_table'), 'a denied tool is not listed to a client going around the gateway');
    const listedNames = [...listText.matchAll(/"name":"(\w+)"/g)].map((m) => m[1]).sort();
    assert.deepEqual(listedNames, ['echo', 'leak']);
    assert.equal(
      (await relay(tokens.alice, { jsonrpc: '2.0', id: 9, method: 'tools/list' }, 'a-session-nobody-opened')).status,
      404,
      'unknown sessions are refused, not passed on',
    );
    // Bob cannot use another user's upstream session, and has no rule for the server at all.
    assert.equal((await relay(tokens.bob, initialize)).status, 404);
    assert.equal((await relay(tokens.bob, { jsonrpc: '2.0', id: 3, method: 'tools/list' }, sessionId)).status, 404);
    const anonymous = await relay(undefined, initialize);
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer/);
  });

  it('lets a call a reviewer approved pass the relay: once, and only that call', async () => {
    const asCarol = { Authorization: `Bearer ${tokens.carol}`, 'Content-Type': 'application/json' };
    const call = client.callTool({ name: 'echo', arguments: { text: 'release 1.2' } });
    let reviewId = '';
    await waitUntil(async () => {
      const pending = (await (await fetch(`${server.url}/v1/reviews`, { headers: asCarol })).json()) as {
        reviews: Array<{ id: string; tool: string; arguments: Record<string, unknown> }>;
      };
      reviewId = pending.reviews.find((r) => r.tool === 'echo')?.id ?? '';
      return reviewId !== '';
    }, 10_000);
    const listed = (await (await fetch(`${server.url}/v1/reviews/${reviewId}`, { headers: asCarol })).json()) as {
      review: Record<string, unknown>;
    };
    assert.equal(listed.review.argumentsDigest, undefined, 'the digest of the unredacted arguments is never shown');
    const approved = await fetch(`${server.url}/v1/reviews/${reviewId}/decision`, {
      method: 'POST',
      headers: asCarol,
      body: JSON.stringify({ decision: 'approve' }),
    });
    assert.equal(approved.status, 200);
    assert.equal(textOf(await call), 'release 1.2', 'the approved call went through the relay');
    assert.ok(!upstream.bodies.some((b) => b.includes('io.gatehouse/review')), 'the review id is not passed to the upstream');

    // Around the gateway: the same review id cannot be used again, nor for other arguments.
    const opened = await relay(tokens.alice, initialize);
    const sessionId = opened.headers.get('mcp-session-id')!;
    await opened.text();
    const withProof = (text: string, id: number) => ({
      jsonrpc: '2.0',
      id,
      method: 'tools/call',
      params: { name: 'echo', arguments: { text }, _meta: { 'io.gatehouse/review': reviewId } },
    });
    for (const attempt of [withProof('release 1.2', 20), withProof('release 9.9', 21)]) {
      const refused = (await (await relay(tokens.alice, attempt, sessionId)).json()) as { error?: { message: string } };
      assert.match(refused.error?.message ?? '', /No review approved for exactly this call/, JSON.stringify(attempt));
    }
    const bobTries = await relay(tokens.bob, withProof('release 1.2', 22));
    assert.equal(bobTries.status, 404, 'bob has no way to the server at all');
  });

  it("audits every relayed call centrally with the caller's identity, and the key in nothing", async () => {
    const response = await fetch(`${server.url}/v1/audit?server=vault&limit=100`, { headers: { Authorization: `Bearer ${tokens.carol}` } });
    assert.equal(response.status, 200);
    const events = ((await response.json()) as AuditQueryResponse).events.filter((event) => event.flags.includes('via-relay'));
    const summary = events.map((event) => `${event.user} ${event.tool} ${event.decision}`);
    assert.ok(summary.includes('alice echo allow'), summary.join('; '));
    assert.ok(summary.includes('alice leak allow'));
    assert.ok(summary.includes('alice drop_table deny'));
    assert.ok(summary.includes('alice echo deny'), 'the unconfirmed deploy was refused and audited');
    const reviewed = events.find((event) => event.decision === 'confirm-approved');
    assert.equal(reviewed?.reviewer, 'carol@example.com', 'the reviewer-approved call is audited at the relay with who approved it');
    for (const [what, text] of [
      ["the policy server's log", server.stderr()],
      ["the gateway's log", gateway.stderr()],
      ["the gateway's files", filesUnder(gateway.dir)],
      ['the central audit', JSON.stringify(events)],
      ["the policy server's data", filesUnder(join(server.dir, 'data'))],
    ] as const) {
      assert.ok(!text.includes(FIRST_KEY), `the key is not in ${what}`);
    }
  });

  it('rotates the key with one command, effective on the next call without a restart', async () => {
    upstream.setKey(SECOND_KEY);
    await assert.rejects(
      client.callTool({ name: 'echo', arguments: { text: 'old key' } }),
      /401|error/i,
      'the upstream no longer takes the old key',
    );
    const output = await setSecret(join(server.dir, 'data'), keyFile, 'vault-key', SECOND_KEY);
    assert.ok(!output.includes(SECOND_KEY), 'the CLI does not print the value');
    const fresh = await gateway.connect('vault');
    try {
      assert.equal(textOf(await fresh.callTool({ name: 'echo', arguments: { text: 'new key' } })), 'new key');
    } finally {
      await fresh.close();
    }
    assert.equal(upstream.authorizations.at(-1), `Bearer ${SECOND_KEY}`);
  });

  it('refuses a revoked user at the relay at once (time to effect measured)', async () => {
    const started = performance.now();
    const revoked = await fetch(`${server.url}/v1/revocations`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${tokens.carol}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ sub: 'alice' }),
    });
    assert.ok(revoked.status === 200 || revoked.status === 201, await revoked.text());
    const tookMs = await waitUntil(async () => (await relay(tokens.alice, initialize)).status === 403, 5_000);
    console.log(`      revocation -> relay refuses: ${(performance.now() - started).toFixed(0)} ms (first check after ${tookMs} ms)`);
    assert.ok(performance.now() - started < 5_000);
  });
});
