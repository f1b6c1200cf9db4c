/**
 * Per-user upstream tokens held at the policy server (credential mode `relay-oauth`), with
 * real parts: the org's IdP and the upstream's own authorization server are two local
 * oidc-provider IdPs; the upstream's one exchanges the policy server's subject tokens for
 * tokens to its MCP server (RFC 8693, test/support/subjectTokenExchange.ts, trusting the
 * policy server's `/token-exchange` issuer as an admin would set it up); the MCP server is a
 * real OAuth resource server (test/support/oauthUpstream.ts); the real policy server and a
 * real managed gateway run as processes; the SDK client goes through the gateway, and
 * `fetch` goes to the relay directly as a client around the gateway would.
 *
 * Shown: each person's calls reach the server with their own upstream token, obtained by
 * one exchange and then kept (encrypted in the data dir) for the next calls; the token is
 * in no answer, file or log on the laptop side; an echo of it is scrubbed; someone without
 * a rule causes no exchange; an admin's revocation deletes the kept token at once and the
 * next call exchanges anew; the subject-token key set publishes no private part; a wrong
 * client secret gives a clear refusal that names neither the secret nor a token.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { startGateway, textOf, type RunningGateway } from '../support/gatewayHarness';
import { startLocalIdp, type LocalIdp } from '../support/localIdp';
import { READ_SCOPE, startOAuthUpstream, WRITE_SCOPE, type OAuthUpstream } from '../support/oauthUpstream';
import {
  filesUnder,
  managedArgs,
  removeDir,
  secretStoreWith,
  setSecret,
  startPolicyServer,
  tokenFile,
  type RunningPolicyServer,
} from '../support/policyHarness';

const RELAY_CLIENT = { clientId: 'gatehouse-relay', clientSecret: `relay-secret-${'5'.repeat(24)}` };

function policy(upstreamUrl: string, authorizationServer: string): string {
  return `version: 1
org: test
admins: [admins]
servers:
  - id: notes
    title: Notes
    transport: { type: streamable-http, url: "${upstreamUrl}" }
    credential:
      mode: relay-oauth
      authorizationServer: "${authorizationServer}"
      clientId: ${RELAY_CLIENT.clientId}
      clientSecretRef: notes-client
      scopes: [${READ_SCOPE}]
groups:
  - { id: engineers, match: [{ claim: groups, equals: engineers }] }
  - { id: admins, match: [{ user: carol }] }
rules:
  - { id: engineers-notes, effect: allow, principals: [group:engineers], servers: [notes], tools: [read_note, whoami, leak_token] }
`;
}

describe('relay-oauth: per-user upstream tokens held at the policy server (RFC 8693)', function () {
  this.timeout(120_000);
  let orgIdp: LocalIdp;
  let upstreamAs: LocalIdp;
  let upstream: OAuthUpstream;
  let server: RunningPolicyServer;
  let gateway: RunningGateway;
  let client: Client;
  let scratch: string;
  let keyFile: string;
  const tokens: Record<string, string> = {};
  const exchanges = () => upstreamAs.subjectExchange!.exchanges;
  const tokensFile = () => join(scratch, 'data', 'upstream-tokens.json');
  const relay = (token: string, body: unknown) =>
    fetch(`${server.url}/relay/notes/mcp`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', Authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });
  const initialize = {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'direct', version: '1' } },
  };
  /** The upstream tokens the MCP server received, without the `Bearer ` prefix. */
  const upstreamTokens = () => upstream.authorizations.filter((h) => h.startsWith('Bearer ')).map((h) => h.slice('Bearer '.length));
  const subjectOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as { sub: string; aud: string };

  before(async () => {
    upstream = await startOAuthUpstream();
    upstreamAs = await startLocalIdp({
      mcpResource: { url: upstream.url, scopes: [READ_SCOPE, WRITE_SCOPE] },
      subjectTokenClient: RELAY_CLIENT,
    });
    upstream.trust(upstreamAs.issuer);
    orgIdp = await startLocalIdp();
    for (const user of ['alice', 'bob', 'carol', 'dave']) tokens[user] = await orgIdp.tokenFor(user);
    scratch = mkdtempSync(join(tmpdir(), 'gatehouse-relay-oauth-'));
    keyFile = await secretStoreWith(scratch, 'notes-client', RELAY_CLIENT.clientSecret);
    server = await startPolicyServer(orgIdp, {
      dataDir: scratch,
      policyYaml: policy(upstream.url, upstreamAs.issuer),
      extraArgs: ['--secrets-key-file', keyFile],
    });
    upstreamAs.subjectExchange!.trust(`${server.url}/token-exchange`); // the upstream's admin trusts the org's policy server
    gateway = await startGateway(null, { extraArgs: managedArgs(server, tokenFile(scratch, 'alice', tokens.alice!)) });
    client = await gateway.connect('notes');
  });

  after(async () => {
    await client?.close();
    await gateway?.stop();
    await server?.stop();
    await upstreamAs?.stop();
    await orgIdp?.stop();
    await upstream?.stop();
    if (scratch) removeDir(scratch);
  });

  it("reaches the server through the gateway with the person's own upstream token, exchanged once and then kept", async () => {
    assert.match(textOf(await client.callTool({ name: 'whoami', arguments: {} })), /token subject: alice$/);
    assert.match(textOf(await client.callTool({ name: 'read_note', arguments: { id: '7' } })), /note 7: hello/);
    assert.equal(exchanges(), 1, 'one exchange; the kept token served the later requests');
    const sent = upstreamTokens();
    assert.ok(sent.length >= 3, 'initialize, and two calls');
    assert.ok(
      sent.every((token) => token === sent[0]),
      'the same kept token each time',
    );
    assert.equal(subjectOf(sent[0]!).sub, 'alice');
    assert.equal(subjectOf(sent[0]!).aud, upstream.url, 'a token for this MCP server (RFC 8707)');
    assert.ok(!sent.includes(tokens.alice!), 'the org IdP token never reaches the upstream');

    const kept = readFileSync(tokensFile(), 'utf8');
    assert.equal(statSync(tokensFile()).mode & 0o777, 0o600);
    assert.ok(!kept.includes(sent[0]!), 'kept encrypted');
    assert.ok(!kept.includes(sent[0]!.split('.')[1]!), 'no part of the token in clear');
  });

  it('keeps the token off the laptop: an echo is scrubbed, and no file or log of the gateway holds it', async () => {
    const echoed = textOf(await client.callTool({ name: 'leak_token', arguments: {} }));
    assert.match(echoed, /I was called with: Bearer \[REDACTED:relay-credential\]/);
    const token = upstreamTokens()[0]!;
    assert.ok(!echoed.includes(token));
    assert.ok(!filesUnder(gateway.dir).includes(token), "no upstream token on the laptop's disk");
    assert.ok(!gateway.stderr().includes(token), 'nor in the gateway log');
    assert.ok(!server.stderr().includes(token), 'nor in the policy server log');
  });

  it('exchanges a token of their own for each person, and none for someone no rule lets in', async () => {
    const before = exchanges();
    const dave = await relay(tokens.dave!, initialize);
    assert.equal(dave.status, 200, await dave.clone().text());
    await dave.text();
    assert.equal(exchanges(), before + 1);
    assert.equal(subjectOf(upstreamTokens().at(-1)!).sub, 'dave', "dave's own token, not alice's");

    const bob = await relay(tokens.bob!, initialize);
    assert.equal(bob.status, 404, 'bob (contractors) has no rule for the server');
    await bob.text();
    assert.equal(exchanges(), before + 1, 'and caused no exchange');
  });

  it('deletes the kept token at once when an admin revokes it; the next call exchanges anew', async () => {
    const before = exchanges();
    const revoked = await fetch(`${server.url}/v1/revocations`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${tokens.carol}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ sub: 'alice', serverId: 'notes', reason: 'token leaked upstream' }),
    });
    assert.equal(revoked.status, 201, await revoked.text());
    const rows = JSON.parse(readFileSync(tokensFile(), 'utf8')) as { tokens: Record<string, Record<string, string>> };
    assert.equal(rows.tokens.notes?.alice, undefined, "alice's kept token is deleted centrally");
    assert.ok(rows.tokens.notes?.dave, "dave's stays");

    const oldToken = upstreamTokens()[0]!;
    assert.match(textOf(await client.callTool({ name: 'whoami', arguments: {} })), /token subject: alice$/);
    assert.equal(exchanges(), before + 1, 'a new exchange');
    assert.notEqual(upstreamTokens().at(-1), oldToken, 'with a new token');
  });

  it('exchanges anew, once, when the upstream no longer takes the kept token, and the call goes through', async () => {
    upstream.refuseTokensIssuedUntilNow(); // revoked at the upstream's side (its iat is whole seconds)
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const before = exchanges();
    const refusedToken = upstreamTokens().at(-1)!;
    assert.match(textOf(await client.callTool({ name: 'whoami', arguments: {} })), /token subject: alice$/);
    assert.equal(exchanges(), before + 1, 'one new exchange');
    assert.notEqual(upstreamTokens().at(-1), refusedToken);
  });

  it('publishes the subject-token issuer with its public key only', async () => {
    const discovery = (await (await fetch(`${server.url}/token-exchange/.well-known/openid-configuration`)).json()) as {
      issuer: string;
      jwks_uri: string;
    };
    assert.equal(discovery.issuer, `${server.url}/token-exchange`);
    const jwks = (await (await fetch(discovery.jwks_uri)).json()) as { keys: Array<Record<string, unknown>> };
    assert.equal(jwks.keys.length, 1);
    assert.equal(jwks.keys[0]!.d, undefined, 'no private part');
    const bundleKeys = (await (await fetch(`${server.url}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> };
    assert.ok(!bundleKeys.keys.some((key) => key.kid === jwks.keys[0]!.kid), 'a key of its own, not a bundle key');
  });

  it('refuses clearly, naming neither secret nor token, when the authorization server refuses the client', async () => {
    await setSecret(join(scratch, 'data'), keyFile, 'notes-client', 'not-the-secret'); // rotated wrongly by an admin
    try {
      await fetch(`${server.url}/v1/revocations`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${tokens.carol}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ sub: 'dave', serverId: 'notes' }),
      }).then((r) => r.text());
      const refused = await relay(tokens.dave!, initialize);
      assert.equal(refused.status, 502);
      const body = (await refused.json()) as { error: string; message: string };
      assert.equal(body.error, 'token_exchange_refused');
      assert.match(body.message, /authorization server of "notes" gave no token for you \(invalid_client/);
      assert.ok(!JSON.stringify(body).includes('not-the-secret'));
      assert.ok(!server.stderr().includes('not-the-secret'), 'the secret is in no log line');
    } finally {
      await setSecret(join(scratch, 'data'), keyFile, 'notes-client', RELAY_CLIENT.clientSecret);
    }
  });
});
