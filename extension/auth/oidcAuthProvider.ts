/**
 * VS Code authentication provider `gatehouse-oidc` for an org whose IdP is a generic OpenID
 * Provider (Okta, Keycloak, Entra as plain OIDC...): the sign-in flow is oidcSignIn.ts; this
 * keeps sessions in SecretStorage (never in settings, state or logs), renews an expired
 * access token with its refresh token when a session is asked for, and drops a session the
 * provider no longer renews (the user signs in again, told so in words).
 */
import { randomUUID } from 'node:crypto';
import * as vscode from 'vscode';
import { SECRET_KEYS } from '../ids';
import { Disposable } from '../lifecycle';
import { refreshTokens, signInWithBrowser, SignInError, type OidcSettings, type OidcTokens } from './oidcSignIn';
import { describeError } from '../../common/log/logger';

export const OIDC_PROVIDER_ID = 'gatehouse-oidc';
/** Renew this long before the access token expires. */
const RENEW_EARLY_SECONDS = 60;

interface StoredSession extends OidcTokens {
  id: string;
  scopes: string[];
}

export class OidcAuthProvider extends Disposable implements vscode.AuthenticationProvider {
  private readonly changed = this._register(new vscode.EventEmitter<vscode.AuthenticationProviderAuthenticationSessionsChangeEvent>());
  readonly onDidChangeSessions = this.changed.event;
  /** One renewal at a time: concurrent asks share it. */
  private renewing: Promise<StoredSession | undefined> | undefined;

  constructor(
    private readonly secrets: vscode.SecretStorage,
    private readonly settings: () => OidcSettings | undefined,
    private readonly log: vscode.LogOutputChannel,
  ) {
    super();
  }

  async getSessions(scopes: readonly string[] | undefined): Promise<vscode.AuthenticationSession[]> {
    let stored = await this.read();
    if (stored && scopes && !scopes.every((scope) => stored!.scopes.includes(scope))) return [];
    if (stored?.expiresAt !== undefined && stored.expiresAt - RENEW_EARLY_SECONDS < Date.now() / 1000) stored = await this.renew(stored);
    return stored ? [toSession(stored)] : [];
  }

  async createSession(scopes: readonly string[]): Promise<vscode.AuthenticationSession> {
    const settings = this.settings();
    if (!settings)
      throw new Error('Set gatehouse.signIn.oidc.issuer and gatehouse.signIn.oidc.clientId to sign in with your organization.');
    const wanted = { ...settings, scopes: [...new Set([...settings.scopes, ...scopes])] };
    const tokens = await vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: 'Gatehouse: signing in with your organization in the browser…',
        cancellable: true,
      },
      (_progress, token) => {
        const aborter = new AbortController();
        token.onCancellationRequested(() => aborter.abort());
        return signInWithBrowser(
          wanted,
          async (url) => {
            // Checked by signInWithBrowser (https or loopback, the provider's endpoint); only ever opened, never run.
            if (!(await vscode.env.openExternal(vscode.Uri.parse(url.href, true)))) throw new SignInError('The browser was not opened.');
          },
          { signal: aborter.signal },
        );
      },
    );
    const previous = await this.read();
    const session: StoredSession = { ...tokens, id: randomUUID(), scopes: wanted.scopes };
    await this.write(session);
    this.changed.fire({ added: [toSession(session)], removed: previous ? [toSession(previous)] : [], changed: [] });
    this.log.info(`signed in as ${accountLabel(session)}`);
    return toSession(session);
  }

  async removeSession(sessionId: string): Promise<void> {
    const stored = await this.read();
    if (!stored || stored.id !== sessionId) return;
    await this.secrets.delete(SECRET_KEYS.oidcSession);
    this.changed.fire({ added: [], removed: [toSession(stored)], changed: [] });
    this.log.info('signed out');
  }

  /** Renews the stored session now (its access token was refused), or drops it when the provider will not. */
  async renewNow(): Promise<void> {
    const stored = await this.read();
    if (stored) await this.renew(stored);
  }

  private renew(stored: StoredSession): Promise<StoredSession | undefined> {
    this.renewing ??= (async () => {
      const settings = this.settings();
      try {
        if (!settings || !stored.refreshToken) throw new SignInError('Your sign-in expired; sign in again.');
        const tokens = await refreshTokens(settings, {
          issuer: stored.issuer,
          idTokenClaims: stored.idTokenClaims,
          refreshToken: stored.refreshToken,
        });
        const renewed: StoredSession = { ...stored, ...tokens };
        await this.write(renewed);
        this.changed.fire({ added: [], removed: [], changed: [toSession(renewed)] });
        return renewed;
      } catch (error) {
        this.log.warn(`${describeError(error)}`);
        await this.secrets.delete(SECRET_KEYS.oidcSession);
        this.changed.fire({ added: [], removed: [toSession(stored)], changed: [] });
        void vscode.window.showWarningMessage(`Gatehouse: ${describeError(error)}`, 'Sign In').then((choice) => {
          if (choice) void vscode.commands.executeCommand('gatehouse.signIn');
        });
        return undefined;
      } finally {
        this.renewing = undefined;
      }
    })();
    return this.renewing;
  }

  private async read(): Promise<StoredSession | undefined> {
    const text = await this.secrets.get(SECRET_KEYS.oidcSession);
    if (!text) return undefined;
    try {
      const parsed = JSON.parse(text) as StoredSession;
      return typeof parsed.accessToken === 'string' && typeof parsed.id === 'string' ? parsed : undefined;
    } catch {
      return undefined;
    }
  }

  private async write(session: StoredSession): Promise<void> {
    await this.secrets.store(SECRET_KEYS.oidcSession, JSON.stringify(session));
  }
}

function accountLabel(session: StoredSession): string {
  return session.idTokenClaims.email ?? session.idTokenClaims.preferred_username ?? session.idTokenClaims.name ?? session.idTokenClaims.sub;
}

function toSession(stored: StoredSession): vscode.AuthenticationSession {
  return {
    id: stored.id,
    accessToken: stored.accessToken,
    account: { id: stored.idTokenClaims.sub, label: accountLabel(stored) },
    scopes: stored.scopes,
  };
}
