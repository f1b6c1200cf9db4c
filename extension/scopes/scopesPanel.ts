/**
 * The Scopes webview: for each approved server, how its credential is held (facts only, never
 * a credential), the scopes the policy grants (or, once signed in, the server granted), token
 * expiry, last use (from the audit trail), and Sign Out for servers the developer signed in
 * to. Re-sent whenever the gateway, the enabled set or the trail changes.
 */
import * as vscode from 'vscode';
import type { GatewayReadyServer } from '../../common/gatewayReady';
import { isScopesViewMessage, type ScopeRow, type ScopesHostMessage } from '../../webviews/scopes/scopesProtocol';
import type { UpstreamSignInStatus } from '../../common/control/controlProtocol';
import type { AuditTrail } from '../audit/auditTrail';
import type { EnabledServers } from '../catalog/enabledServers';
import type { GatewaySupervisor } from '../gateway/gatewaySupervisor';
import { Disposable } from '../lifecycle';
import { webviewHtml, webviewOptions } from '../webviewHost/webviewHtml';
import { describeError } from '../../common/log/logger';

export const SCOPES_VIEW_TYPE = 'gatehouse.scopes';

/** Where each kind of credential lives, in the words the view shows. */
const HELD_BY: Record<ScopeRow['credential'], string> = {
  none: 'Nothing to hold: the server needs no credential.',
  'user-oauth': 'Not signed in: using the server asks you to sign in at its authorization server.',
  'shared-key': "The org's policy server holds the key and adds it in its relay; it never reaches this machine.",
  'relay-oauth': "The org's policy server holds your token for this server and adds it in its relay; it never reaches this machine.",
};

export class ScopesPanel extends Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private focus: string | undefined;
  private signIns = new Map<string, UpstreamSignInStatus>();

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly gateway: GatewaySupervisor,
    private readonly enabled: EnabledServers,
    private readonly trail: AuditTrail,
  ) {
    super();
    const update = () => this.update();
    this._register(gateway.onDidChange(update));
    this._register(enabled.onDidChange(update));
    this._register(trail.onDidAppend(update));
    this._register(trail.onDidReset(update));
  }

  /** The rows the view shows (also what the tests read). */
  rows(): ScopeRow[] {
    const state = this.gateway.state;
    if (state.kind !== 'ready') return [];
    const lastUse = new Map<string, { time: string; calls: number }>();
    for (const event of this.trail.events) {
      const seen = lastUse.get(event.server);
      lastUse.set(event.server, { time: event.time, calls: (seen?.calls ?? 0) + 1 });
    }
    return state.ready.servers.map((server) =>
      scopeRow(server, this.enabled.has(server.id), lastUse.get(server.id), this.signIns.get(server.id)),
    );
  }

  show(server?: string): void {
    this.focus = server;
    if (this.panel) {
      this.panel.reveal();
      this.update();
      return;
    }
    const panel = vscode.window.createWebviewPanel(
      SCOPES_VIEW_TYPE,
      'Gatehouse Scopes',
      vscode.ViewColumn.Active,
      webviewOptions(this.extensionUri),
    );
    this.panel = panel;
    panel.webview.html = webviewHtml(panel.webview, this.extensionUri, SCOPES_PAGE);
    panel.onDidDispose(() => {
      this.panel = undefined;
    });
    panel.webview.onDidReceiveMessage((message: unknown) => {
      if (!isScopesViewMessage(message)) return;
      if (message.type === 'signOut') void this.signOut(message.server);
      else this.update();
    });
  }

  override dispose(): void {
    super.dispose();
    this.panel?.dispose();
  }

  /** Refreshes the sign-in facts from the gateway; the view and `rows()` use them. */
  async refreshSignIns(): Promise<void> {
    const statuses = await this.gateway.signInStatus().catch(() => []);
    this.signIns = new Map(statuses.map((status) => [status.server, status]));
  }

  private async signOut(server: string): Promise<void> {
    try {
      await this.gateway.signOutServer(server);
      void vscode.window.showInformationMessage(`Signed out of ${server}. Its tokens were deleted; using it again asks you to sign in.`);
    } catch (error) {
      void vscode.window.showErrorMessage(`Could not sign out of ${server}: ${describeError(error)}`);
    }
    this.update();
  }

  private update(): void {
    if (!this.panel) return;
    void this.refreshSignIns().then(() => this.post());
  }

  private post(): void {
    if (!this.panel) return;
    const message: ScopesHostMessage = { type: 'show', rows: this.rows(), ...(this.focus ? { focus: this.focus } : {}) };
    void this.panel.webview.postMessage(message);
  }
}

function scopeRow(
  server: GatewayReadyServer,
  enabled: boolean,
  use: { time: string; calls: number } | undefined,
  signIn: UpstreamSignInStatus | undefined,
): ScopeRow {
  const credential = server.credential ?? { mode: 'none' as const };
  const signedIn = credential.mode === 'user-oauth' && signIn?.signedIn === true;
  return {
    server: server.id,
    ...(server.title ? { title: server.title } : {}),
    enabled,
    credential: credential.mode,
    scopes: signedIn && signIn.scopes ? signIn.scopes : credential.mode === 'user-oauth' ? (credential.scopes ?? []) : [],
    heldBy: signedIn
      ? `Your sign-in at ${hostOf(signIn.issuer)}, kept in VS Code's SecretStorage; the gateway sends it to this server only.`
      : HELD_BY[credential.mode],
    ...(credential.mode === 'user-oauth' ? { signedIn } : {}),
    ...(signedIn && signIn.expiresAt ? { tokenExpires: signIn.expiresAt } : {}),
    ...(use ? { lastUse: use.time } : {}),
    calls: use?.calls ?? 0,
  };
}

function hostOf(issuer: string | undefined): string {
  try {
    return issuer ? new URL(issuer).host : 'its authorization server';
  } catch {
    return 'its authorization server';
  }
}

const SCOPES_PAGE = {
  title: 'Gatehouse Scopes',
  script: 'scopes.js',
  style: `
  body { padding: 0.5rem 1.5rem; }
  h1 { font-size: 1.3em; font-weight: 600; display: flex; gap: 0.4em; align-items: center; }
  table { border-collapse: collapse; width: 100%; margin-top: 0.5rem; }
  th, td { text-align: left; vertical-align: top; padding: 0.45em 0.6em; border-bottom: 1px solid var(--vscode-panel-border); }
  th { font-weight: 600; color: var(--vscode-descriptionForeground); }
  tr.focus td { background: var(--vscode-list-inactiveSelectionBackground); }
  td.scopes { font-family: var(--vscode-editor-font-family); }
  vscode-badge { margin-left: 0.4em; }`,
  body: `
<h1><vscode-icon name="key"></vscode-icon> Credentials and scopes</h1>
<p class="muted">What Gatehouse holds for each approved server. Credentials themselves are never shown, here or to VS Code and its models.</p>
<table aria-label="Credentials per server">
  <thead><tr><th>Server</th><th>Credential</th><th>Scopes</th><th>Held by</th><th>Token expires</th><th>Last use</th><th></th></tr></thead>
  <tbody id="rows"></tbody>
</table>
<p id="empty" class="muted" hidden>No approved servers: the gateway is not running or the policy approves none for you.</p>`,
};
