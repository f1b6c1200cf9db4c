/**
 * Relay tokens bound to the gateway's key (RFC 8693 token exchange, RFC 9449 DPoP), with
 * real parts: the local IdP (oidc-provider) as the org's SSO, the real policy server as an
 * authorization server started with `--relay-requires-dpop` (its relay takes no IdP token
 * and no unbound token), a shared-key upstream on loopback, a real managed gateway, and
 * openid-client as anyone else asking the token endpoint. Shown: the gateway reaches the
 * relayed server with a key-bound token it exchanged for itself; the exchange is the
 * gateway's alone, needs a proof of the key, a relay server as the resource, a valid token
 * of the org's IdP for the policy server, and a person not revoked; what it gives is bound
 * to the key, to one relay server and to ten minutes, and useless without the key; a token
 * the relay no longer takes (new keys after a restart) is exchanged anew, once.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { calculateJwkThumbprint, decodeJwt, exportJWK } from 'jose';
import * as oauth from 'openid-client';
import { GATEWAY_CLIENT_ID } from '../../common/policy/policyServerApi';
import { ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT } from '../../common/oauth/identityAssertion';
import {
  INITIALIZE_REQUEST,
  MCP_POST_HEADERS,
  startAuthorizingPolicyServer,
  type AuthorizingPolicyServer,
} from '../support/authorizingPolicyServer';
import { startGateway, textOf, type RunningGateway } from '../support/gatewayHarness';
import { managedArgs, removeDir, tokenFile } from '../support/policyHarness';

const SERVICE_KEY = `sk-live-${'d00dfeed'.repeat(4)}`;

describe("relay tokens bound to the gateway's key (token exchange and DPoP)", function () {
  this.timeout(120_000);
  let setup: AuthorizingPolicyServer;
  let gateway: RunningGateway;
  let client: Client;
  let scratch: string;
  let gatewayClient: oauth.Configuration;
  const tokens: Record<string, string> = {};

  before(async () => {
    // IdP tokens for an hour, so the relay token's own ten-minute limit is what shows.
    setup = await startAuthorizingPolicyServer(SERVICE_KEY, { accessTokenTtlSeconds: 3_600 }, ['--relay-requires-dpop']);
    for (const user of ['alice', 'dave', 'carol']) tokens[user] = await setup.idp.tokenFor(user);
    scratch = mkdtempSync(join(tmpdir(), 'gatehouse-keybound-'));
    gateway = await startGateway(null, { extraArgs: managedArgs(setup.server, tokenFile(scratch, 'alice', tokens.alice!)) });
    client = await gateway.connect('vault');
    gatewayClient = await oauth.discovery(new URL(setup.issuer), GATEWAY_CLIENT_ID, undefined, oauth.None(), {
      execute: [oauth.allowInsecureRequests],
      algorithm: 'oauth2',
    });
  });

  after(async () => {
    await client?.close();
    await gateway?.stop();
    await setup?.stop();
    if (scratch) removeDir(scratch);
  });

  /** The exchange as the gateway asks it, with `key` (none: no proof) and these parameters changed. */
  const exchange = (key: oauth.CryptoKeyPair | undefined, changes: Record<string, string> = {}, config = gatewayClient) =>
    oauth.genericGrantRequest(
      config,
      TOKEN_EXCHANGE_GRANT,
      {
        subject_token: tokens.alice!,
        subject_token_type: JWT_TOKEN_TYPE,
        requested_token_type: ACCESS_TOKEN_TYPE,
        resource: setup.relayUrl,
        ...changes,
      },
      key ? { DPoP: oauth.getDPoPHandle(config, key) } : {},
    );
  /** An initialize request to the relay with `token` and a proof of `key`. */
  const initializeWithProof = (token: string, key: oauth.CryptoKeyPair) =>
    oauth.fetchProtectedResource(gatewayClient, token, new URL(setup.relayUrl), 'POST', INITIALIZE_REQUEST, new Headers(MCP_POST_HEADERS), {
      DPoP: oauth.getDPoPHandle(gatewayClient, key),
    });
  /** What the token endpoint said when it refused. */
  const refusal = (request: Promise<unknown>) =>
    request.then(
      () => assert.fail('the exchange was granted'),
      (error: unknown) => {
        assert.ok(error instanceof oauth.ResponseBodyError, String(error));
        return `${error.error}: ${error.error_description ?? ''}`;
      },
    );

  it('reaches the relayed server through the gateway with a token bound to its key; the relay refuses the IdP token itself', async () => {
    const answer = await client.callTool({ name: 'echo', arguments: { text: 'hello' } });
    assert.equal(answer.isError, undefined, JSON.stringify(answer));
    assert.match(textOf(answer), /hello/);
    assert.match(gateway.stderr(), /relay tokens are bound to a key held in memory/);

    const withIdpToken = await fetch(setup.relayUrl, {
      method: 'POST',
      headers: { ...MCP_POST_HEADERS, authorization: `Bearer ${tokens.alice}` },
      body: INITIALIZE_REQUEST,
    });
    assert.equal(withIdpToken.status, 401);
    assert.match(withIdpToken.headers.get('www-authenticate') ?? '', /^DPoP .*only DPoP-bound tokens/);
    // Not by another spelling of the path either (Express routes are case-insensitive and take a trailing slash by default).
    for (const path of ['/relay/vault/mcp/', '/relay/vault/MCP', '/RELAY/vault/mcp', '/relay/vault/mcp//', '/relay/%76ault/mcp']) {
      const around = await fetch(`${setup.server.url}${path}`, {
        method: 'POST',
        headers: { ...MCP_POST_HEADERS, authorization: `Bearer ${tokens.alice}` },
        body: INITIALIZE_REQUEST,
      });
      assert.ok(around.status === 401 || around.status === 404, `${path}: HTTP ${around.status}`);
    }
    assert.doesNotMatch(gateway.stderr(), new RegExp(tokens.alice!.split('.')[2]!), 'the IdP token is in no log line');
  });

  it('gives a token bound to the key, for one relay server, for ten minutes at most, useless without the key', async () => {
    const key = await oauth.randomDPoPKeyPair('ES256');
    const answer = await exchange(key);
    assert.equal(answer.token_type, 'dpop');
    assert.equal(answer.issued_token_type, ACCESS_TOKEN_TYPE);
    const claims = decodeJwt(answer.access_token);
    assert.equal((claims.cnf as { jkt?: string }).jkt, await calculateJwkThumbprint(await exportJWK(key.publicKey)));
    assert.equal(claims.aud, setup.relayUrl);
    assert.ok(Math.abs(claims.exp! - claims.iat! - 600) <= 2, 'ten minutes, for an IdP token good for an hour');
    assert.ok(claims.exp! <= decodeJwt(tokens.alice!).exp!, 'never past the IdP token');
    assert.deepEqual(
      (claims.idp as { claims: { groups?: unknown } }).claims.groups,
      ['engineers'],
      'the policy still decides on who it is',
    );

    const proved = await initializeWithProof(answer.access_token, key);
    assert.equal(proved.status, 200, await proved.clone().text());
    for (const authorization of [`Bearer ${answer.access_token}`, `DPoP ${answer.access_token}`]) {
      const stolen = await fetch(setup.relayUrl, {
        method: 'POST',
        headers: { ...MCP_POST_HEADERS, authorization },
        body: INITIALIZE_REQUEST,
      });
      assert.equal(stolen.status, 401, `${authorization.split(' ')[0]} without a proof of the key`);
    }
    // For another relay server, with a valid proof of the key: refused for its audience.
    const elsewhere = await oauth
      .fetchProtectedResource(
        gatewayClient,
        answer.access_token,
        new URL(setup.relayUrl.replace('/vault/', '/other/')),
        'POST',
        INITIALIZE_REQUEST,
        new Headers(MCP_POST_HEADERS),
        { DPoP: oauth.getDPoPHandle(gatewayClient, key) },
      )
      .then(
        () => assert.fail('a token for vault was taken for another relay server'),
        (error: { response?: Response }) => error.response,
      );
    assert.equal(elsewhere?.status, 401);
    assert.match(elsewhere?.headers.get('www-authenticate') ?? '', /another resource/);
  });

  it('refuses an exchange without a proof, for anything but a relay server, or of a token the IdP gave another app', async () => {
    const key = await oauth.randomDPoPKeyPair('ES256');
    assert.match(await refusal(exchange(undefined)), /^invalid_request: a DPoP proof is required/);
    assert.match(await refusal(exchange(key, { resource: `${setup.server.url}/v1/policies` })), /^invalid_target/);
    assert.match(await refusal(exchange(key, { scope: 'openid relay' })), /^invalid_scope/);
    const idToken = await setup.idp.idTokenFor('alice'); // issued to another client: not a token for the policy server
    assert.match(await refusal(exchange(key, { subject_token: idToken })), /^invalid_grant: subject token refused/);
    const [head, body] = tokens.alice!.split('.');
    const forged = `${head}.${Buffer.from(JSON.stringify({ ...decodeJwt(tokens.alice!), sub: 'carol' })).toString('base64url')}.${tokens.alice!.split('.')[2]}`;
    assert.notEqual(body, forged.split('.')[1]);
    assert.match(await refusal(exchange(key, { subject_token: forged })), /^invalid_grant: subject token refused/);
  });

  it('gives the exchange to the gateway alone: a client that registered itself for it is refused', async () => {
    // Registration takes the grant (oidc-provider lists every grant it has); the token endpoint is where it is refused.
    const registered = await oauth.dynamicClientRegistration(
      new URL(setup.issuer),
      { token_endpoint_auth_method: 'none', grant_types: [TOKEN_EXCHANGE_GRANT], response_types: [], redirect_uris: [] },
      oauth.None(),
      { execute: [oauth.allowInsecureRequests], algorithm: 'oauth2' },
    );
    assert.notEqual(registered.clientMetadata().client_id, GATEWAY_CLIENT_ID);
    const key = await oauth.randomDPoPKeyPair('ES256');
    assert.match(await refusal(exchange(key, {}, registered)), /^unauthorized_client: token exchange is for the Gatehouse gateway/);
  });

  it('exchanges anew, once, when the relay no longer takes its token (the policy server restarted with new keys)', async () => {
    assert.match(textOf(await client.callTool({ name: 'echo', arguments: { text: 'before' } })), /before/);
    await setup.restartWithNewKeys();
    // The relay forgot the session as well (404): the gateway opens a new one, with its kept token
    // first (refused: signed by the old key), then a new one. Three calls at once, each retried
    // like a user would while the gateway's reconnection settles: none is refused for its token.
    const errors: string[] = [];
    const callUntilAnswered = async (text: string) => {
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        const answer = await client.callTool({ name: 'echo', arguments: { text } }).then(textOf, (error: Error) => {
          errors.push(error.message);
          return '';
        });
        if (answer) return answer;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      return '';
    };
    const answers = await Promise.all(['one', 'two', 'three'].map(callUntilAnswered));
    assert.deepEqual(answers, ['one', 'two', 'three'], errors.join('\n'));
    assert.deepEqual(
      errors.filter((error) => /401|refused its|authoriz/i.test(error)),
      [],
      'no call failed for the refused token',
    );
    assert.equal(
      gateway.stderr().match(/the relay refused its token; exchanging anew/g)?.length,
      1,
      'the old token refused, a new one once',
    );
  });

  it('refuses to exchange the token of a person an admin revoked, and their unexpired token stops working at once', async () => {
    const key = await oauth.randomDPoPKeyPair('ES256');
    const before = await exchange(key);
    const revoke = await fetch(`${setup.server.url}/v1/revocations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.carol}`, 'content-type': 'application/json' },
      body: JSON.stringify({ sub: 'alice', reason: 'laptop lost' }),
    });
    assert.ok(revoke.ok, await revoke.text());
    assert.match(await refusal(exchange(key)), /^invalid_grant: access was revoked by an admin/);
    const call = await initializeWithProof(before.access_token, key);
    assert.equal(call.status, 403, 'the relay checks revocation on every call, whatever the token');
    assert.match(await call.text(), /revoked/);
  });
});
