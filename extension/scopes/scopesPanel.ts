/**
 * The Scopes webview: for each approved server, how its credential is held (facts only, never
 * a credential), the scopes the policy grants, token expiry and last use (from the audit
 * trail). Re-sent whenever the gateway, the enabled set or the trail changes.
 */
import * as vscode from 'vscode';
import type { GatewayReadyServer } from '../../common/gatewayReady';
import { isScopesViewMessage, type ScopeRow, type ScopesHostMessage } from '../../webviews/scopes/scopesProtocol';
import type { AuditTrail } from '../audit/auditTrail';
import type { EnabledServers } from '../catalog/enabledServers';
import type { GatewaySupervisor } from '../gateway/gatewaySupervisor';
import { webviewHtml, webviewOptions } from '../webview/webviewHtml';

export const SCOPES_VIEW_TYPE = 'gatehouse.scopes';

/** Where each kind of credential lives, in the words the view shows. */
const HELD_BY: Record<ScopeRow['credential'], string> = {
  none: 'Nothing to hold: the server needs no credential.',
  'user-oauth': 'Per-user sign-in to this server is not available in this version; no token is stored.',
  'shared-key': 'The org\'s policy server holds the key; it never reaches this machine (the relay is not available in this version).',
};

export class ScopesPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private focus: string | undefined;
  private readonly subscriptions: vscode.Disposable[];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly gateway: GatewaySupervisor,
    private readonly enabled: EnabledServers,
    private readonly trail: AuditTrail,
  ) {
    const update = () => this.update();
    this.subscriptions = [gateway.onDidChange(update), enabled.onDidChange(update), trail.onDidAppend(update), trail.onDidReset(update)];
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
    return state.ready.servers.map((server) => scopeRow(server, this.enabled.has(server.id), lastUse.get(server.id)));
  }

  show(server?: string): void {
    this.focus = server;
    if (this.panel) {
      this.panel.reveal();
      this.update();
      return;
    }
    const panel = vscode.window.createWebviewPanel(SCOPES_VIEW_TYPE, 'Gatehouse Scopes', vscode.ViewColumn.Active, webviewOptions(this.extensionUri));
    this.panel = panel;
    panel.webview.html = webviewHtml(panel.webview, this.extensionUri, SCOPES_PAGE);
    panel.onDidDispose(() => { this.panel = undefined; });
    panel.webview.onDidReceiveMessage((message: unknown) => {
      if (isScopesViewMessage(message)) this.update();
    });
  }

  dispose(): void {
    for (const subscription of this.subscriptions) subscription.dispose();
    this.panel?.dispose();
  }

  private update(): void {
    if (!this.panel) return;
    const message: ScopesHostMessage = { type: 'show', rows: this.rows(), ...(this.focus ? { focus: this.focus } : {}) };
    void this.panel.webview.postMessage(message);
  }
}

function scopeRow(server: GatewayReadyServer, enabled: boolean, use: { time: string; calls: number } | undefined): ScopeRow {
  const credential = server.credential ?? { mode: 'none' as const };
  return {
    server: server.id,
    ...(server.title ? { title: server.title } : {}),
    enabled,
    credential: credential.mode,
    scopes: credential.mode === 'user-oauth' ? credential.scopes ?? [] : [],
    heldBy: HELD_BY[credential.mode],
    ...(use ? { lastUse: use.time } : {}),
    calls: use?.calls ?? 0,
  };
}

const SCOPES_PAGE = {
  title: 'Gatehouse Scopes',
  script: 'scopes.js',
  style: `
  body { padding: 0.5rem 1.5rem; }
  h1 { font-size: 1.3em; font-weight: 600; }
  vscode-table { margin-top: 0.5rem; }
  vscode-table-row.focus { outline: 1px solid var(--vscode-focusBorder); }`,
  body: `
<h1><vscode-icon name="key"></vscode-icon> Credentials and scopes</h1>
<p class="muted">What Gatehouse holds for each approved server. Credentials themselves are never shown, here or to VS Code and its models.</p>
<vscode-table zebra bordered-rows resizable columns='["22%", "14%", "14%", "26%", "12%", "12%"]'>
  <vscode-table-header slot="header">
    <vscode-table-header-cell>Server</vscode-table-header-cell>
    <vscode-table-header-cell>Credential</vscode-table-header-cell>
    <vscode-table-header-cell>Scopes</vscode-table-header-cell>
    <vscode-table-header-cell>Held by</vscode-table-header-cell>
    <vscode-table-header-cell>Token expires</vscode-table-header-cell>
    <vscode-table-header-cell>Last use</vscode-table-header-cell>
  </vscode-table-header>
  <vscode-table-body slot="body" id="rows"></vscode-table-body>
</vscode-table>
<p id="empty" class="muted" hidden>No approved servers: the gateway is not running or the policy approves none for you.</p>`,
};
