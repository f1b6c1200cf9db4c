/**
 * Per-user upstream tokens for `relay-oauth` servers, held here and never on a laptop. The
 * relay asks for the caller's token; when none is kept (or it has expired, or an admin
 * revoked it) this exchanges a subject token for the caller (subjectTokens.ts) at the
 * server's authorization server, the one the policy pins, as a confidential client (RFC
 * 8693; openid-client makes the request), and keeps the answer encrypted with the secret
 * store's key, bound to (server, user), in the data dir or PostgreSQL (upstreamTokenRows.ts).
 *
 * An admin's revocation deletes the user's rows at once; a token written just after by a
 * racing exchange is still refused, because it is older than the revocation. One exchange
 * per (server, user) runs at a time in a process; replicas may each make one.
 */
import { createHash } from 'node:crypto';
import * as oauth from 'openid-client';
import { describeError, type Logger } from '../../common/log/logger';
import { isSecureOrLoopback } from '../../common/net/loopback';
import { oauthRefusal } from '../../common/oauth/oauthRefusal';
import { ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT } from '../../common/oauth/identityAssertion';
import type { CallerIdentity } from '../../common/policy/identity';
import type { RelayOAuthCredential } from '../../common/policy/policyDocument';
import { ApiError } from '../http/apiErrors';
import type { SecretStore } from '../secrets/secretStore';
import type { SubjectTokens } from './subjectTokens';
import type { UpstreamTokenRows } from './upstreamTokenRows';

const REQUEST_TIMEOUT_SECONDS = 10;
/** When the authorization server does not say how long a token lasts. */
const DEFAULT_LIFETIME_SECONDS = 300;
/** A token this close to its expiry is exchanged anew rather than sent. */
const EXPIRY_MARGIN_MS = 30_000;

/** A relay-oauth server as the relay knows it. */
export interface RelayOAuthServer {
  id: string;
  url: string;
  credential: RelayOAuthCredential;
}

interface KeptToken {
  accessToken: string;
  expiresAt: number;
  obtainedAt: number;
}

export interface UpstreamTokensDeps {
  rows: UpstreamTokenRows;
  /** Seals the kept tokens, and holds each server's client secret (`clientSecretRef`). */
  secrets: Pick<SecretStore, 'seal' | 'unseal' | 'get'>;
  subjects: SubjectTokens;
  /** When an admin last revoked this user's credential for this server (ms), if ever. */
  revokedAt: (sub: string, serverId: string) => Promise<number | undefined>;
  log: Logger;
}

export class UpstreamTokens {
  private readonly exchanging = new Map<string, Promise<string>>();
  private readonly metadata = new Map<string, Promise<oauth.ServerMetadata>>();

  constructor(private readonly deps: UpstreamTokensDeps) {}

  /** The caller's token for `server`: the kept one while it lasts, else a new one from the exchange. */
  async tokenFor(caller: CallerIdentity, server: RelayOAuthServer): Promise<string> {
    const kept = await this.kept(server.id, caller.sub);
    if (kept && kept.expiresAt - EXPIRY_MARGIN_MS > Date.now()) return kept.accessToken;
    const key = `${server.id}\n${caller.sub}`;
    let exchange = this.exchanging.get(key);
    if (!exchange) {
      exchange = this.exchange(caller, server).finally(() => this.exchanging.delete(key));
      this.exchanging.set(key, exchange);
    }
    return exchange;
  }

  /** The upstream refused `token`: it is forgotten (if still the kept one), so the next call exchanges anew. */
  async refused(serverId: string, sub: string, token: string): Promise<void> {
    const kept = await this.kept(serverId, sub);
    if (kept?.accessToken === token) await this.deps.rows.delete(sub, serverId);
  }

  /** Deletes the user's kept tokens: for one server, or all (an admin's revocation). */
  forget(sub: string, serverId?: string): Promise<void> {
    return this.deps.rows.delete(sub, serverId);
  }

  private async kept(serverId: string, sub: string): Promise<KeptToken | undefined> {
    const jwe = await this.deps.rows.read(serverId, sub);
    if (jwe === undefined) return undefined;
    const kept = JSON.parse(await this.deps.secrets.unseal(labelOf(serverId, sub), jwe)) as KeptToken;
    const revokedAt = await this.deps.revokedAt(sub, serverId);
    if (revokedAt !== undefined && kept.obtainedAt <= revokedAt) {
      await this.deps.rows.delete(sub, serverId);
      return undefined;
    }
    return kept;
  }

