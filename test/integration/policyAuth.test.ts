/**
 * The policy server's bearer authentication against a real local OIDC provider (tokens from
 * the real authorization code flow) and a stand-in for the GitHub API.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { AuthenticationError, BearerAuthenticator, IdentityProviderUnavailableError } from '../../policy-server/auth/bearerAuthenticator';
import { GithubVerifier } from '../../policy-server/auth/githubVerifier';
import { foreignSignedToken, plausibleClaims, unsignedToken } from '../support/hostileTokens';
import { startLocalIdp, type LocalIdp } from '../support/localIdp';

/** Every token a test sent; none may ever show up in an error. */
const sentTokens: string[] = [];

async function refusal(authenticator: BearerAuthenticator, authorization: string | undefined): Promise<AuthenticationError> {
  const token = authorization?.replace(/^\S+\s*/, '');
  if (token) sentTokens.push(token);
  try {
    await authenticator.authenticate(authorization);
  } catch (error) {
    assert.ok(error instanceof AuthenticationError, `expected AuthenticationError, got ${String(error)}`);
    assert.equal(error.status, 401);
    assertNoToken(error);
    return error;
  }
  assert.fail('authenticate() accepted a token it should refuse');
}

function assertNoToken(error: Error & { wwwAuthenticate?: string }): void {
  for (const token of sentTokens) {
    for (const text of [error.message, error.stack ?? '', error.wwwAuthenticate ?? '']) {
      assert.ok(!text.includes(token), 'an error quotes the bearer token');
      // Also no recognisable chunk of it (a JWT's signature part is unique to the token).
      const tail = token.slice(-16);
      if (tail.length === 16) assert.ok(!text.includes(tail), 'an error quotes part of the bearer token');
    }
  }
}

function assertInvalidToken(error: AuthenticationError, mentions: RegExp): void {
  assert.match(error.wwwAuthenticate, /^Bearer realm="gatehouse", error="invalid_token", error_description="[^"\\]+"$/);
  assert.match(error.wwwAuthenticate, mentions);
}

