/**
 * The policy server as an MCP authorization server (`--sign-in-client-id`), with real
 * parts: the local IdP (oidc-provider) as the org's SSO, the real policy server with its
 * relay and a shared-key upstream on loopback, and third-party clients that are not
 * Gatehouse: the MCP SDK's own client with its OAuth support (discovery from the 401,
 * dynamic registration, PKCE, resource indicator), and openid-client with DPoP. Shown:
 * one SSO sign-in reaches the relayed server, the policy still decides per user, tokens
 * are bound to one relay server and to a DPoP key when the client has one, and the attacks
 * the issue names fail: a token for another resource, one used outside the relay, a
 * stolen DPoP-bound token without its key, a replayed proof, a Client ID Metadata Document
 * on a private address.
 */
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { decodeJwt } from 'jose';
import * as oauth from 'openid-client';
import { textOf } from '../support/gatewayHarness';
import { signInInBrowser } from '../support/idpBrowser';
import { startAuthorizingPolicyServer, type AuthorizingPolicyServer } from '../support/authorizingPolicyServer';
import type { KeyedUpstream } from '../support/keyedUpstream';
import { InMemoryOAuthClient, LoopbackRedirect } from '../support/oauthTestClient';
import type { RunningPolicyServer } from '../support/policyHarness';