  private async exchange(caller: CallerIdentity, server: RelayOAuthServer): Promise<string> {
    const { credential } = server;
    const secret = await this.deps.secrets.get(credential.clientSecretRef);
    if (!secret) {
      throw new ApiError(
        503,
        'no_client_secret',
        `The client secret for "${server.id}" is not set; an admin sets it with: gatehouse secret set ${credential.clientSecretRef}`,
      );
    }
    const metadata = await this.serverMetadata(server);
    const config = new oauth.Configuration(metadata, credential.clientId, undefined, oauth.ClientSecretBasic(secret));
    config.timeout = REQUEST_TIMEOUT_SECONDS;
    if (new URL(metadata.token_endpoint!).protocol === 'http:') oauth.allowInsecureRequests(config); // loopback only (checked)
    const obtainedAt = Date.now();
    let tokens: oauth.TokenEndpointResponse;
    try {
      tokens = await oauth.genericGrantRequest(config, TOKEN_EXCHANGE_GRANT, {
        subject_token: await this.deps.subjects.mint(caller, metadata.issuer),
        subject_token_type: JWT_TOKEN_TYPE,
        requested_token_type: ACCESS_TOKEN_TYPE,
        resource: server.url,
        ...(credential.scopes ? { scope: credential.scopes.join(' ') } : {}),
      });
    } catch (error) {
      const reason = oauthRefusal(error).replaceAll(secret, '[REDACTED]');
      this.deps.log.warn('token exchange refused', { server: server.id, sub: caller.sub, reason });
      throw new ApiError(502, 'token_exchange_refused', `The authorization server of "${server.id}" gave no token for you (${reason}).`);
    }
    if ((tokens.issued_token_type ?? ACCESS_TOKEN_TYPE) !== ACCESS_TOKEN_TYPE || tokens.token_type.toLowerCase() !== 'bearer') {
      throw new ApiError(
        502,
        'token_exchange_refused',
        `The authorization server of "${server.id}" answered with something other than a bearer access token.`,
      );
    }
    const kept: KeptToken = {
      accessToken: tokens.access_token,
      expiresAt: obtainedAt + (tokens.expires_in ?? DEFAULT_LIFETIME_SECONDS) * 1000,
      obtainedAt,
    };
    await this.deps.rows.write(server.id, caller.sub, await this.deps.secrets.seal(labelOf(server.id, caller.sub), JSON.stringify(kept)));
    this.deps.log.info('upstream token obtained by token exchange', { server: server.id, sub: caller.sub, issuer: metadata.issuer });
    return kept.accessToken;
  }

  /** The pinned authorization server's metadata (RFC 8414, else OpenID discovery), its issuer checked by openid-client; kept once read. */
  private serverMetadata(server: RelayOAuthServer): Promise<oauth.ServerMetadata> {
    const issuer = server.credential.authorizationServer;
    let metadata = this.metadata.get(issuer);
    if (!metadata) {
      metadata = discover(new URL(issuer)).catch((error: unknown) => {
        this.metadata.delete(issuer); // tried again on the next call
        throw new ApiError(
          502,
          'authorization_server_unreachable',
          `The authorization server of "${server.id}" cannot be used: ${describeError(error)}`,
        );
      });
      this.metadata.set(issuer, metadata);
    }
    return metadata;
  }
}

async function discover(issuer: URL): Promise<oauth.ServerMetadata> {
  const options = { execute: issuer.protocol === 'http:' ? [oauth.allowInsecureRequests] : [], timeout: REQUEST_TIMEOUT_SECONDS };
  let config: oauth.Configuration;
  try {
    config = await oauth.discovery(issuer, 'metadata-only', undefined, undefined, { ...options, algorithm: 'oauth2' });
  } catch {
    config = await oauth.discovery(issuer, 'metadata-only', undefined, undefined, { ...options, algorithm: 'oidc' });
  }
  const metadata = config.serverMetadata();
  // The subject token and the client secret go only over https, or to this machine.
  if (!metadata.token_endpoint || !isSecureOrLoopback(new URL(metadata.token_endpoint))) throw new Error('its token endpoint is not https');
  if (!metadata.grant_types_supported?.includes(TOKEN_EXCHANGE_GRANT) && metadata.grant_types_supported !== undefined)
    throw new Error('it does not offer token exchange (RFC 8693)');
  return metadata;
}

/** What a kept token's ciphertext is bound to: another row's text does not decrypt as this one. */
function labelOf(serverId: string, sub: string): string {
  return `relay-oauth:${serverId}:${createHash('sha256').update(sub).digest('base64url')}`;
}
