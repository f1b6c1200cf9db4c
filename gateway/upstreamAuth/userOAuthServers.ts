/**
 * Gives every `user-oauth` server in the catalog its sign-in (UpstreamOAuth), and every
 * `enterprise-managed` one (local config only) its identity-assertion tokens
 * (EnterpriseAuthorization); keeps
 * the same one across policy versions while the server's URL and OAuth settings stay the
 * same, so a new policy version does not make anyone sign in again.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from '../../common/log/logger';
import type { UpstreamSignInStatus } from '../../common/control/controlProtocol';
import type { ServerConfig } from '../config/gatewayConfig';
import type { UpstreamAuthorization } from '../upstream/upstreamAuthorization';
import type { AuthorizationOpener } from './authorizationOpener';
import { credentialKey, type UpstreamCredentialStore } from './credentialStore';
import { EnterpriseAuthorization } from './enterpriseAuthorization';
import { UpstreamOAuth } from './upstreamOAuth';

export interface UserOAuthDeps {
  /** The signed-in user ('local' in unmanaged mode): credentials are kept per user. */
  user: () => string;
  store: UpstreamCredentialStore;
  opener: AuthorizationOpener;
  log: Logger;
}

/** One server's kept sign-in, whatever obtains its tokens (UpstreamOAuth, EnterpriseAuthorization). */
export interface UpstreamSignIn extends UpstreamAuthorization {
  status(): Promise<UpstreamSignInStatus>;
  forget(): Promise<void>;
  /** Forgets tokens obtained before `time` (ms); true when something was forgotten. */
  forgetIfObtainedBefore(time: number): Promise<boolean>;
}

export class UserOAuthServers {
  /**
   * Each server's sign-in, and the revocations already applied to it: a later sign-in is
   * never undone by the same revocation (clocks differ), but a sign-in made anew (other
   * settings) hears every revocation still listed.
   */
  private readonly signIns = new Map<string, { settings: string; oauth: UpstreamSignIn; applied: Set<string> }>();

  constructor(private readonly deps: UserOAuthDeps) {}

  /** `servers` with each user-oauth server's sign-in attached. */
  attach(servers: readonly ServerConfig[]): ServerConfig[] {
    return servers.map((server) => {
      const credential = server.credential;
      if (credential.mode === 'none' || server.transport.type !== 'streamable-http') return server;
      const settings = JSON.stringify([server.transport.url, credential, this.deps.user()]);
      let entry = this.signIns.get(server.id);
      if (!entry || entry.settings !== settings) {
        entry = {
          settings,
          applied: new Set(),
          oauth:
            credential.mode === 'enterprise-managed'
              ? new EnterpriseAuthorization({
                  serverId: server.id,
                  serverTitle: server.title ?? server.id,
                  serverUrl: new URL(server.transport.url),
                  authorizationServer: credential.authorizationServer,
                  clientId: credential.clientId,
                  ...clientSecret(credential),
                  idp: credential.idp,
                  log: this.deps.log,
                })
              : new UpstreamOAuth({
                  serverId: server.id,
                  serverTitle: server.title ?? server.id,
                  serverUrl: new URL(server.transport.url),
                  ...(credential.scopes ? { scopes: credential.scopes } : {}),
                  ...(credential.clientId ? { preRegistered: { clientId: credential.clientId, ...clientSecret(credential) } } : {}),
                  ...(credential.clientMetadataUrl ? { clientMetadataUrl: credential.clientMetadataUrl } : {}),
                  store: this.deps.store,
                  storeKey: credentialKey(this.deps.user(), server.id),
                  opener: this.deps.opener,
                  log: this.deps.log,
                }),
        };
        this.signIns.set(server.id, entry);
      }
      return { ...server, authorization: entry.oauth };
    });
  }

  /**
   * An admin revoked stored credentials (listed in the effective policy): tokens obtained
   * before the revocation are deleted, here and in the extension's SecretStorage. Resolves
   * with the servers whose credentials were deleted.
   */
  async applyRevocations(revocations: ReadonlyArray<{ serverId: string; revokedAt: string }>): Promise<string[]> {
    const deleted: string[] = [];
    for (const { serverId, revokedAt } of revocations) {
      const entry = this.signIns.get(serverId);
      if (!entry || entry.applied.has(revokedAt)) continue; // for a server not in this catalog (yet), or applied once
      entry.applied.add(revokedAt);
      if (await entry.oauth.forgetIfObtainedBefore(Date.parse(revokedAt))) deleted.push(serverId);
    }
    return deleted;
  }

  /** Sign-in facts of every user-oauth server (the Scopes view). */
  status(): Promise<UpstreamSignInStatus[]> {
    return Promise.all([...this.signIns.values()].map((entry) => entry.oauth.status()));
  }

  /** Forgets one server's (or every server's) upstream credentials: signing out, or revoked. */
  async forget(serverId?: string): Promise<void> {
    const entries = serverId ? [this.signIns.get(serverId)].filter((e) => e !== undefined) : [...this.signIns.values()];
    await Promise.all(entries.map((entry) => entry.oauth.forget()));
  }
}

/** A confidential pre-registered client's secret, from its file (local config only; never in a policy). */
function clientSecret(credential: { clientSecretFile?: string }): { clientSecret?: string } {
  if (!credential.clientSecretFile) return {};
  let secret: string;
  try {
    secret = readFileSync(credential.clientSecretFile, 'utf8').trim();
  } catch (error) {
    throw new Error(
      `cannot read the client secret file ${credential.clientSecretFile}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`,
      { cause: error },
    );
  }
  if (!secret) throw new Error(`the client secret file ${credential.clientSecretFile} is empty`);
  return { clientSecret: secret };
}
