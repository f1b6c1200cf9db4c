/**
 * Enterprise-managed authorization (ID-JAG, SEP-990) at the policy server's MCP
 * authorization server, with real parts: the local IdP (oidc-provider) as the org's SSO,
 * which also exchanges its ID tokens for ID-JAGs (test/support/identityAssertionIssuer.ts,
 * as Okta's Cross App Access does), the real policy server with its relay and a shared-key
 * upstream, and openid-client as a third-party client. Shown: a client the person signed
 * in to redeems the IdP's assertion for a relay token without a browser, DPoP-bound when it
 * brings a key, and the policy still decides; the Gatehouse gateway does the same for a
 * server in credential mode `enterprise-managed`, to its pinned authorization server only,
 * and not again with an ID token older than an admin's revocation; refused: an assertion
 * replayed, for another authorization server, from an untrusted IdP, issued to another
 * client, redeemed by a public client, for a resource that is not a relay server, or
 * without the claims the policy matches people on.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import * as oauth from 'openid-client';
import { createLogger } from '../../common/log/logger';
import { EnterpriseAuthorization } from '../../gateway/upstreamAuth/enterpriseAuthorization';
import { startGateway, textOf } from '../support/gatewayHarness';
import {
  ID_JAG_JWT_TYPE,
  ID_JAG_TOKEN_TYPE,
  ID_TOKEN_TYPE,
  JWT_BEARER_GRANT as JWT_BEARER,
  TOKEN_EXCHANGE_GRANT,
} from '../../common/oauth/identityAssertion';
import { startAuthorizingPolicyServer, type AuthorizingPolicyServer } from '../support/authorizingPolicyServer';
import type { KeyedUpstream } from '../support/keyedUpstream';
import { startLocalIdp, TEST_CLIENT_ID, type LocalIdp } from '../support/localIdp';
import { removeDir } from '../support/policyHarness';

const SERVICE_KEY = `sk-live-${'feedbeef'.repeat(4)}`;
const LOOPBACK = { execute: [oauth.allowInsecureRequests] };
/** The relay's 401 to a request without a token, as the gateway's upstream connection reports it. */
const UNAUTHORIZED = { status: 401, wwwAuthenticate: undefined, sentAuthorization: undefined, interactive: false };