describe('policy server bearer authentication (OIDC)', function () {
  let idp: LocalIdp;
  let authenticator: BearerAuthenticator;

  before(async function () {
    idp = await startLocalIdp();
    authenticator = new BearerAuthenticator({ oidc: { issuer: idp.issuer, audience: idp.audience } });
  });
  after(async function () {
    await idp?.stop();
  });

  it("accepts alice's access token and reports who she is", async function () {
    const token = await idp.tokenFor('alice');
    sentTokens.push(token);
    const identity = await authenticator.authenticate(`Bearer ${token}`);
    assert.equal(identity.sub, 'alice');
    assert.equal(identity.issuer, idp.issuer);
    assert.equal(identity.email, 'alice@example.com');
    assert.equal(identity.username, 'alice');
    assert.deepEqual(identity.claims.groups, ['engineers']);
    assert.equal(identity.claims.aud, idp.audience);
    assert.equal(identity.githubOrgs, undefined);
  });

  it("accepts bob's token with his own groups, and the scheme name in any case", async function () {
    const token = await idp.tokenFor('bob');
    sentTokens.push(token);
    const identity = await authenticator.authenticate(`bearer ${token}`);
    assert.equal(identity.sub, 'bob');
    assert.deepEqual(identity.claims.groups, ['contractors']);
  });

  it('refuses a token issued for another audience', async function () {
    const elsewhere = await startLocalIdp({ audience: 'https://other-service.example' });
    try {
      const strict = new BearerAuthenticator({ oidc: { issuer: elsewhere.issuer, audience: idp.audience } });
      const error = await refusal(strict, `Bearer ${await elsewhere.tokenFor('alice')}`);
      assertInvalidToken(error, /audience/);
    } finally {
      await elsewhere.stop();
    }
  });

  it('refuses a token from another issuer', async function () {
    const stranger = await startLocalIdp({ audience: idp.audience });
    try {
      const error = await refusal(authenticator, `Bearer ${await stranger.tokenFor('alice')}`);
      assertInvalidToken(error, /issuer/);
    } finally {
      await stranger.stop();
    }
  });

  it('refuses an expired token when no clock skew is allowed', async function () {
    this.timeout(20_000);
    const shortLived = await startLocalIdp({ accessTokenTtlSeconds: 2 });
    try {
      const strict = new BearerAuthenticator({
        oidc: { issuer: shortLived.issuer, audience: shortLived.audience, clockToleranceSeconds: 0 },
      });
      const token = await shortLived.tokenFor('alice');
      assert.equal((await strict.authenticate(`Bearer ${token}`)).sub, 'alice', 'fresh token should pass');
      const exp = decodeJwt(token).exp ?? 0;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, exp * 1000 - Date.now()) + 1_100));
      const error = await refusal(strict, `Bearer ${token}`);
      assertInvalidToken(error, /expired/);
    } finally {
      await shortLived.stop();
    }
  });

  it('refuses an unsigned alg:none token with otherwise perfect claims', async function () {
    const error = await refusal(authenticator, `Bearer ${unsignedToken(plausibleClaims(idp))}`);
    assertInvalidToken(error, /algorithm/);
  });

  it('refuses an HS256 token (a shared secret is not the IdP)', async function () {
    const token = await new SignJWT(plausibleClaims(idp))
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode('x'.repeat(32)));
    const error = await refusal(authenticator, `Bearer ${token}`);
    assertInvalidToken(error, /algorithm/);
  });

  it('refuses a token signed by a key the IdP does not publish', async function () {
    const error = await refusal(authenticator, `Bearer ${await foreignSignedToken(plausibleClaims(idp))}`);
    assertInvalidToken(error, /not signed by a key/);
  });

  it("refuses a forged token that reuses the IdP's key id", async function () {
    const { kid } = decodeProtectedHeader(await idp.tokenFor('alice'));
    const error = await refusal(authenticator, `Bearer ${await foreignSignedToken(plausibleClaims(idp), kid)}`);
    assertInvalidToken(error, /signature/);
  });

  it('refuses garbage', async function () {
    assertInvalidToken(await refusal(authenticator, 'Bearer not-a-token-at-all'), /not a JWT/);
    assertInvalidToken(await refusal(authenticator, 'Bearer aaaa.bbbb.cccc'), /well-formed/);
    const malformed = await refusal(authenticator, 'Bearer two words');
    assert.match(malformed.wwwAuthenticate, /error="invalid_request"/);
  });

  it('challenges a request without credentials without an error code', async function () {
    for (const header of [undefined, '', 'Basic YWxpY2U6c2VjcmV0']) {
      const error = await refusal(authenticator, header);
      assert.equal(error.wwwAuthenticate, 'Bearer realm="gatehouse"');
      assert.equal(error.error, undefined);
    }
  });

  it('refuses to talk to an http issuer that is not on this machine', function () {
    assert.throws(() => new BearerAuthenticator({ oidc: { issuer: 'http://idp.example.com', audience: 'x' } }), /https/);
    assert.doesNotThrow(() => new BearerAuthenticator({ oidc: { issuer: 'https://idp.example.com', audience: 'x' } }));
  });

  it('answers 503 while the IdP is down, and discovers it again once it is back', async function () {
    const first = await startLocalIdp();
    const token = await first.tokenFor('alice');
    sentTokens.push(token);
    const { port } = new URL(first.issuer);
    await first.stop();
    const late = new BearerAuthenticator({ oidc: { issuer: first.issuer, audience: first.audience } });
    const down = await late.authenticate(`Bearer ${token}`).then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.ok(down instanceof IdentityProviderUnavailableError, `expected IdentityProviderUnavailableError, got ${String(down)}`);
    assert.equal(down.status, 503);
    assertNoToken(down);

    const back = await startLocalIdp({ port: Number(port) });
    try {
      const identity = await late.authenticate(`Bearer ${await back.tokenFor('bob')}`);
      assert.equal(identity.sub, 'bob');
    } finally {
      await back.stop();
    }
  });
});

// GitHub is outside this machine, so its API is stubbed here: a local server answering the
// endpoints the verifier reads: the app's token check and /user, /user/orgs, /user/teams.
const GOOD_TOKEN = 'gho_goodToken0123456789abcdefABCDEF';
const NO_ORG_SCOPE_TOKEN = 'gho_noReadOrg0123456789abcdefABCDEF';
/** Valid for the user, but issued to some other app (or a personal access token). */
const OTHER_APP_TOKEN = 'gho_otherApp00123456789abcdefABCDEF';
const APP = { clientId: 'Iv1.gatehouse', clientSecret: 'app-secret-for-tests' };

interface GithubStub {
  baseUrl: string;
  requests: string[];
  server: Server;
}

