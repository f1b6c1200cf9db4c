/**
 * Credential mode `enterprise-managed` (the MCP extension
 * `io.modelcontextprotocol/enterprise-managed-authorization`, SEP-990): the gateway gets an
 * upstream's token with no browser and no consent screen, from the person's existing
 * sign-in at the org's IdP. On a 401 it discovers the server's authorization server (RFC
 * 9728, RFC 8414, with the issuer check of flowProvider.ts), exchanges the person's ID
 * token at the IdP for an ID-JAG for that authorization server and resource (RFC 8693),
 * and redeems the ID-JAG there with the JWT bearer grant (RFC 7523). openid-client makes
 * both token requests. The token is kept in memory only: a new one costs two requests.
 *
 * The authorization server is pinned in the config: one the server's metadata names instead
 * is refused before anything is sent, so a hostile upstream cannot collect the client
 * secret or an assertion. An admin's revocation outlives the token it deletes: an ID token
 * issued before it is not exchanged again (the person signs in anew at the IdP).
 */
import { readSecretFile } from '../../common/fs/privateFiles';
import { discoverOAuthServerInfo } from '@modelcontextprotocol/sdk/client/auth.js';
import { checkResourceAllowed } from '@modelcontextprotocol/sdk/shared/auth-utils.js';
import { decodeJwt } from 'jose';
import * as oauth from 'openid-client';
import { describeError, type Logger } from '../../common/log/logger';
import { oauthRefusal } from '../../common/oauth/oauthRefusal';
import { isSecureOrLoopback } from '../../common/net/loopback';
import { ID_JAG_TOKEN_TYPE, ID_TOKEN_TYPE, JWT_BEARER_GRANT, TOKEN_EXCHANGE_GRANT } from '../../common/oauth/identityAssertion';
import type { UpstreamSignInStatus } from '../../common/control/controlProtocol';
import type { UpstreamChallenge } from '../upstream/upstreamAuthorization';
import type { UpstreamSignIn } from './userOAuthServers';
import { challengeParams, restrictedOAuthFetch, sameIssuer, UpstreamOAuthError } from './flowProvider';

/** Token requests without success in a row before the gateway stops asking (a broken setup, not a person, is at fault). */
const MAX_FAILED_ATTEMPTS = 3;
const REQUEST_TIMEOUT_SECONDS = 10;

export interface EnterpriseAuthorizationSettings {
  serverId: string;
  serverTitle: string;
  serverUrl: URL;
  /** The server's authorization server (issuer), from the config: no other one is used. */
  authorizationServer: string;
  /** This client at the server's authorization server. */
  clientId: string;
  clientSecret?: string;
  idp: { issuer: string; clientId: string; idTokenFile: string };
  log: Logger;
}

export class EnterpriseAuthorization implements UpstreamSignIn {
  private accessToken: string | undefined;
  private obtainedAt = 0;
  private obtaining: Promise<void> | undefined;
  private failedAttempts = 0;
  /** The latest admin revocation (ms): ID tokens issued before it are not exchanged again. */
  private revokedAt = -Infinity;

  constructor(private readonly settings: EnterpriseAuthorizationSettings) {}

  async header(): Promise<string | undefined> {
    return this.accessToken ? `Bearer ${this.accessToken}` : undefined;
  }

  accepted(): void {
    this.failedAttempts = 0;
  }

  async status(): Promise<UpstreamSignInStatus> {
    return { server: this.settings.serverId, signedIn: this.accessToken !== undefined };
  }

  async forget(): Promise<void> {
    this.accessToken = undefined;
    this.failedAttempts = 0;
  }

  async forgetIfObtainedBefore(time: number): Promise<boolean> {
    // Also for later: the ID token that got the deleted token must not simply get another one.
    this.revokedAt = Math.max(this.revokedAt, Number.isFinite(time) ? time : Date.now());
    if (this.accessToken === undefined || this.obtainedAt > this.revokedAt) return false;
    await this.forget();
    return true;
  }

  async challenged(challenge: UpstreamChallenge): Promise<boolean> {
    if (challenge.status !== 401) return false; // more scope cannot be had: the IdP decided what the assertion says
    if (this.obtaining) return this.obtaining.then(() => true);
    if (challenge.sentAuthorization !== (await this.header())) return true; // another request already has a newer token
    if (this.failedAttempts >= MAX_FAILED_ATTEMPTS) {
      throw new UpstreamOAuthError(
        `${this.settings.serverTitle} still refuses the tokens the org's IdP vouches for; ask its owner for access`,
      );
    }
    this.failedAttempts++;
    const obtaining = this.obtain(challenge.wwwAuthenticate).finally(() => {
      if (this.obtaining === obtaining) this.obtaining = undefined;
    });
    this.obtaining = obtaining;
    await obtaining;
    return true;
  }

