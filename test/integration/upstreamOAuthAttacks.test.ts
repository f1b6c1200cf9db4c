/**
 * Attacks on the gateway's upstream OAuth, each refused with nothing leaked. The hostile
 * parties are real local servers: an MCP server whose protected-resource metadata points
 * at an "authorization server" the test controls (wrong issuer, no PKCE, `javascript:` or
 * shell-looking endpoints, a mix-up `iss`), and the real oidc-provider for code replay.
 * The gateway runs as the extension runs it (control channel); the test is the extension
 * and the browser, and records whether it was ever asked to open anything.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MessageConnection } from 'vscode-jsonrpc/node';
import { AuthorizeRequest, CredentialRequest, type AuthorizeParams } from '../../common/control/controlProtocol';
import { checkAuthorizationUrl } from '../../common/net/authorizationUrl';
import { listenForRedirect } from '../../common/net/loopbackRedirect';
import { authorizationPrompt } from '../../extension/auth/upstreamSignInPrompt';
import { FlowProvider } from '../../gateway/upstreamAuth/flowProvider';
import { startGateway, type RunningGateway } from '../support/gatewayHarness';
import { signInInBrowser } from '../support/idpBrowser';
import { startLocalIdp } from '../support/localIdp';
import { READ_SCOPE, startOAuthUpstream } from '../support/oauthUpstream';

interface HostileAs {
  url: string;
  /** Requests that reached its token endpoint (a refused flow must send none). */
  tokenRequests: number;
  stop(): Promise<void>;
}