async function startGithubStub(): Promise<GithubStub> {
  const requests: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://stub');
    requests.push(url.pathname + url.search);
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    if (req.headers.accept !== 'application/vnd.github+json' || req.headers['user-agent'] !== 'gatehouse')
      return send(400, { message: 'bad headers' });
    if (req.method === 'POST' && url.pathname === `/applications/${APP.clientId}/token`) {
      const expected = `Basic ${Buffer.from(`${APP.clientId}:${APP.clientSecret}`).toString('base64')}`;
      if (req.headers.authorization !== expected) return send(401, { message: 'Bad credentials' });
      let body = '';
      req.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      req.on('end', () => {
        const token = (JSON.parse(body) as { access_token?: string }).access_token;
        if (token === GOOD_TOKEN || token === NO_ORG_SCOPE_TOKEN) return send(200, { user: { id: 4242, login: 'octocat' } });
        return send(404, { message: 'Not Found' });
      });
      return;
    }
    const token = req.headers.authorization?.replace(/^Bearer /, '');
    if (token !== GOOD_TOKEN && token !== NO_ORG_SCOPE_TOKEN && token !== OTHER_APP_TOKEN) return send(401, { message: 'Bad credentials' });
    switch (url.pathname) {
      case '/user':
        return send(200, { id: 4242, login: 'octocat', email: token === GOOD_TOKEN ? 'octocat@example.com' : null });
      case '/user/orgs':
        return send(200, [{ login: 'acme' }, { login: 'widgets' }]);
      case '/user/teams':
        if (token === NO_ORG_SCOPE_TOKEN) return send(403, { message: 'Resource not accessible' });
        // Two pages, to show the verifier follows Link: rel="next".
        if (url.searchParams.get('page') === '2') return send(200, [{ slug: 'release', organization: { login: 'widgets' } }]);
        return send(200, [{ slug: 'platform', organization: { login: 'acme' } }], {
          link: `<http://${req.headers.host}/user/teams?per_page=100&page=2>; rel="next"`,
        });
      default:
        return send(404, { message: 'Not Found' });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, server };
}

describe('policy server bearer authentication (GitHub)', function () {
  let stub: GithubStub;
  let authenticator: BearerAuthenticator;

  before(async function () {
    stub = await startGithubStub();
    sentTokens.push(GOOD_TOKEN, NO_ORG_SCOPE_TOKEN, OTHER_APP_TOKEN);
    authenticator = new BearerAuthenticator({ github: { apiBaseUrl: stub.baseUrl, ...APP } });
  });
  after(async function () {
    stub.server.closeAllConnections();
    await new Promise((resolve) => stub.server.close(resolve));
  });

  it('resolves a GitHub token to the user, orgs and teams', async function () {
    const identity = await authenticator.authenticate(`Bearer ${GOOD_TOKEN}`);
    assert.deepEqual(identity, {
      sub: 'github:4242',
      issuer: 'github',
      username: 'octocat',
      email: 'octocat@example.com',
      claims: {},
      githubOrgs: ['acme', 'widgets'],
      githubTeams: ['acme/platform', 'widgets/release'],
    });
    assert.deepEqual([...stub.requests].sort(), [
      `/applications/${APP.clientId}/token`,
      '/user',
      '/user/orgs?per_page=100',
      '/user/teams?per_page=100',
      '/user/teams?per_page=100&page=2',
    ]);
  });

  it('refuses a token the user gave another app, even though GitHub accepts it', async function () {
    const error = await refusal(authenticator, `Bearer ${OTHER_APP_TOKEN}`);
    assertInvalidToken(error, /was not issued to this app/);
  });

  it('answers a second call within 60 s from the cache', async function () {
    await authenticator.authenticate(`Bearer ${GOOD_TOKEN}`);
    const before = stub.requests.length;
    const identity = await authenticator.authenticate(`Bearer ${GOOD_TOKEN}`);
    assert.equal(identity.username, 'octocat');
    assert.equal(stub.requests.length, before, 'the cached identity should not call GitHub again');
  });

  it('refuses a token GitHub does not accept', async function () {
    const error = await refusal(authenticator, 'Bearer gho_revokedToken0123456789abcdefABCD');
    assertInvalidToken(error, /GitHub does not accept the token/);
  });

  it('refuses a token that cannot read team membership', async function () {
    const error = await refusal(authenticator, `Bearer ${NO_ORG_SCOPE_TOKEN}`);
    assertInvalidToken(error, /read:org/);
  });

  it('refuses JWTs when only GitHub is configured', async function () {
    const error = await refusal(authenticator, `Bearer ${unsignedToken({ sub: 'x' })}`);
    assertInvalidToken(error, /does not accept OIDC tokens/);
  });

  it('gives up on a GitHub API that does not answer in time', async function () {
    const silent = createServer(() => {
      /* never answers */
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const verifier = new GithubVerifier(
        { apiBaseUrl: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`, ...APP },
        { timeoutMs: 200 },
      );
      await assert.rejects(verifier.verify(GOOD_TOKEN), (error: Error) => {
        assert.match(error.message, /did not answer within 0.2 s/);
        assertNoToken(error);
        return true;
      });
    } finally {
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('refuses a plain-http GitHub API that is not on this machine', function () {
    assert.throws(() => new BearerAuthenticator({ github: { apiBaseUrl: 'http://api.github.example', ...APP } }), /https/);
  });
});
