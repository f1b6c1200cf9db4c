/**
 * Where the user's upstream OAuth credentials live. With the extension they are kept in
 * VS Code's SecretStorage (asked over the control channel, gateway/control/); without it
 * (headless test mode) only in this process's memory. Never on disk in the clear, never
 * logged. One record per (user, server); every value in it is stamped with the issuer
 * that issued it, so tokens are effectively kept per (user, server, issuer) and one is
 * never presented to another authorization server.
 */
import type { OAuthClientInformationMixed, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import type { JWK } from 'jose';
import { CREDENTIAL_KEY_PREFIX } from '../../common/control/controlProtocol';

export interface StoredUpstreamCredentials {
  /** A client registered for us (DCR) or the CIMD client id, stamped with its issuer. */
  client?: OAuthClientInformationMixed & { issuer?: string };
  /**
   * The last tokens, stamped with their issuer and the server URL they were obtained for
   * (`resourceUrl`: never sent to another URL, should the catalog entry change);
   * `obtainedAt` (ms) is the last refresh, `signedInAt` the authorization they came from
   * (kept across refreshes, so a revocation of that sign-in is not dodged by a refresh).
   */
  tokens?: OAuthTokens & { issuer?: string; obtainedAt?: number; signedInAt?: number; resourceUrl?: string };
  /** The private key DPoP-bound tokens are bound to (gateway/upstreamAuth/dpopProver.ts): kept and deleted with them. */
  dpopKey?: JWK;
}

/** Whether the kept tokens are DPoP-bound (RFC 9449 §5: the token endpoint says `token_type: DPoP`). */
export function isDpopBound(tokens: OAuthTokens): boolean {
  return tokens.token_type.toLowerCase() === 'dpop';
}

/** The kept tokens if they were obtained for `serverUrl` (the one place that rule lives). */
export function tokensFor(record: StoredUpstreamCredentials, serverUrl: string): StoredUpstreamCredentials['tokens'] {
  return record.tokens?.resourceUrl === serverUrl ? record.tokens : undefined;
}

export interface UpstreamCredentialStore {
  get(key: string): Promise<StoredUpstreamCredentials | undefined>;
  set(key: string, value: StoredUpstreamCredentials): Promise<void>;
  delete(key: string): Promise<void>;
}

/** The key of one user's credentials for one server. */
export function credentialKey(user: string, serverId: string): string {
  return `${CREDENTIAL_KEY_PREFIX}${encodeURIComponent(user)}/${serverId}`;
}

export class MemoryCredentialStore implements UpstreamCredentialStore {
  private readonly values = new Map<string, StoredUpstreamCredentials>();

  async get(key: string): Promise<StoredUpstreamCredentials | undefined> {
    const value = this.values.get(key);
    return value ? structuredClone(value) : undefined;
  }

  async set(key: string, value: StoredUpstreamCredentials): Promise<void> {
    this.values.set(key, structuredClone(value));
  }

  async delete(key: string): Promise<void> {
    this.values.delete(key);
  }
}
