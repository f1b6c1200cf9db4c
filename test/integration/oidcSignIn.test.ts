/**
 * The extension's sign-in to the org's OpenID Provider (extension/auth/oidcSignIn.ts),
 * outside VS Code, against the real local IdP (oidc-provider): a person signs in in the
 * browser (the login form filled in), the answer arrives on the loopback redirect, and the
 * access token is one the real policy server accepts; refresh works; and the classic
 * mistakes are refused: a forged or replayed redirect, a mismatched state, an issuer that
 * is not https, an authorization URL that is not the provider's endpoint.
 */
import assert from 'node:assert/strict';
import type { Configuration } from 'openid-client';
import {
  checkAuthorizationUrl,
  discoverProvider,
  refreshTokens,
  signInWithBrowser,
  type OidcSettings,
} from '../../extension/auth/oidcSignIn';
import { signInInBrowser } from '../support/idpBrowser';
import { RESOURCE_SCOPE, startLocalIdp, VSCODE_CLIENT_ID, type LocalIdp } from '../support/localIdp';
import { removeDir, startPolicyServer, type RunningPolicyServer } from '../support/policyHarness';

const POLICY = `version: 1
org: test
admins: [admins]
groups:
  - { id: admins, match: [{ user: carol }] }
`;

describe("signing in to the org's OpenID Provider (the extension's flow, outside VS Code)", function () {
  this.timeout(60_000);
  let idp: LocalIdp;
  let server: RunningPolicyServer;
  let settings: OidcSettings;

  before(async () => {
    idp = await startLocalIdp();
    server = await startPolicyServer(idp, { policyYaml: POLICY });
    settings = {
      issuer: idp.issuer,
      clientId: VSCODE_CLIENT_ID,
      scopes: ['openid', 'email', 'profile', 'offline_access', RESOURCE_SCOPE],
      resource: idp.audience,
    };
  });

  after(async () => {
    await server?.stop();
    await idp?.stop();
    if (server) removeDir(server.dir);
  });

  it('signs a person in through the browser and the loopback redirect; the policy server accepts the token; refresh works', async () => {
    let page: string | undefined;
    const tokens = await signInWithBrowser(settings, async (url) => {
      assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
      assert.ok(url.searchParams.get('state') && url.searchParams.get('nonce'));
      assert.match(url.searchParams.get('redirect_uri') ?? '', /^http:\/\/127\.0\.0\.1:\d+\/callback$/);
      // The browser runs on its own; the flow waits for its redirect.
      void signInInBrowser(url, 'alice').then(async (response) => {
        page = await response.text();
      });
    });
    assert.equal(tokens.idTokenClaims.sub, 'alice');
    assert.ok(tokens.refreshToken, 'offline_access gives a refresh token');
    const policy = await fetch(`${server.url}/v1/effective-policy`, { headers: { Authorization: `Bearer ${tokens.accessToken}` } });
    assert.equal(policy.status, 200, 'the access token is for the policy server');
    await new Promise((r) => setTimeout(r, 50));
    assert.match(page ?? '', /You are signed in to Gatehouse/);

    const renewed = await refreshTokens(settings, { ...tokens, refreshToken: tokens.refreshToken! });
    assert.notEqual(renewed.accessToken, tokens.accessToken);
    assert.equal(renewed.idTokenClaims.sub, 'alice');
    assert.equal(
      (await fetch(`${server.url}/v1/effective-policy`, { headers: { Authorization: `Bearer ${renewed.accessToken}` } })).status,
      200,
    );
    await assert.rejects(refreshTokens(settings, { ...tokens, refreshToken: 'not-a-refresh-token' }), /sign in again/);
    await assert.rejects(
      refreshTokens({ ...settings, issuer: 'https://other-idp.example.com' }, { ...tokens, refreshToken: tokens.refreshToken! }),
      /provider changed/,
      'a refresh token goes back only to its issuer',
    );
  });

  it("ignores redirects without the flow's state (a port-guessing page cannot end the sign-in), takes one answer, refuses a forged code", async () => {
    let redirectUri: URL | undefined;
    let stateParam = '';
    await assert.rejects(
      signInWithBrowser(settings, async (url) => {
        redirectUri = new URL(url.searchParams.get('redirect_uri')!);
        stateParam = url.searchParams.get('state')!;
        const guess = new URL(redirectUri);
        guess.search = new URLSearchParams({ code: 'x', state: 'not-the-state', iss: idp.issuer }).toString();
        assert.equal((await fetch(guess)).status, 404, 'another state is not an answer');
        const forged = new URL(redirectUri);
        forged.search = new URLSearchParams({ code: 'stolen-code', state: stateParam, iss: idp.issuer }).toString();
        void fetch(forged);
      }),
      /refused/,
      'a code the provider never issued for this flow is refused at the exchange',
    );
    const replay = new URL(redirectUri!);
    replay.search = new URLSearchParams({ code: 'stolen-code', state: stateParam }).toString();
    await assert.rejects(fetch(replay), /fetch failed/, 'the loopback server closed after its one answer');
  });

  it("refuses an issuer that is not https off this machine, and an authorization URL that is not the provider's endpoint", async () => {
    await assert.rejects(discoverProvider({ ...settings, issuer: 'http://idp.example.com' }), /must be https/);
    await assert.rejects(discoverProvider({ ...settings, issuer: 'javascript:alert(1)' }), /must be https/);
    const config: Configuration = await discoverProvider(settings);
    const endpoint = new URL(config.serverMetadata().authorization_endpoint!);
    assert.doesNotThrow(() => checkAuthorizationUrl(new URL(`${endpoint.href}?client_id=x`), config));
    for (const bad of [
      'javascript:alert(1)//',
      'file:///etc/passwd',
      'data:text/html,hi',
      `${endpoint.origin}/elsewhere`,
      'https://evil.example.com/auth',
    ]) {
      assert.throws(() => checkAuthorizationUrl(new URL(bad), config), /refusing to open it/, bad);
    }
  });
});
