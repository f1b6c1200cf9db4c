/**
 * Per-user upstream OAuth (credential mode `user-oauth`) end to end: the real gateway as
 * the OAuth client of a real protected MCP server (test/support/oauthUpstream.ts, JWTs
 * verified against the IdP's keys) whose authorization server is a real oidc-provider with
 * dynamic client registration. The test plays the extension on the control channel:
 * `gatehouse/authorize` is answered by a browser-like session that signs alice in at the
 * IdP's login form and lands on the gateway's loopback redirect; `gatehouse/credential` is
 * SecretStorage (a Map the test can inspect).
 */
import assert from 'node:assert/strict';
import type { MessageConnection } from 'vscode-jsonrpc/node';
import {
  AuthorizeRequest,
  CredentialRequest,
  SignInStatusRequest,
  SignOutServerRequest,
  type AuthorizeParams,
  type CredentialParams,
} from '../../common/control/controlProtocol';
import { startGateway, textOf, type RunningGateway, type ServerSpec } from '../support/gatewayHarness';
import { signInInBrowser } from '../support/idpBrowser';
import { startLocalIdp, type LocalIdp } from '../support/localIdp';
import { READ_SCOPE, startOAuthUpstream, WRITE_SCOPE, type OAuthUpstream } from '../support/oauthUpstream';

interface Extension {
  asked: AuthorizeParams[];
  secrets: Map<string, string>;
  /** How the "browser" answers: sign alice in, or decline. */
  answer: 'sign-in' | 'decline';
}

function actAsExtension(extension: Extension): (connection: MessageConnection) => void {
  return (connection) => {
    connection.onRequest(AuthorizeRequest, async (params: AuthorizeParams) => {
      extension.asked.push(params);
      if (extension.answer === 'decline') throw new Error('the developer declined');
      // Like VS Code: answered once the browser was sent; the sign-in finishes on its own.
      void signInInBrowser(new URL(params.url), 'alice')
        .then((r) => r.text())
        .catch(() => undefined);
      return {};
    });
    connection.onRequest(CredentialRequest, (params: CredentialParams) => {
      if (params.op === 'get') return extension.secrets.has(params.key) ? { value: extension.secrets.get(params.key) } : {};
      if (params.op === 'set') extension.secrets.set(params.key, params.value ?? '');
      else extension.secrets.delete(params.key);
      return {};
    });
  };
}