/** A protected MCP server and an authorization server at one origin, with metadata the test shapes. */
async function startHostileAs(
  metadata: (origin: string) => Record<string, unknown>,
  authorizeAnswer?: (redirect: URL, origin: string) => void,
): Promise<HostileAs> {
  const state = { tokenRequests: 0 };
  const server: Server = createServer((req, res) => {
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const path = new URL(req.url ?? '/', origin);
    if (path.pathname === '/.well-known/oauth-protected-resource/mcp') {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ resource: `${origin}/mcp`, authorization_servers: [origin] }));
    } else if (path.pathname === '/.well-known/oauth-authorization-server') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(metadata(origin)));
    } else if (path.pathname === '/authorize' && authorizeAnswer) {
      const redirect = new URL(path.searchParams.get('redirect_uri') ?? '');
      redirect.searchParams.set('code', 'hostile-code');
      redirect.searchParams.set('state', path.searchParams.get('state') ?? '');
      authorizeAnswer(redirect, origin);
      res.writeHead(302, { location: redirect.href }).end();
    } else if (path.pathname === '/token' || path.pathname === '/register') {
      if (path.pathname === '/token') state.tokenRequests++;
      res
        .writeHead(path.pathname === '/register' ? 201 : 200, { 'content-type': 'application/json' })
        .end(
          JSON.stringify(
            path.pathname === '/register'
              ? { client_id: 'hostile-client', redirect_uris: [] }
              : { access_token: 'stolen', token_type: 'Bearer' },
          ),
        );
    } else {
      res.writeHead(401, { 'www-authenticate': `Bearer resource_metadata="${origin}/.well-known/oauth-protected-resource/mcp"` }).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `${origin}/mcp`,
    get tokenRequests() {
      return state.tokenRequests;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function goodMetadata(origin: string): Record<string, unknown> {
  return {
    issuer: origin,
    authorization_endpoint: `${origin}/authorize`,
    token_endpoint: `${origin}/token`,
    registration_endpoint: `${origin}/register`,
    response_types_supported: ['code'],
    code_challenge_methods_supported: ['S256'],
  };
}

/** The extension: records every sign-in it is asked to open, and (optionally) lets a browser follow it. */
function extension(
  asked: AuthorizeParams[],
  browse?: (url: URL) => Promise<void>,
  secrets = new Map<string, string>(),
): (connection: MessageConnection) => void {
  return (connection) => {
    connection.onRequest(AuthorizeRequest, (params: AuthorizeParams) => {
      asked.push(params);
      if (browse) void browse(new URL(params.url)).catch(() => undefined);
      return {};
    });
    connection.onRequest(CredentialRequest, (params) => {
      if (params.op === 'get') return secrets.has(params.key) ? { value: secrets.get(params.key) } : {};
      if (params.op === 'set') secrets.set(params.key, params.value ?? '');
      else secrets.delete(params.key);
      return {};
    });
  };
}

describe('upstream OAuth attacks', function () {
  this.timeout(60_000);
  let gateway: RunningGateway | undefined;
  afterEach(async () => {
    await gateway?.stop();
    gateway = undefined;
  });

  async function refusedFlow(metadata: (origin: string) => Record<string, unknown>, expected: RegExp): Promise<void> {
    const hostile = await startHostileAs(metadata);
    const asked: AuthorizeParams[] = [];
    try {
      gateway = await startGateway(
        [{ id: 'target', transport: { type: 'streamable-http', url: hostile.url }, credential: { mode: 'user-oauth' } }],
        { control: true, onControl: extension(asked) },
      );
      await assert.rejects(gateway.connect('target'), expected);
      assert.equal(asked.length, 0, 'nothing was opened');
      assert.equal(hostile.tokenRequests, 0, 'nothing was sent to its token endpoint');
    } finally {
      await hostile.stop();
    }
  }

  it('refuses authorization-server metadata whose issuer is not the server discovery named (mix-up)', async () => {
    await refusedFlow((origin) => ({ ...goodMetadata(origin), issuer: 'https://idp.example.com' }), /possible mix-up/);
  });

  it('refuses an authorization server that does not advertise PKCE S256', async () => {
    await refusedFlow((origin) => ({ ...goodMetadata(origin), code_challenge_methods_supported: ['plain'] }), /S256/);
    await refusedFlow((origin) => {
      const m = goodMetadata(origin);
      delete m.code_challenge_methods_supported;
      return m;
    }, /S256/);
  });

  it('never opens javascript:, file:, data: or shell-looking authorization endpoints (CVE-2025-6514 class)', async () => {
    for (const endpoint of [
      'javascript:alert(document.cookie)//',
      'file:///etc/passwd',
      'data:text/html,<script>alert(1)</script>',
      'http://evil.example.com/authorize',
    ]) {
      // The SDK's metadata schema already refuses some schemes; the gateway refuses the rest before anything opens.
      await refusedFlow(
        (origin) => ({ ...goodMetadata(origin), authorization_endpoint: endpoint }),
        /not https|refusing|cannot use javascript:/,
      );
    }
    await refusedFlow(
      (origin) => ({ ...goodMetadata(origin), authorization_endpoint: `${origin}/authorize$(touch%20/tmp/pwned)` }),
      /characters no endpoint has/,
    );
    await refusedFlow(
      (origin) => ({ ...goodMetadata(origin), authorization_endpoint: `${origin}/authorize';calc;'` }),
      /characters no endpoint has/,
    );
  });

  it('refuses token or registration endpoints in clear text off this machine', async () => {
    await refusedFlow((origin) => ({ ...goodMetadata(origin), token_endpoint: 'http://evil.example.com/token' }), /not https/);
  });

  it('refuses an authorization answer from another issuer (mix-up via iss) without redeeming the code', async () => {
    const asked: AuthorizeParams[] = [];
    const hostile = await startHostileAs(
      (origin) => ({ ...goodMetadata(origin), authorization_response_iss_parameter_supported: true }),
      (redirect) => redirect.searchParams.set('iss', 'https://honest-idp.example.com'),
    );
    try {
      gateway = await startGateway(
        [{ id: 'target', transport: { type: 'streamable-http', url: hostile.url }, credential: { mode: 'user-oauth' } }],
        {
          control: true,
          onControl: extension(asked, async (url) => {
            await signInInBrowser(url, 'alice');
          }),
        },
      );
      await assert.rejects(gateway.connect('target'), /possible mix-up/);
      assert.equal(asked.length, 1);
      assert.equal(hostile.tokenRequests, 0, 'the code was never redeemed');
    } finally {
      await hostile.stop();
    }
  });

  it('takes one answer per flow: a missing, foreign or replayed state gets 404 and cannot end the flow', async () => {
    const redirect = await listenForRedirect('state-of-this-flow', {
      done: 'ok',
      failed: 'no',
      timedOut: () => new Error('late'),
      cancelled: () => new Error('cancelled'),
    });
    try {
      const at = (query: string) => fetch(`${redirect.redirectUri}${query}`).then((r) => r.status);
      assert.equal(await at('?code=c'), 404, 'state missing');
      assert.equal(await at('?code=c&state=state-of-another-flow'), 404, 'state of another flow');
      assert.equal(await at('?code=c&state=state-of-this-flow'), 200, 'its own state');
      assert.equal((await redirect.answer(1_000)).searchParams.get('code'), 'c');
      assert.notEqual(await at('?code=c2&state=state-of-this-flow').catch(() => 0), 200, 'replayed: the listener is gone');
    } finally {
      redirect.close();
    }
  });

  it('checks iss and error in the answer itself, before any code is used', () => {
    const metadata = { ...goodMetadata('https://as.example.com'), authorization_response_iss_parameter_supported: true };
    const provider = new FlowProvider({
      serverTitle: 'Target',
      serverUrl: 'https://target.example.com/mcp',
      redirectUri: 'http://127.0.0.1:1/callback',
      state: 's',
      stored: {},
      save: async () => undefined,
      redirect: async () => undefined,
    });
    provider.saveDiscoveryState({ authorizationServerUrl: 'https://as.example.com', authorizationServerMetadata: metadata as never });
    const answer = (query: string) => new URL(`http://127.0.0.1:1/callback?state=s&${query}`);
    assert.equal(provider.codeFrom(answer('code=c&iss=https%3A%2F%2Fas.example.com')), 'c');
    assert.throws(() => provider.codeFrom(answer('code=c')), /mix-up/, 'iss required when advertised');
    assert.throws(() => provider.codeFrom(answer('code=c&iss=https%3A%2F%2Fother.example.com')), /mix-up/);
    assert.throws(
      () => provider.codeFrom(answer('error=access_denied&error_description=%1B%5B31mno&iss=https%3A%2F%2Fas.example.com')),
      (e: Error) => /not completed \(access_denied: \?\[31mno\)/.test(e.message),
    );
  });

  it('checks an authorization URL again in the extension before anything opens', () => {
    const base = { server: 'notes', title: 'Notes', issuer: 'https://as.example.com', reason: 'sign-in' };
    assert.match(
      authorizationPrompt({ ...base, url: 'https://as.example.com/authorize?client_id=x' }).message,
      /Notes needs you to sign in at as\.example\.com/,
    );
    for (const url of [
      'javascript:alert(1)',
      'file:///etc/passwd',
      'http://as.example.com/authorize',
      'https://user:pw@as.example.com/authorize',
      'https://as.example.com/a;rm -rf ~',
    ]) {
      assert.throws(() => authorizationPrompt({ ...base, url }), /refusing|not a URL/, url);
    }
    assert.throws(() => authorizationPrompt({ ...base, url: 'https://as.example.com/authorize', extra: 1 }), /malformed/);
    assert.throws(
      () => checkAuthorizationUrl(new URL('https://as.example.com/elsewhere'), 'https://as.example.com/authorize'),
      /not the authorization server's endpoint/,
    );
  });

  it('never redeems a replayed authorization code: the real authorization server refuses it, and the gateway listens no more', async () => {
    const upstream = await startOAuthUpstream();
    const idp = await startLocalIdp({ mcpResource: { url: upstream.url, scopes: [READ_SCOPE] } });
    upstream.trust(idp.issuer);
    const callbacks: URL[] = [];
    const secrets = new Map<string, string>();
    try {
      gateway = await startGateway(
        [{ id: 'notes', transport: { type: 'streamable-http', url: upstream.url }, credential: { mode: 'user-oauth' } }],
        {
          control: true,
          onControl: extension(
            [],
            async (url) => {
              const response = await signInInBrowser(url, 'alice');
              callbacks.push(new URL(response.url || ''));
              await response.text();
            },
            secrets,
          ),
        },
      );
      await (await gateway.connect('notes')).listTools();
      const callback = callbacks[0]!;
      assert.ok(callback.searchParams.get('code'), 'the browser delivered a code');
      // Replayed at the gateway: its one-shot listener has closed.
      await assert.rejects(fetch(callback), /fetch failed/);
      // Replayed at the authorization server by someone who read it from the browser history, with
      // the gateway's own client id and redirect URI, but not the PKCE verifier (it never left the gateway):
      const stored = JSON.parse(secrets.get('upstream-oauth/local/notes') ?? '{}') as { client?: { client_id?: string } };
      assert.ok(stored.client?.client_id, 'the gateway registered its own client');
      const metadata = (await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json()) as { token_endpoint: string };
      const replay = await fetch(metadata.token_endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code: callback.searchParams.get('code')!,
          redirect_uri: `${callback.origin}${callback.pathname}`,
          code_verifier: 'x'.repeat(43),
          client_id: stored.client.client_id,
        }),
      });
      assert.equal(replay.status, 400);
      assert.equal(((await replay.json()) as { error?: string }).error, 'invalid_grant');
    } finally {
      await gateway?.stop();
      gateway = undefined;
      await upstream.stop();
      await idp.stop();
    }
  });
});
