/**
 * Who the developer is, for the gateway: the org's choice of identity provider (settings
 * `gatehouse.signIn.*`) behind one interface. `microsoft` and `github` are VS Code's own
 * providers (Entra tenant and client through VS Code's `VSCODE_TENANT:` and
 * `VSCODE_CLIENT_ID:` scopes); `oidc` is our `gatehouse-oidc` provider. Silent when the
 * window opens (a stored session or nothing); interactive only from the Sign In command;
 * the gateway asks for the token over the control channel each time it needs one.
 */
import * as vscode from 'vscode';
import { SETTINGS } from '../ids';
import { Disposable } from '../lifecycle';
import { OIDC_PROVIDER_ID, type OidcAuthProvider } from './oidcAuthProvider';
import type { OidcSettings } from './oidcSignIn';

export type SignInProvider = 'oidc' | 'microsoft' | 'github';

export class SignIn extends Disposable {
  private session: vscode.AuthenticationSession | undefined;
  private readonly changed = this._register(new vscode.EventEmitter<void>());
  /** Signed in or out (or the account changed). */
  readonly onDidChange = this.changed.event;

  constructor(private readonly oidc: OidcAuthProvider) {
    super();
    this._register(
      vscode.authentication.onDidChangeSessions(async (event) => {
        const provider = this.provider();
        if (provider && event.provider.id === providerIdOf(provider)) await this.restore();
      }),
    );
  }

  /** The configured provider; undefined when sign-in is not set up (the token-file setting, or unmanaged). */
  provider(): SignInProvider | undefined {
    const value = vscode.workspace.getConfiguration(SETTINGS.section).get<string>(SETTINGS.signInProvider)?.trim();
    return value === 'oidc' || value === 'microsoft' || value === 'github' ? value : undefined;
  }

  get account(): string | undefined {
    return this.session?.account.label;
  }

  /** The stored session, without any prompt. */
  async restore(): Promise<void> {
    const provider = this.provider();
    const before = this.session?.id;
    this.session = provider ? await this.sessionOf(provider).then(undefined, () => undefined) : undefined;
    if (this.session?.id !== before) this.changed.fire();
  }

  /** Signs out of `gatehouse-oidc` (VS Code's own accounts are signed out from its Accounts menu). */
  async signOut(): Promise<void> {
    if (this.provider() === 'oidc' && this.session) {
      await this.oidc.removeSession(this.session.id);
    } else if (this.session) {
      void vscode.window.showInformationMessage(`Gatehouse: sign out of ${this.provider()} from VS Code's Accounts menu.`);
      return;
    }
    this.session = undefined;
    this.changed.fire();
  }

  /** Deletes the stored sign-in without asking (access was revoked); VS Code's own accounts are the user's to remove. */
  async forget(): Promise<void> {
    if (this.provider() === 'oidc' && this.session) await this.oidc.removeSession(this.session.id);
    this.session = undefined;
    this.changed.fire();
  }

  /** Interactive sign-in (a user action). */
  async signIn(): Promise<void> {
    const provider = this.provider();
    if (!provider) {
      void vscode.window
        .showInformationMessage('Gatehouse: choose how your organization signs in (gatehouse.signIn.provider) first.', 'Open Settings')
        .then((choice) => {
          if (choice) void vscode.commands.executeCommand('workbench.action.openSettings', 'gatehouse.signIn');
        });
      return;
    }
    this.session =
      provider === 'oidc'
        ? await this.oidc.createSession(scopesOf(provider))
        : await vscode.authentication.getSession(provider, scopesOf(provider), { createIfNone: true });
    this.changed.fire();
  }

  /**
   * The access token for the policy server, renewed as needed; throws when nobody is signed
   * in. `refused`: the policy server refused the current one (401), so renew it now (ours;
   * VS Code's own providers renew on their schedule) or drop it and ask to sign in again.
   */
  async token(refused = false): Promise<string> {
    const provider = this.provider();
    if (!provider) throw new Error('sign-in is not configured');
    if (refused && provider === 'oidc') await this.oidc.renewNow();
    const session = await this.sessionOf(provider);
    if (!session) throw new Error('nobody is signed in to Gatehouse');
    this.session = session;
    return session.accessToken;
  }

  /**
   * The current session without a prompt. Our own provider is asked directly: VS Code's
   * broker would ask the user to let Gatehouse use Gatehouse's own sign-in.
   */
  private async sessionOf(provider: SignInProvider): Promise<vscode.AuthenticationSession | undefined> {
    if (provider === 'oidc') return (await this.oidc.getSessions(scopesOf(provider)))[0];
    return vscode.authentication.getSession(provider, scopesOf(provider), { silent: true });
  }
}

function providerIdOf(provider: SignInProvider): string {
  return provider === 'oidc' ? OIDC_PROVIDER_ID : provider;
}

function scopesOf(provider: SignInProvider): string[] {
  const settings = vscode.workspace.getConfiguration(SETTINGS.section);
  const scopes = settings.get<string[]>(SETTINGS.signInScopes) ?? [];
  if (provider !== 'microsoft') return scopes;
  const tenant = settings.get<string>(SETTINGS.signInMicrosoftTenant)?.trim();
  const clientId = settings.get<string>(SETTINGS.signInMicrosoftClientId)?.trim();
  return [...scopes, ...(tenant ? [`VSCODE_TENANT:${tenant}`] : []), ...(clientId ? [`VSCODE_CLIENT_ID:${clientId}`] : [])];
}

/** The `gatehouse-oidc` provider's settings; undefined until issuer and client are set. */
export function oidcSettings(): OidcSettings | undefined {
  const settings = vscode.workspace.getConfiguration(SETTINGS.section);
  const issuer = settings.get<string>(SETTINGS.signInOidcIssuer)?.trim();
  const clientId = settings.get<string>(SETTINGS.signInOidcClientId)?.trim();
  if (!issuer || !clientId) return undefined;
  const resource = settings.get<string>(SETTINGS.signInOidcResource)?.trim();
  return {
    issuer,
    clientId,
    scopes: ['openid', ...(settings.get<string[]>(SETTINGS.signInScopes) ?? [])],
    ...(resource ? { resource } : {}),
  };
}