describe('enterprise-managed authorization: ID-JAGs redeemed at the policy server', function () {
  this.timeout(120_000);
  let setup: AuthorizingPolicyServer;
  let idp: LocalIdp;
  let upstream: KeyedUpstream;
  let issuer: string;
  let relayUrl: string;
  /** The MCP client at the policy server's authorization server (registered there, RFC 7591). */
  let client: oauth.Configuration;
  /** The same MCP client at the IdP (the public client the person signed in with). */
  let atIdp: oauth.Configuration;

  /** A scratch folder, and alice's ID token in it (0600) for the gateway's sign-in. */
  let scratch: string;
  let gatewayIdToken: string;

  before(async () => {
    setup = await startAuthorizingPolicyServer(SERVICE_KEY, { identityAssertions: true });
    ({ idp, upstream, issuer, relayUrl } = setup);
    client = await registerClient();
    idp.assertionClients!.trust(issuer, TEST_CLIENT_ID, client.clientMetadata().client_id);
    atIdp = await oauth.discovery(new URL(idp.issuer), TEST_CLIENT_ID, undefined, oauth.None(), LOOPBACK);
    scratch = mkdtempSync(join(tmpdir(), 'gatehouse-idjag-'));
    gatewayIdToken = join(scratch, 'id-token');
    writeFileSync(gatewayIdToken, await idp.idTokenFor('alice'), { mode: 0o600 });
  });

  after(async () => {
    await setup?.stop();
    if (scratch) removeDir(scratch);
  });

  /** A confidential client allowed the JWT bearer grant, registered as any MCP client would. */
  function registerClient(): Promise<oauth.Configuration> {
    return oauth.dynamicClientRegistration(
      new URL(issuer),
      { grant_types: [JWT_BEARER], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic' },
      undefined,
      LOOPBACK,
    );
  }

  /** The person's ID token exchanged at the IdP (RFC 8693) for an ID-JAG for `audience`. */
  async function identityAssertion(user: string, audience = issuer, resource = relayUrl, from = atIdp): Promise<string> {
    const exchanged = await oauth.genericGrantRequest(from, TOKEN_EXCHANGE_GRANT, {
      subject_token: await idp.idTokenFor(user),
      subject_token_type: ID_TOKEN_TYPE,
      requested_token_type: ID_JAG_TOKEN_TYPE,
      audience,
      resource,
    });
    assert.equal(exchanged.issued_token_type, ID_JAG_TOKEN_TYPE);
    assert.equal(decodeProtectedHeader(exchanged.access_token).typ, ID_JAG_JWT_TYPE);
    return exchanged.access_token;
  }

  /** The gateway's enterprise-managed sign-in for the relayed server, driven directly, with alice's ID token in a file. */
  function gatewaySignIn(authorizationServer: string): EnterpriseAuthorization {
    const { client_id, client_secret } = client.clientMetadata();
    return new EnterpriseAuthorization({
      serverId: 'vault',
      serverTitle: 'Vault API',
      serverUrl: new URL(relayUrl),
      authorizationServer,
      clientId: client_id,
      clientSecret: String(client_secret),
      idp: { issuer: idp.issuer, clientId: TEST_CLIENT_ID, idTokenFile: gatewayIdToken },
      log: createLogger(undefined, 'error'),
    });
  }

  /** The JWT bearer grant at the policy server, as a plain form post, for the refusals. */
  async function redeem(assertion: string, as = client): Promise<{ status: number; body: Record<string, string> }> {
    const { client_id, client_secret } = as.clientMetadata();
    const response = await fetch(as.serverMetadata().token_endpoint!, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${client_id}:${String(client_secret)}`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: JWT_BEARER, assertion }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  }

  it('advertises the JWT bearer grant', async () => {
    assert.ok(client.serverMetadata().grant_types_supported?.includes(JWT_BEARER));
  });

  it('redeems an assertion for a relay token without a browser; the policy still decides', async () => {
    const tokens = await oauth.genericGrantRequest(client, JWT_BEARER, { assertion: await identityAssertion('alice') });
    const claims = decodeJwt(tokens.access_token);
    assert.equal(claims.aud, relayUrl, 'the token is for the relay server the assertion names');
    assert.equal(claims.iss, issuer);
    assert.equal((claims.idp as { iss: string; claims: { email: string } }).claims.email, 'alice@example.com');
    const mcp = new Client({ name: 'enterprise-client', version: '1.0.0' });
    await mcp.connect(
      new StreamableHTTPClientTransport(new URL(relayUrl), {
        requestInit: { headers: { authorization: `Bearer ${tokens.access_token}` } },
      }),
    );
    try {
      assert.equal(textOf(await mcp.callTool({ name: 'echo', arguments: { text: 'no browser' } })), 'no browser');
      assert.deepEqual(
        (await mcp.listTools()).tools.map((tool) => tool.name),
        ['echo'],
        "filtered to alice's policy",
      );
    } finally {
      await mcp.close();
    }
    assert.ok(
      upstream.authorizations.every((header) => header === `Bearer ${SERVICE_KEY}`),
      'the upstream saw the service key only',
    );

    // bob's assertion is redeemed just as well, but his policy reaches no relay server.
    const bob = await oauth.genericGrantRequest(client, JWT_BEARER, { assertion: await identityAssertion('bob') });
    const refused = await new Client({ name: 'enterprise-client', version: '1.0.0' })
      .connect(
        new StreamableHTTPClientTransport(new URL(relayUrl), { requestInit: { headers: { authorization: `Bearer ${bob.access_token}` } } }),
      )
      .catch((error: Error) => error);
    assert.ok(refused instanceof Error, 'bob is refused by the policy');
  });

  it('takes the Gatehouse gateway (credential mode enterprise-managed) to the relayed server with the ID token alone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-idjag-gateway-'));
    const { client_id, client_secret } = client.clientMetadata();
    writeFileSync(join(dir, 'id-token'), await idp.idTokenFor('alice'), { mode: 0o600 });
    writeFileSync(join(dir, 'client-secret'), String(client_secret), { mode: 0o600 });
    const gateway = await startGateway(
      [
        {
          id: 'vault',
          transport: { type: 'streamable-http', url: relayUrl },
          credential: {
            mode: 'enterprise-managed',
            authorizationServer: issuer,
            clientId: client_id,
            clientSecretFile: join(dir, 'client-secret'),
            idp: { issuer: idp.issuer, clientId: TEST_CLIENT_ID, idTokenFile: join(dir, 'id-token') },
          },
        },
      ],
      { dir },
    );
    try {
      const mcp = await gateway.connect('vault');
      assert.equal(textOf(await mcp.callTool({ name: 'echo', arguments: { text: 'governed, no browser' } })), 'governed, no browser');
      await mcp.close();
      assert.match(gateway.stderr(), /upstream token from an identity assertion/);
      assert.doesNotMatch(gateway.stderr(), /eyJ/, 'no token in the gateway log');
    } finally {
      await gateway.stop(true);
      removeDir(dir);
    }
  });

  it("the gateway sends nothing to an authorization server other than the pinned one, whatever the server's metadata names", async () => {
    const signIn = gatewaySignIn('https://as.example.com/oauth');
    await assert.rejects(
      signIn.challenged(UNAUTHORIZED),
      /names the authorization server http:\/\/127\.0\.0\.1:\d+, not the configured one/,
    );
    assert.equal(await signIn.header(), undefined);
  });

  it("the gateway does not exchange an ID token from before an admin's revocation again", async () => {
    const signIn = gatewaySignIn(issuer);
    assert.equal(await signIn.challenged(UNAUTHORIZED), true);
    assert.match((await signIn.header()) ?? '', /^Bearer eyJ/);
    assert.equal(await signIn.forgetIfObtainedBefore(Date.now()), true, 'the token is deleted');
    assert.equal(await signIn.header(), undefined);
    await assert.rejects(signIn.challenged(UNAUTHORIZED), /revoked its credentials after your last sign-in/);
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // ID token times are whole seconds
    writeFileSync(gatewayIdToken, await idp.idTokenFor('alice'), { mode: 0o600 }); // the person signs in anew
    assert.equal(await signIn.challenged(UNAUTHORIZED), true);
    assert.match((await signIn.header()) ?? '', /^Bearer eyJ/);
  });

  it('refuses an assertion without a claim the policy matches people on, so a deny-by-group rule cannot pass by', async () => {
    idp.assertionClients!.personClaims(['email']); // an IdP set up to leave groups out of its ID-JAGs
    try {
      const refused = await redeem(await identityAssertion('alice'));
      assert.equal(refused.status, 400);
      assert.equal(refused.body.error, 'invalid_grant');
      assert.match(refused.body.error_description ?? '', /lacks the claims the policy matches people on \(groups\)/);
    } finally {
      idp.assertionClients!.personClaims(['email', 'groups']);
    }
    assert.equal((await redeem(await identityAssertion('alice'))).status, 200, 'with groups it passes');
  });

  it('binds the token to the DPoP key the client proves at the token request', async () => {
    const key = await oauth.randomDPoPKeyPair('ES256');
    const handle = oauth.getDPoPHandle(client, key);
    const tokens = await oauth.genericGrantRequest(client, JWT_BEARER, { assertion: await identityAssertion('alice') }, { DPoP: handle });
    assert.equal(tokens.token_type, 'dpop');
    assert.ok((decodeJwt(tokens.access_token).cnf as { jkt?: string } | undefined)?.jkt, 'the token is bound to the key');
    const initialize = JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'dpop', version: '1' } },
    });
    const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    const ok = await oauth.fetchProtectedResource(
      client,
      tokens.access_token,
      new URL(relayUrl),
      'POST',
      initialize,
      new Headers(MCP_HEADERS),
      {
        DPoP: handle,
      },
    );
    assert.equal(ok.status, 200);
    const stolen = await fetch(relayUrl, {
      method: 'POST',
      headers: { ...MCP_HEADERS, authorization: `Bearer ${tokens.access_token}` },
      body: initialize,
    });
    assert.equal(stolen.status, 401, 'without the key the token is useless');
  });

  it('refuses an assertion redeemed twice', async () => {
    const assertion = await identityAssertion('alice');
    assert.equal((await redeem(assertion)).status, 200);
    const again = await redeem(assertion);
    assert.equal(again.status, 400);
    assert.equal(again.body.error, 'invalid_grant');
    assert.match(again.body.error_description ?? '', /already redeemed/);
  });

  it('refuses an assertion for another authorization server', async () => {
    const elsewhere = 'https://other-as.example.com/oauth';
    idp.assertionClients!.trust(elsewhere, TEST_CLIENT_ID, client.clientMetadata().client_id);
    const refused = await redeem(await identityAssertion('alice', elsewhere));
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error, 'invalid_grant');
    assert.match(refused.body.error_description ?? '', /audience/);
  });

  it('refuses an assertion from an IdP it does not trust', async () => {
    const rogue = await startLocalIdp({ identityAssertions: true });
    try {
      rogue.assertionClients!.trust(issuer, TEST_CLIENT_ID, client.clientMetadata().client_id);
      const atRogue = await oauth.discovery(new URL(rogue.issuer), TEST_CLIENT_ID, undefined, oauth.None(), LOOPBACK);
      const exchanged = await oauth.genericGrantRequest(atRogue, TOKEN_EXCHANGE_GRANT, {
        subject_token: await rogue.idTokenFor('alice'),
        subject_token_type: ID_TOKEN_TYPE,
        requested_token_type: ID_JAG_TOKEN_TYPE,
        audience: issuer,
        resource: relayUrl,
      });
      const refused = await redeem(exchanged.access_token);
      assert.equal(refused.status, 400);
      assert.equal(refused.body.error, 'invalid_grant');
      assert.match(refused.body.error_description ?? '', /issuer is not the identity provider/);
    } finally {
      await rogue.stop();
    }
  });

  it('refuses an assertion redeemed by a public client, which proves nothing about who holds it', async () => {
    const registered = await oauth.dynamicClientRegistration(
      new URL(issuer),
      { grant_types: [JWT_BEARER], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'none' },
      oauth.None(),
      LOOPBACK,
    );
    const publicId = registered.clientMetadata().client_id;
    idp.assertionClients!.trust(issuer, TEST_CLIENT_ID, publicId);
    try {
      const response = await fetch(client.serverMetadata().token_endpoint!, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: JWT_BEARER, client_id: publicId, assertion: await identityAssertion('alice') }),
      });
      assert.equal(response.status, 400);
      assert.equal(((await response.json()) as { error: string }).error, 'unauthorized_client');
    } finally {
      idp.assertionClients!.trust(issuer, TEST_CLIENT_ID, client.clientMetadata().client_id);
    }
  });

  it('refuses an assertion issued to another client, or for a resource that is not a relay server', async () => {
    const other = await registerClient();
    const stolen = await redeem(await identityAssertion('alice'), other);
    assert.equal(stolen.status, 400);
    assert.match(stolen.body.error_description ?? '', /another client/);

    const notRelay = await redeem(await identityAssertion('alice', issuer, 'https://files.example.com/mcp'));
    assert.equal(notRelay.status, 400);
    assert.equal(notRelay.body.error, 'invalid_target');
  });
});
