/**
 * The "done when", with real parts: a developer signed in once (the extension's
 * IdP token over the control channel) uses an OAuth-protected upstream (the gateway is
 * its OAuth client; the developer signs in at the same IdP in the browser, where a real
 * browser would already have the IdP session) and a shared-key upstream (the key added at
 * the policy server's relay), through a managed gateway, and never sees a credential:
 * none in any answer, none on the laptop's disk. Then an admin revokes the developer's
 * stored credential for the OAuth server in one operation: the gateway deletes it from
 * SecretStorage (time to effect measured), access to everything else stays, and the next
 * use asks the developer to sign in again.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AuthorizeRequest,
  CredentialRequest,
  TokenRequest,
  type AuthorizeParams,
  type CredentialParams,
} from '../../common/control/controlProtocol';
import { startGateway, textOf, waitUntil, type RunningGateway } from '../support/gatewayHarness';
import { startKeyedUpstream, type KeyedUpstream } from '../support/keyedUpstream';
import { signInInBrowser } from '../support/idpBrowser';
import { startLocalIdp, type LocalIdp } from '../support/localIdp';
import { READ_SCOPE, startOAuthUpstream, WRITE_SCOPE, type OAuthUpstream } from '../support/oauthUpstream';
import { filesUnder, removeDir, secretStoreWith, startPolicyServer, type RunningPolicyServer } from '../support/policyHarness';

const SERVICE_KEY = `sk-live-${'9f8e7d6c'.repeat(4)}`;

function policy(notesUrl: string, vaultUrl: string): string {
  return `version: 1
org: test
admins: [admins]
servers:
  - id: notes
    title: Notes
    transport: { type: streamable-http, url: "${notesUrl}" }
    credential: { mode: user-oauth, scopes: [${READ_SCOPE}] }
  - id: vault
    title: Vault API
    transport: { type: streamable-http, url: "${vaultUrl}" }
    credential: { mode: shared-key, secretRef: vault-key }
groups:
  - { id: engineers, match: [{ claim: sub, equals: alice }] }
  - { id: admins, match: [{ claim: sub, equals: carol }] }
rules:
  - { id: engineers-notes, effect: allow, principals: [group:engineers], servers: [notes, vault], tools: ["*"] }
`;
}

describe('one sign-in: an OAuth-protected and a shared-key upstream, no credential in sight', function () {
  this.timeout(120_000);
  let notes: OAuthUpstream;
  let vault: KeyedUpstream;
  let idp: LocalIdp;
  let server: RunningPolicyServer;
  let gateway: RunningGateway;
  let scratch: string;
  const tokens: Record<string, string> = {};
  const asked: AuthorizeParams[] = [];
  const secrets = new Map<string, string>();
  const deleted: Array<{ key: string; at: number }> = [];

  before(async () => {
    notes = await startOAuthUpstream();
    idp = await startLocalIdp({ mcpResource: { url: notes.url, scopes: [READ_SCOPE, WRITE_SCOPE] } });
    notes.trust(idp.issuer);
    for (const user of ['alice', 'carol']) tokens[user] = await idp.tokenFor(user);
    vault = await startKeyedUpstream(SERVICE_KEY);
    scratch = mkdtempSync(join(tmpdir(), 'gatehouse-one-sign-in-'));
    const keyFile = await secretStoreWith(scratch, 'vault-key', SERVICE_KEY);
    server = await startPolicyServer(idp, {
      dataDir: scratch,
      policyYaml: policy(notes.url, vault.url),
      extraArgs: ['--secrets-key-file', keyFile],
    });
    gateway = await startGateway(null, {
      control: true,
      extraArgs: ['--policy-server', server.url, '--policy-keys', server.keysPath, '--policy-token', 'control'],
      onControl: (connection) => {
        connection.onRequest(TokenRequest, () => ({ token: tokens.alice! }));
        connection.onRequest(AuthorizeRequest, (params: AuthorizeParams) => {
          asked.push(params);
          void signInInBrowser(new URL(params.url), 'alice')
            .then((r) => r.text())
            .catch(() => undefined);
          return {};
        });
        connection.onRequest(CredentialRequest, (params: CredentialParams) => {
          if (params.op === 'get') return secrets.has(params.key) ? { value: secrets.get(params.key) } : {};
          if (params.op === 'set') secrets.set(params.key, params.value ?? '');
          else {
            secrets.delete(params.key);
            deleted.push({ key: params.key, at: performance.now() });
          }
          return {};
        });
      },
    });
  });

  after(async () => {
    await gateway?.stop();
    await server?.stop();
    await Promise.all([notes?.stop(), vault?.stop(), idp?.stop()]);
    removeDir(scratch);
  });

  it('uses both servers, asked to sign in once for the OAuth one, and no credential shows anywhere', async () => {
    const notesClient = await gateway.connect('notes');
    const vaultClient = await gateway.connect('vault');
    const answers = [
      textOf(await notesClient.callTool({ name: 'whoami', arguments: {} })),
      textOf(await notesClient.callTool({ name: 'read_note', arguments: { id: '3' } })),
      textOf(await vaultClient.callTool({ name: 'echo', arguments: { text: 'through the relay' } })),
      JSON.stringify(await notesClient.listTools()),
      JSON.stringify(await vaultClient.listTools()),
    ];
    assert.match(answers[0]!, /token subject: alice/);
    assert.equal(answers[2], 'through the relay');
    assert.equal(asked.length, 1, 'one browser sign-in, for the OAuth server only');
    assert.equal(asked[0]!.server, 'notes');

    const stored = JSON.parse(secrets.get('upstream-oauth/alice/notes') ?? '{}') as { tokens?: { access_token?: string } };
    const upstreamToken = stored.tokens?.access_token;
    assert.ok(upstreamToken, 'the upstream token is kept in SecretStorage, per user and server');
    assert.ok(vault.authorizations.includes(`Bearer ${SERVICE_KEY}`), 'the relay added the service key');
    for (const secret of [upstreamToken, SERVICE_KEY, tokens.alice!]) {
      assert.ok(!answers.join('\n').includes(secret), 'no credential in what the client saw');
      assert.ok(!filesUnder(gateway.dir).includes(secret), "no credential on the laptop's disk (gateway state, runtime, cache)");
      assert.ok(!gateway.stderr().includes(secret), 'no credential in the gateway log');
    }
    assert.ok(!notes.authorizations.includes(`Bearer ${tokens.alice}`), 'the IdP token for the policy server never went to the upstream');
  });

  it("deletes the stored credential when an admin revokes it (time measured), keeps the user's other access, and asks again on next use", async () => {
    const started = performance.now();
    const response = await fetch(`${server.url}/v1/revocations`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${tokens.carol}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ sub: 'alice', serverId: 'notes', reason: 'laptop lost' }),
    });
    assert.equal(response.status, 201, await response.text());
    await waitUntil(() => deleted.some((d) => d.key === 'upstream-oauth/alice/notes'), 5_000);
    const tookMs = deleted.find((d) => d.key === 'upstream-oauth/alice/notes')!.at - started;
    console.log(`      stored upstream credential revoked -> deleted from SecretStorage: ${tookMs.toFixed(0)} ms`);
    assert.ok(tookMs < 5_000);
    assert.equal(secrets.has('upstream-oauth/alice/notes'), false);

    // Alice keeps her access: the relay and the policy still serve her.
    const vaultClient = await gateway.connect('vault');
    assert.equal(textOf(await vaultClient.callTool({ name: 'echo', arguments: { text: 'still in' } })), 'still in');
    // The next use of the OAuth server asks her to sign in again, and works after it.
    const notesClient = await gateway.connect('notes');
    assert.match(textOf(await notesClient.callTool({ name: 'whoami', arguments: {} })), /alice/);
    assert.equal(asked.length, 2);
    assert.ok(secrets.has('upstream-oauth/alice/notes'), 'the new sign-in is kept');
    // Listed for admins, and a second look at the same bundle does not undo the new sign-in.
    const listed = (await (
      await fetch(`${server.url}/v1/revocations`, { headers: { Authorization: `Bearer ${tokens.carol}` } })
    ).json()) as { revocations: Array<{ sub: string; serverId?: string }> };
    assert.ok(listed.revocations.some((r) => r.sub === 'alice' && r.serverId === 'notes'));
  });
});
