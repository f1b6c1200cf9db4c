/**
 * The MCP authorization server on two policy-server replicas sharing one PostgreSQL (Debian's,
 * started for this file), behind a balancer that sends each request to the next replica
 * (test/support/requestBalancer.ts: no sticky sessions, so every step of a sign-in lands on
 * another replica than the one before). Real parts: the local IdP as the org's SSO, the
 * MCP SDK's own client signing in through the browser, a real managed gateway, openid-client.
 * Shown: one sign-in spread over both replicas reaches the relayed server, and its IdP
 * answer replayed at either replica is refused; the gateway's
 * key-bound relay tokens work whichever replica issued or checks them; a DPoP proof used at
 * one replica is refused at the other.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import * as oauth from 'openid-client';
import { ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT } from '../../common/oauth/identityAssertion';
import { GATEWAY_CLIENT_ID } from '../../common/policy/policyServerApi';
import { NODE, REPO, startGateway, textOf, type RunningGateway } from '../support/gatewayHarness';
import { signInInBrowser } from '../support/idpBrowser';
import { startKeyedUpstream, type KeyedUpstream } from '../support/keyedUpstream';
import { startLocalIdp, type LocalIdp } from '../support/localIdp';
import { InMemoryOAuthClient, LoopbackRedirect } from '../support/oauthTestClient';
import { removeDir, setSecret, startPolicyServer, tokenFile, type RunningPolicyServer } from '../support/policyHarness';
import { startPostgres, type RunningPostgres } from '../support/postgres';
import { startRequestBalancer, type RequestBalancer } from '../support/requestBalancer';
import { INITIALIZE_REQUEST, MCP_POST_HEADERS, SIGN_IN_CLIENT, VAULT_POLICY } from '../support/authorizingPolicyServer';

const SERVICE_KEY = `sk-live-${'5e5e5e5e'.repeat(4)}`;

describe('the MCP authorization server on replicas sharing PostgreSQL', function () {
  this.timeout(180_000);
  let postgres: RunningPostgres;
  let idp: LocalIdp;
  let upstream: KeyedUpstream;
  let scratch: string;
  let balancer: RequestBalancer;
  let redirect: LoopbackRedirect;
  let gateway: RunningGateway | undefined;
  const replicas: RunningPolicyServer[] = [];
  const relayUrl = () => `${balancer.url}/relay/vault/mcp`;

  before(async () => {
    postgres = await startPostgres();
    idp = await startLocalIdp({ signInClient: SIGN_IN_CLIENT });
    upstream = await startKeyedUpstream(SERVICE_KEY);
    redirect = await LoopbackRedirect.start();
    scratch = mkdtempSync(join(tmpdir(), 'gatehouse-as-replicas-'));
    const keyFile = join(scratch, 'secrets.key');
    await promisify(execFile)(NODE, [join(REPO, 'dist/gatehouse.js'), 'secret', 'init-key', keyFile]);
    await setSecret(join(scratch, 'data'), keyFile, 'vault-key', SERVICE_KEY, ['--store', postgres.url]);
    const secretFile = join(scratch, 'sign-in-client-secret');
    writeFileSync(secretFile, SIGN_IN_CLIENT.clientSecret, { mode: 0o600 });
    const policyFile = join(scratch, 'org-policy.yaml');
    writeFileSync(policyFile, VAULT_POLICY(upstream.url));
    // The replicas' public URL is the balancer's; they share the data dir (keys) and the database (everything else).
    balancer = await startRequestBalancer();
    const shared = {
      dataDir: scratch,
      extraArgs: [
        ...['--store', postgres.url, '--issuer-url', balancer.url, '--secrets-key-file', keyFile],
        ...['--sign-in-client-id', SIGN_IN_CLIENT.clientId, '--sign-in-client-secret-file', secretFile],
        ...['--sign-in-scope', 'openid email profile groups'],
      ],
    };
    replicas.push(await startPolicyServer(idp, { ...shared, bootstrapPolicy: policyFile }));
    replicas.push(await startPolicyServer(idp, shared));
    balancer.backends = replicas.map((replica) => replica.url);
  });

  after(async () => {
    await gateway?.stop();
    await redirect?.stop();
    await balancer?.stop();
    await Promise.all(replicas.map((replica) => replica.stop()));
    await upstream?.stop();
    await idp?.stop();
    await postgres?.stop();
    if (scratch) removeDir(scratch);
  });

  it('signs a third-party client in with its steps spread over both replicas, and it reaches the relayed server', async () => {
    const before = replicas.map((replica) => balancer.requests.get(replica.url) ?? 0);
    const provider = new InMemoryOAuthClient(redirect);
    const transport = new StreamableHTTPClientTransport(new URL(relayUrl()), { authProvider: provider });
    await assert.rejects(new Client({ name: 'third-party', version: '1.0.0' }).connect(transport), UnauthorizedError);
    const arrived = redirect.arrivals.length;
    const visited: URL[] = [];
    await signInInBrowser(provider.authorizationUrl!, 'alice', visited);
    const callback = redirect.arrivals[arrived]!;
    assert.equal(callback.searchParams.get('error'), null, callback.href);
    await transport.finishAuth(callback.searchParams.get('code')!);
    // The IdP's answer to the policy server, replayed (a leaked URL) at each replica: used once, by the sign-in above.
    const idpAnswer = visited.find((url) => url.pathname === '/oauth/sign-in/callback');
    assert.ok(idpAnswer, 'the sign-in went through the IdP');
    for (const replica of replicas) {
      const replayed: Response = await fetch(new URL(`${idpAnswer.pathname}${idpAnswer.search}`, replica.url), { redirect: 'manual' });
      assert.equal(replayed.status, 400, `replayed at ${replica.url}`);
      assert.match(await replayed.text(), /expired or was already used/);
    }

    const client = new Client({ name: 'third-party', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(relayUrl()), { authProvider: provider }));
    try {
      assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'any replica' } })), 'any replica');
    } finally {
      await client.close();
    }
    const served = replicas.map((replica, i) => (balancer.requests.get(replica.url) ?? 0) - before[i]!);
    assert.ok(
      served.every((count) => count >= 3),
      `both replicas served the sign-in and the calls (${served.join(', ')} requests)`,
    );
  });

  it('runs a gateway on key-bound relay tokens whichever replica issued or checks them', async () => {
    const token = await idp.tokenFor('alice');
    gateway = await startGateway(null, {
      extraArgs: [
        '--policy-server',
        balancer.url,
        '--policy-keys',
        replicas[0]!.keysPath,
        '--policy-token-file',
        tokenFile(scratch, 'alice', token),
      ],
    });
    const client = await gateway.connect('vault');
    for (const text of ['one', 'two', 'three', 'four']) {
      assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text } })), text);
    }
    assert.match(gateway.stderr(), /relay tokens are bound to a key held in memory/);
    await client.close();
  });

  it('refuses at one replica a DPoP proof already used at the other', async () => {
    const config = await oauth.discovery(new URL(`${balancer.url}/oauth`), GATEWAY_CLIENT_ID, undefined, oauth.None(), {
      execute: [oauth.allowInsecureRequests],
      algorithm: 'oauth2',
    });
    const key = await oauth.randomDPoPKeyPair('ES256');
    const answer = await oauth.genericGrantRequest(
      config,
      TOKEN_EXCHANGE_GRANT,
      {
        subject_token: await idp.tokenFor('alice'),
        subject_token_type: JWT_TOKEN_TYPE,
        requested_token_type: ACCESS_TOKEN_TYPE,
        resource: relayUrl(),
      },
      { DPoP: oauth.getDPoPHandle(config, key) },
    );
    // The proof is made for the public relay URL; the same request, sent to each replica directly.
    let captured: Headers | undefined;
    config[oauth.customFetch] = async (url, init) => {
      captured = new Headers(init.headers as HeadersInit);
      return fetch(url.replace(balancer.url, replicas[0]!.url), init as RequestInit);
    };
    const first = await oauth.fetchProtectedResource(
      config,
      answer.access_token,
      new URL(relayUrl()),
      'POST',
      INITIALIZE_REQUEST,
      new Headers(MCP_POST_HEADERS),
      {
        DPoP: oauth.getDPoPHandle(config, key),
      },
    );
    assert.equal(first.status, 200, await first.clone().text());
    const replayed = await fetch(`${replicas[1]!.url}/relay/vault/mcp`, { method: 'POST', headers: captured, body: INITIALIZE_REQUEST });
    assert.equal(replayed.status, 401);
    assert.match(replayed.headers.get('www-authenticate') ?? '', /already used/);
  });
});
