/**
 * A third-party MCP client as tests use it: the SDK's own OAuth client provider interface
 * (`@modelcontextprotocol/sdk/client/auth.js`) kept in memory, registering itself
 * dynamically, with its loopback redirect served by a small listener that records what
 * arrived. The browser part is the local IdP browser (idpBrowser.ts): no Gatehouse code.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';

export class LoopbackRedirect {
  private constructor(
    private readonly server: Server,
    readonly url: string,
    /** Every request the redirect received (a browser loading it), in order. */
    readonly arrivals: URL[],
  ) {}

  static async start(): Promise<LoopbackRedirect> {
    const arrivals: URL[] = [];
    const server = createServer((req, res) => {
      arrivals.push(new URL(req.url ?? '/', url));
      res.writeHead(200, { 'content-type': 'text/plain' }).end('You can close this window.');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`;
    return new LoopbackRedirect(server, url, arrivals);
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

export class InMemoryOAuthClient implements OAuthClientProvider {
  authorizationUrl: URL | undefined;
  private information: OAuthClientInformationMixed | undefined;
  private saved: OAuthTokens | undefined;
  private verifier = '';

  constructor(
    private readonly redirect: LoopbackRedirect,
    private readonly name = 'third-party MCP client',
  ) {}

  get redirectUrl(): string {
    return this.redirect.url;
  }
  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: this.name,
      redirect_uris: [this.redirect.url],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation(): OAuthClientInformationMixed | undefined {
    return this.information;
  }
  saveClientInformation(information: OAuthClientInformationMixed): void {
    this.information = information;
  }
  tokens(): OAuthTokens | undefined {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens): void {
    this.saved = tokens;
  }
  redirectToAuthorization(url: URL): void {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(verifier: string): void {
    this.verifier = verifier;
  }
  codeVerifier(): string {
    return this.verifier;
  }
}