const SERVICE_KEY = `sk-live-${'c0ffee42'.repeat(4)}`;
describe('the policy server as an MCP authorization server', function () {
  this.timeout(120_000);
  let setup: AuthorizingPolicyServer;
  let upstream: KeyedUpstream;
  let server: RunningPolicyServer;
  let redirect: LoopbackRedirect;
  let relayUrl: string;
  let issuer: string;

  before(async () => {
    setup = await startAuthorizingPolicyServer(SERVICE_KEY);
    ({ upstream, server, relayUrl, issuer } = setup);
    redirect = await LoopbackRedirect.start();
  });

  after(async () => {
    await redirect?.stop();
    await setup?.stop();
  });

  /** The SDK client's whole sign-in: 401, discovery, registration, the browser at the IdP as `user`, the code exchange. */
  async function signInWithSdk(user: string): Promise<InMemoryOAuthClient> {
    const provider = new InMemoryOAuthClient(redirect);
    const transport = new StreamableHTTPClientTransport(new URL(relayUrl), { authProvider: provider });
    await assert.rejects(new Client({ name: 'third-party', version: '1.0.0' }).connect(transport), UnauthorizedError);
    assert.ok(provider.authorizationUrl, 'the SDK client was sent to the authorization server');
    const arrived = redirect.arrivals.length;
    await signInInBrowser(provider.authorizationUrl, user);
    const callback = redirect.arrivals[arrived];
    assert.ok(callback, 'the browser came back to the client');
    assert.equal(callback.searchParams.get('iss'), issuer, 'the authorization response names its issuer (RFC 9207, against mix-up)');
    await transport.finishAuth(callback.searchParams.get('code')!);
    return provider;
  }

  async function connectedClient(provider: InMemoryOAuthClient): Promise<Client> {
    const client = new Client({ name: 'third-party', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(relayUrl), { authProvider: provider }));
    return client;
  }

  it('points a client without a token to the authorization server (RFC 9728, RFC 8414)', async () => {
    const refused = await fetch(relayUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(refused.status, 401);
    const challenge = refused.headers.get('www-authenticate') ?? '';
    const metadataUrl = /resource_metadata="([^"]+)"/.exec(challenge)?.[1];
    assert.equal(metadataUrl, `${server.url}/.well-known/oauth-protected-resource/relay/vault/mcp`);
    const prm = (await (await fetch(metadataUrl)).json()) as { resource: string; authorization_servers: string[] };
    assert.equal(prm.resource, relayUrl);
    assert.deepEqual(prm.authorization_servers, [issuer]);
    const metadata = (await (await fetch(`${server.url}/.well-known/oauth-authorization-server/oauth`)).json()) as Record<string, unknown>;
    assert.equal(metadata.issuer, issuer);
    assert.deepEqual(metadata.code_challenge_methods_supported, ['S256']);
    assert.equal(metadata.authorization_response_iss_parameter_supported, true);
    assert.equal(metadata.client_id_metadata_document_supported, true);
    assert.ok(metadata.registration_endpoint, 'dynamic registration is offered');
    assert.ok(Array.isArray(metadata.dpop_signing_alg_values_supported));
  });

  it('lets a third-party MCP client reach the relayed server with one SSO sign-in; the policy still decides', async () => {
    const provider = await signInWithSdk('alice');
    const token = provider.tokens()!.access_token;
    const claims = decodeJwt(token);
    assert.equal(claims.aud, relayUrl, 'the token is for this relay server only');
    assert.equal(claims.iss, issuer);
    assert.equal((claims.idp as { claims: { email: string } }).claims.email, 'alice@example.com');
    const client = await connectedClient(provider);
    try {
      assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'via SSO' } })), 'via SSO');
      const tools = await client.listTools();
      assert.deepEqual(
        tools.tools.map((tool) => tool.name),
        ['echo'],
        "the list is filtered to alice's policy",
      );
      const denied = await client.callTool({ name: 'drop_table', arguments: { table: 'users' } }).catch((error: Error) => error);
      assert.match(String(denied instanceof Error ? denied.message : JSON.stringify(denied)), /denied|not allowed|policy/i);
    } finally {
      await client.close();
    }
    assert.ok(
      upstream.authorizations.every((header) => header === `Bearer ${SERVICE_KEY}`),
      'the upstream saw the service key only',
    );
    assert.ok(!upstream.authorizations.some((header) => header.includes(token)));

    // bob signs in just as well, but his policy reaches no relay server.
    const bob = await signInWithSdk('bob');
    const refused = await connectedClient(bob).catch((error: Error) => error);
    assert.ok(refused instanceof Error, 'bob is refused');
  });

  it('refuses its token for another resource and outside the relay', async () => {
    const provider = await signInWithSdk('alice');
    const token = provider.tokens()!.access_token;
    const elsewhere = await fetch(`${server.url}/relay/other/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    assert.equal(elsewhere.status, 401);
    assert.match(elsewhere.headers.get('www-authenticate') ?? '', /error="invalid_token".*another resource/);
    const policyApi = await fetch(`${server.url}/v1/effective-policy`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(policyApi.status, 401, 'a relay token is not a token for the policy API');
  });

  describe('with DPoP (openid-client as the client)', () => {
    let config: oauth.Configuration;
    let dpopKey: oauth.CryptoKeyPair;

    before(async () => {
      const registered = await oauth.dynamicClientRegistration(
        new URL(issuer),
        {
          redirect_uris: [redirect.url],
          token_endpoint_auth_method: 'none',
          grant_types: ['authorization_code'],
          response_types: ['code'],
        },
        oauth.None(),
        { execute: [oauth.allowInsecureRequests] },
      );
      config = registered;
      dpopKey = await oauth.randomDPoPKeyPair('ES256');
    });

    async function dpopToken(): Promise<string> {
      const verifier = oauth.randomPKCECodeVerifier();
      const state = oauth.randomState();
      const url = oauth.buildAuthorizationUrl(config, {
        redirect_uri: redirect.url,
        scope: 'relay',
        resource: relayUrl,
        code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
      });
      const arrived = redirect.arrivals.length;
      await signInInBrowser(url, 'alice');
      const tokens = await oauth.authorizationCodeGrant(
        config,
        redirect.arrivals[arrived]!,
        { pkceCodeVerifier: verifier, expectedState: state },
        { resource: relayUrl },
        { DPoP: oauth.getDPoPHandle(config, dpopKey) },
      );
      assert.equal(tokens.token_type, 'dpop');
      return tokens.access_token;
    }

    const initialize = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'dpop-client', version: '1' } },
    });
    const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    const mcpHeaders = () => new Headers(MCP_HEADERS);

    it('takes a key-bound token with a proof of the key, and refuses it stolen, replayed or with another key', async () => {
      const token = await dpopToken();
      const jkt = (decodeJwt(token).cnf as { jkt?: string } | undefined)?.jkt;
      assert.ok(jkt, 'the token is bound to the client key');
      const handle = oauth.getDPoPHandle(config, dpopKey);
      const ok = await oauth.fetchProtectedResource(config, token, new URL(relayUrl), 'POST', initialize, mcpHeaders(), { DPoP: handle });
      assert.equal(ok.status, 200, await ok.clone().text());

      // Stolen: the token alone, as a Bearer token or with the thief's own key.
      const asBearer = await fetch(relayUrl, {
        method: 'POST',
        headers: { ...MCP_HEADERS, authorization: `Bearer ${token}` },
        body: initialize,
      });
      assert.equal(asBearer.status, 401);
      const thief = oauth.getDPoPHandle(config, await oauth.randomDPoPKeyPair('ES256'));
      // openid-client throws on a 401 challenge; the answer is on the error.
      const otherKey = await oauth
        .fetchProtectedResource(config, token, new URL(relayUrl), 'POST', initialize, mcpHeaders(), { DPoP: thief })
        .then(
          () => assert.fail('a proof signed by another key was accepted'),
          (error: { response?: Response }) => error.response,
        );
      assert.equal(otherKey?.status, 401);
      assert.match(otherKey?.headers.get('www-authenticate') ?? '', /^DPoP .*invalid_dpop_proof/);

      // Replayed: a captured request sent again, proof and all.
      let captured: Headers | undefined;
      config[oauth.customFetch] = async (url, init) => {
        captured = new Headers(init.headers as HeadersInit);
        return fetch(url, init as RequestInit);
      };
      try {
        const recording = await oauth.fetchProtectedResource(config, token, new URL(relayUrl), 'POST', initialize, mcpHeaders(), {
          DPoP: handle,
        });
        assert.equal(recording.status, 200);
      } finally {
        delete config[oauth.customFetch];
      }
      const replayed = await fetch(relayUrl, { method: 'POST', headers: captured, body: initialize });
      assert.equal(replayed.status, 401);
      assert.match(replayed.headers.get('www-authenticate') ?? '', /already used/);
    });
  });

  it('does not fetch a Client ID Metadata Document from a private address (SSRF)', async () => {
    const url = new URL(`${issuer}/auth`);
    url.search = new URLSearchParams({
      client_id: 'https://127.0.0.1:9/client.json',
      redirect_uri: redirect.url,
      response_type: 'code',
      code_challenge: 'x'.repeat(43),
      code_challenge_method: 'S256',
      resource: relayUrl,
    }).toString();
    const refused = await fetch(url, { redirect: 'manual' });
    assert.equal(refused.status, 400);
    assert.match(await refused.text(), /invalid_client/);
  });
});