describe('per-user upstream OAuth through the gateway', function () {
  this.timeout(60_000);
  let upstream: OAuthUpstream;
  let idp: LocalIdp;
  let gateway: RunningGateway | undefined;
  let server: ServerSpec;

  before(async () => {
    upstream = await startOAuthUpstream();
    idp = await startLocalIdp({ mcpResource: { url: upstream.url, scopes: [READ_SCOPE, WRITE_SCOPE] } });
    upstream.trust(idp.issuer);
    server = { id: 'notes', title: 'Notes', transport: { type: 'streamable-http', url: upstream.url }, credential: { mode: 'user-oauth' } };
  });
  afterEach(async () => {
    await gateway?.stop();
    gateway = undefined;
  });
  after(async () => {
    await upstream.stop();
    await idp.stop();
  });

  it('signs the user in on first use, then steps up for a write, never showing a token to the client or the log', async () => {
    const extension: Extension = { asked: [], secrets: new Map(), answer: 'sign-in' };
    gateway = await startGateway([server], { control: true, onControl: actAsExtension(extension) });
    // Nothing is asked at launch: nothing starts until a client asks for the server.
    assert.equal(extension.asked.length, 0);
    const status = gateway.ready.servers.find((s) => s.id === 'notes');
    assert.equal(status?.state, 'idle', 'listed as not started yet, not failed');

    const client = await gateway.connect('notes');
    assert.equal(extension.asked.length, 1);
    const first = extension.asked[0]!;
    assert.equal(first.server, 'notes');
    assert.equal(first.title, 'Notes');
    assert.equal(first.reason, 'sign-in');
    assert.equal(first.issuer, idp.issuer);
    const authorizeUrl = new URL(first.url);
    assert.equal(authorizeUrl.origin, idp.issuer);
    assert.equal(authorizeUrl.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(authorizeUrl.searchParams.get('resource'), upstream.url);
    assert.equal(authorizeUrl.searchParams.get('scope'), READ_SCOPE, 'the scope comes from the challenge');
    assert.match(authorizeUrl.searchParams.get('redirect_uri') ?? '', /^http:\/\/127\.0\.0\.1:\d+\/callback$/);

    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), ['leak_token', 'read_note', 'whoami', 'write_note']);
    assert.match(textOf(await client.callTool({ name: 'whoami', arguments: {} })), /token subject: alice/);

    // A write needs notes:write: the server answers 403 insufficient_scope and the gateway steps up.
    const written = await client.callTool({ name: 'write_note', arguments: { id: '1', text: 'hi' } });
    assert.match(textOf(written), /saved note 1/);
    assert.equal(extension.asked.length, 2);
    assert.equal(extension.asked[1]!.reason, 'step-up');
    assert.deepEqual(new URL(extension.asked[1]!.url).searchParams.get('scope')?.split(' ').sort(), [READ_SCOPE, WRITE_SCOPE]);

    // Kept in the extension's SecretStorage, per user and server, stamped with the issuer.
    const stored = JSON.parse(extension.secrets.get('upstream-oauth/local/notes') ?? '{}') as {
      tokens?: { access_token?: string; issuer?: string; scope?: string };
    };
    assert.equal(stored.tokens?.issuer, idp.issuer);
    const token = stored.tokens?.access_token;
    assert.ok(token, 'an access token is stored');
    assert.ok(upstream.authorizations.includes(`Bearer ${token}`), "the upstream got the user's token");
    assert.ok(!upstream.authorizations.some((a) => a.includes(gateway!.secret)), "the client's own credential never went upstream");
    assert.ok(!gateway.stderr().includes(token), 'no token in the gateway log');
    assert.ok(!gateway.stderr().includes(token.split('.')[2]!), 'not even its signature');
    // An upstream that echoes the token: the gateway's redaction keeps it from the client (and the model).
    const leaked = textOf(await client.callTool({ name: 'leak_token', arguments: {} }));
    assert.match(leaked, /I was called with: /);
    assert.ok(!/eyJ[\w-]+\.eyJ[\w-]+/.test(leaked), `no token (of any age) in the answer: ${leaked.slice(0, 160)}`);
    assert.match(leaked, /\[REDACTED:[\w-]+\]/, 'the answer shows the redaction');

    // The Scopes view's facts (never the token), then Sign Out from it.
    const { servers } = await gateway.control!.sendRequest(SignInStatusRequest, {});
    assert.equal(servers.length, 1);
    assert.equal(servers[0]!.signedIn, true);
    assert.equal(servers[0]!.issuer, idp.issuer);
    assert.deepEqual(servers[0]!.scopes?.sort(), [READ_SCOPE, WRITE_SCOPE]);
    assert.ok(Date.parse(servers[0]!.expiresAt ?? '') > Date.now());
    assert.ok(!JSON.stringify(servers).includes(token));
    await gateway.control!.sendRequest(SignOutServerRequest, { server: 'notes' });
    assert.equal(extension.secrets.has('upstream-oauth/local/notes'), false, 'deleted from SecretStorage');
    assert.equal((await gateway.control!.sendRequest(SignInStatusRequest, {})).servers[0]!.signedIn, false);
    await client.callTool({ name: 'read_note', arguments: { id: '2' } });
    assert.equal(extension.asked.length, 3, 'the next use asks to sign in again');
    assert.equal(extension.asked[2]!.reason, 'sign-in');
  });

  it('with eager start, lists a server that waits for a sign-in as such at launch, without asking', async () => {
    const extension: Extension = { asked: [], secrets: new Map(), answer: 'sign-in' };
    gateway = await startGateway([server], { control: true, onControl: actAsExtension(extension), gateway: { upstreamStart: 'eager' } });
    // The launch-time connection may not bring up a browser.
    assert.equal(extension.asked.length, 0);
    const status = gateway.ready.servers.find((s) => s.id === 'notes');
    assert.equal(status?.state, 'sign-in', 'listed as waiting for a sign-in, not failed');
    assert.match(status?.error ?? '', /Notes needs you to sign in/);
  });

  it('uses the kept credentials after a restart without asking again', async () => {
    const extension: Extension = { asked: [], secrets: new Map(), answer: 'sign-in' };
    gateway = await startGateway([server], { control: true, onControl: actAsExtension(extension) });
    await (await gateway.connect('notes')).listTools();
    assert.equal(extension.asked.length, 1);
    await gateway.stop();

    gateway = await startGateway([server], { control: true, onControl: actAsExtension(extension) });
    const client = await gateway.connect('notes');
    assert.match(textOf(await client.callTool({ name: 'read_note', arguments: { id: '7' } })), /note 7/);
    assert.equal(extension.asked.length, 1, 'no second sign-in');
  });

  it('renews an expired token with one refresh shared by concurrent calls, without asking the user', async () => {
    const shortUpstream = await startOAuthUpstream();
    const shortIdp = await startLocalIdp({
      accessTokenTtlSeconds: 2,
      mcpResource: { url: shortUpstream.url, scopes: [READ_SCOPE, WRITE_SCOPE] },
    });
    shortUpstream.trust(shortIdp.issuer);
    try {
      const extension: Extension = { asked: [], secrets: new Map(), answer: 'sign-in' };
      gateway = await startGateway([{ ...server, transport: { type: 'streamable-http', url: shortUpstream.url } }], {
        control: true,
        onControl: actAsExtension(extension),
      });
      const client = await gateway.connect('notes');
      await client.callTool({ name: 'read_note', arguments: { id: '1' } });
      const firstToken = (
        JSON.parse(extension.secrets.get('upstream-oauth/local/notes')!) as { tokens: { access_token: string; refresh_token?: string } }
      ).tokens;
      assert.ok(firstToken.refresh_token, 'the authorization server gave a refresh token');
      await new Promise((r) => setTimeout(r, 2_500)); // the access token expires
      const results = await Promise.all([1, 2, 3, 4].map((id) => client.callTool({ name: 'read_note', arguments: { id: String(id) } })));
      assert.deepEqual(
        results.map((r) => textOf(r)),
        [1, 2, 3, 4].map((id) => `note ${id}: hello`),
      );
      assert.equal(extension.asked.length, 1, 'no new browser sign-in');
      assert.equal(gateway.stderr().match(/upstream token refreshed/g)?.length, 1, 'one refresh for the four calls');
      const renewed = (JSON.parse(extension.secrets.get('upstream-oauth/local/notes')!) as { tokens: { access_token: string } }).tokens;
      assert.notEqual(renewed.access_token, firstToken.access_token);
      assert.ok(!gateway.stderr().includes(firstToken.refresh_token), 'no refresh token in the log');
    } finally {
      await gateway?.stop();
      gateway = undefined;
      await shortUpstream.stop();
      await shortIdp.stop();
    }
  });

  it('answers with words when the developer declines, and the upstream never saw a token', async () => {
    const extension: Extension = { asked: [], secrets: new Map(), answer: 'decline' };
    const before = upstream.authorizations.length;
    gateway = await startGateway([server], { control: true, onControl: actAsExtension(extension) });
    await assert.rejects(gateway.connect('notes'), /Notes|sign/i);
    assert.equal(extension.asked.length, 1);
    assert.ok(
      upstream.authorizations.slice(before).every((a) => a === ''),
      'only unauthenticated attempts reached the upstream',
    );
  });
});