  private async obtain(wwwAuthenticate: string | undefined): Promise<void> {
    const { settings } = this;
    const fetchFn = restrictedOAuthFetch(settings.serverUrl);
    const params = challengeParams(wwwAuthenticate);
    // Only metadata on the server's own origin (an upstream must not make the gateway fetch arbitrary URLs).
    const metadataUrl = params.resourceMetadataUrl?.origin === settings.serverUrl.origin ? params.resourceMetadataUrl : undefined;
    const discovered = await discoverOAuthServerInfo(settings.serverUrl, {
      ...(metadataUrl ? { resourceMetadataUrl: metadataUrl } : {}),
      fetchFn,
    });
    const metadata = discovered.authorizationServerMetadata;
    if (!metadata || !sameIssuer(metadata.issuer, discovered.authorizationServerUrl)) {
      throw new UpstreamOAuthError(
        `${settings.serverTitle}: its authorization server publishes no metadata, or metadata for another issuer (possible mix-up); refusing`,
      );
    }
    if (!sameIssuer(metadata.issuer, settings.authorizationServer)) {
      throw new UpstreamOAuthError(
        `${settings.serverTitle}: its metadata names the authorization server ${new URL(metadata.issuer).origin}, not the configured one; refusing`,
      );
    }
    if (!isSecureOrLoopback(new URL(metadata.token_endpoint))) {
      throw new UpstreamOAuthError(`${settings.serverTitle}: its token endpoint is not https; refusing`);
    }
    // The resource exactly as the server publishes it (RFC 9728), else its URL; it must name this server (RFC 9728 §3.3).
    const resource = discovered.resourceMetadata?.resource ?? settings.serverUrl.href;
    if (!checkResourceAllowed({ requestedResource: settings.serverUrl, configuredResource: resource })) {
      throw new UpstreamOAuthError(`${settings.serverTitle}: its metadata names another resource (${new URL(resource).origin}); refusing`);
    }

    const assertion = await this.identityAssertion(metadata.issuer, resource);
    const server = new oauth.Configuration(
      metadata as oauth.ServerMetadata,
      settings.clientId,
      undefined,
      settings.clientSecret ? oauth.ClientSecretBasic(settings.clientSecret) : oauth.None(),
    );
    this.restrict(server, fetchFn);
    let tokens: oauth.TokenEndpointResponse;
    try {
      tokens = await oauth.genericGrantRequest(server, JWT_BEARER_GRANT, { assertion, ...(params.scope ? { scope: params.scope } : {}) });
    } catch (error) {
      throw new UpstreamOAuthError(
        `${settings.serverTitle}: its authorization server refused the org's identity assertion (${oauthRefusal(error)})`,
      );
    }
    this.accessToken = tokens.access_token;
    this.obtainedAt = Date.now();
    settings.log.info('upstream token from an identity assertion', { server: settings.serverId, issuer: metadata.issuer });
  }

  /** The person's ID token exchanged at the org's IdP for an ID-JAG for `audience` and `resource`. */
  private async identityAssertion(audience: string, resource: string): Promise<string> {
    const { idp, serverTitle } = this.settings;
    let idToken: string;
    try {
      idToken = readSecretFile(idp.idTokenFile); // a credential: 0600, as the config asks
    } catch (error) {
      throw new UpstreamOAuthError(`${serverTitle}: cannot use the ID token file: ${describeError(error)}`);
    }
    if (!issuedAfter(idToken, this.revokedAt)) {
      throw new UpstreamOAuthError(
        `${serverTitle}: your policy admin revoked its credentials after your last sign-in at the org's IdP; sign in there again`,
      );
    }
    let exchanged: oauth.TokenEndpointResponse;
    try {
      const issuer = new URL(idp.issuer);
      const config = await oauth.discovery(issuer, idp.clientId, undefined, oauth.None(), {
        execute: issuer.protocol === 'http:' ? [oauth.allowInsecureRequests] : [],
        timeout: REQUEST_TIMEOUT_SECONDS,
      });
      config.timeout = REQUEST_TIMEOUT_SECONDS; // the IdP is the org's own (config), not one an upstream named
      // A loopback issuer allows http for discovery; the ID token itself still goes over https or stays on this machine.
      if (!isSecureOrLoopback(new URL(config.serverMetadata().token_endpoint ?? ''))) {
        throw new UpstreamOAuthError('its token endpoint is not https');
      }
      exchanged = await oauth.genericGrantRequest(config, TOKEN_EXCHANGE_GRANT, {
        subject_token: idToken,
        subject_token_type: ID_TOKEN_TYPE,
        requested_token_type: ID_JAG_TOKEN_TYPE,
        audience,
        resource,
      });
    } catch (error) {
      throw new UpstreamOAuthError(`${serverTitle}: the org's IdP gave no identity assertion for it (${oauthRefusal(error)})`);
    }
    if (exchanged.issued_token_type !== ID_JAG_TOKEN_TYPE) {
      throw new UpstreamOAuthError(`${serverTitle}: the org's IdP answered with something other than an identity assertion`);
    }
    return exchanged.access_token;
  }

  /** openid-client's requests to an upstream's authorization server follow the gateway's OAuth fetch rules (plain http only where those allow it). */
  private restrict(config: oauth.Configuration, fetchFn: ReturnType<typeof restrictedOAuthFetch>): void {
    config.timeout = REQUEST_TIMEOUT_SECONDS;
    config[oauth.customFetch] = (url, init) => fetchFn(url, init as RequestInit);
    oauth.allowInsecureRequests(config); // the fetch above refuses http except to this machine for a server on this machine
  }
}

/** Whether the ID token's `iat` is after `time` (ms); a token that cannot be read is not. */
function issuedAfter(idToken: string, time: number): boolean {
  if (time === -Infinity) return true;
  try {
    const { iat } = decodeJwt(idToken);
    return typeof iat === 'number' && iat * 1000 > time;
  } catch {
    return false;
  }
}
