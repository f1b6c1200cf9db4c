/**
 * Extension entry point and its one composition root: settings -> sign-in (the user's IdP
 * token, kept in SecretStorage) -> gateway supervisor (the gateway child process and its
 * control channel) -> the developer's enabled servers
 * -> MCP server definition provider, sidebar catalog, status bar, Confirm prompts, the
 * audit trail with its Audit view, and the Scopes view. Everything is registered on
 * `context.subscriptions`. Activation does no network I/O: the stored sign-in is read,
 * then the gateway is spawned and reports back asynchronously.
 */
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { GatehouseApi } from './api';
import { AuditPanel } from './audit/auditPanel';
import { AuditTrail } from './audit/auditTrail';
import { OIDC_PROVIDER_ID, OidcAuthProvider } from './auth/oidcAuthProvider';
import { oidcSettings, SignIn } from './auth/signIn';
import { callToolFromSidebar } from './catalog/callTool';
import { EnabledServers } from './catalog/enabledServers';
import { confirmWithPanel } from './confirm/confirmPanel';
import { GatewaySupervisor, type GatewayLaunch, type GatewayState } from './gateway/gatewaySupervisor';
import { StateSlot } from './gateway/stateSlot';
import { COMMANDS, CONTEXT_KEYS, MCP_PROVIDER_ID, mcpDefinitionId, SETTINGS, VIEWS } from './ids';
import { GatehouseMcpProvider } from './mcp/gatehouseMcpProvider';
import { ScopesPanel } from './scopes/scopesPanel';
import { CatalogView, type CatalogNode } from './views/catalogView';
import { PendingReviewsView, type ReviewServer } from './reviews/pendingReviews';
import type { ReviewRecord } from '../common/policy/policyServerApi';
import type { AuditFilter } from '../webviews/audit/auditFilter';
import type { AuditExportFormat } from '../common/audit/auditExportFormat';
import { UpstreamSignIn } from './auth/upstreamSignIn';
import { describeError } from '../common/log/logger';
import { serverUsable } from '../common/gatewayReady';

export function activate(context: vscode.ExtensionContext): GatehouseApi {
  const activationStarted = performance.now();
  const log = vscode.window.createOutputChannel('Gatehouse', { log: true });
  const slot = StateSlot.acquire(context.globalStorageUri.fsPath);
  context.subscriptions.push(log, slot);

  const oidc = new OidcAuthProvider(context.secrets, oidcSettings, log);
  const signIn = new SignIn(oidc);
  const gateway = new GatewaySupervisor(
    join(context.extensionUri.fsPath, 'dist', 'gatehouse.js'),
    () => gatewayLaunch(slot.dir, signIn),
    (call, cancelled) => confirmWithPanel(context.extensionUri, call, cancelled),
    log,
    (refused) => signIn.token(refused),
    new UpstreamSignIn(context.secrets, log),
  );
  const enabled = new EnabledServers(context.globalState);
  const provider = new GatehouseMcpProvider(gateway, enabled);
  const catalog = new CatalogView(gateway, enabled);
  const trail = new AuditTrail(gateway, log);
  const audit = new AuditPanel(context.extensionUri, trail, log);
  const scopes = new ScopesPanel(context.extensionUri, gateway, enabled, trail);
  /** The server a sidebar command was invoked on (a server or tool item), if any. */
  const serverOf = (node?: CatalogNode) => (node?.kind === 'server' ? node.server.id : node?.kind === 'tool' ? node.serverId : undefined);
  const reviews = new PendingReviewsView(() => reviewServer(signIn), log);
  const status = vscode.window.createStatusBarItem('gatehouse.status', vscode.StatusBarAlignment.Left, 10);
  status.name = 'Gatehouse';
  status.command = COMMANDS.showLog;
  const showStatus = (state: GatewayState) => {
    void vscode.commands.executeCommand('setContext', CONTEXT_KEYS.gatewayState, state.kind);
    status.text = statusText(state, signIn.account);
    status.tooltip =
      state.kind === 'failed' || state.kind === 'not-configured' || state.kind === 'signed-out'
        ? state.reason
        : `Gatehouse gateway${signIn.account ? `, signed in as ${signIn.account}` : ''}`;
    status.show();
  };
  context.subscriptions.push(
    oidc,
    signIn,
    gateway,
    enabled,
    provider,
    catalog,
    trail,
    audit,
    scopes,
    reviews,
    status,
    vscode.authentication.registerAuthenticationProvider(OIDC_PROVIDER_ID, 'Gatehouse (your organization)', oidc),
    vscode.commands.registerCommand(COMMANDS.signIn, () =>
      signIn.signIn().catch((error: unknown) => {
        log.warn(`sign-in failed: ${describeError(error)}`);
        void vscode.window.showErrorMessage(`Gatehouse: sign-in failed: ${describeError(error)}`);
      }),
    ),
    vscode.commands.registerCommand(COMMANDS.signOut, () => signIn.signOut()),
    // Revoked by an admin: the tokens this machine holds for the user go, at once.
    gateway.onDidRevoke((message) => {
      log.warn(`access revoked: ${message}`);
      void signIn.forget().then(() => vscode.window.showWarningMessage(`Gatehouse: ${message}`));
    }),
    vscode.lm.registerMcpServerDefinitionProvider(MCP_PROVIDER_ID, provider),
    vscode.window.registerTreeDataProvider(VIEWS.catalog, catalog),
    gateway.onDidChange(showStatus),
    vscode.commands.registerCommand(COMMANDS.restartGateway, () => gateway.restart()),
    vscode.commands.registerCommand(COMMANDS.showLog, () => log.show()),
    vscode.commands.registerCommand(COMMANDS.refresh, () => catalog.refresh()),
    vscode.commands.registerCommand(COMMANDS.enableServer, (node?: CatalogNode) => setEnabled(enabled, gateway, serverOf(node), true)),
    vscode.commands.registerCommand(COMMANDS.disableServer, (node?: CatalogNode) => setEnabled(enabled, gateway, serverOf(node), false)),
    vscode.commands.registerCommand(COMMANDS.showAudit, (node?: CatalogNode) => audit.show(serverOf(node))),
    vscode.commands.registerCommand(COMMANDS.showScopes, (node?: CatalogNode) => scopes.show(serverOf(node))),
    vscode.commands.registerCommand(COMMANDS.exportAudit, (format: AuditExportFormat, target: vscode.Uri, filter?: AuditFilter) =>
      audit.export(target, format, filter),
    ),
    vscode.commands.registerCommand(COMMANDS.callTool, (node?: CatalogNode) =>
      callToolFromSidebar(node?.kind === 'tool' ? node : undefined, log),
    ),
    vscode.window.registerTreeDataProvider(VIEWS.reviews, reviews),
    vscode.commands.registerCommand(COMMANDS.refreshReviews, () => reviews.refresh()),
    vscode.commands.registerCommand(COMMANDS.approveReview, (review?: ReviewRecord) => reviews.decide(review, 'approve')),
    vscode.commands.registerCommand(COMMANDS.denyReview, (review?: ReviewRecord) => reviews.decide(review, 'deny')),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (!event.affectsConfiguration(SETTINGS.section)) return;
      gateway.restart();
      void reviews.refresh();
    }),
  );
  showStatus(gateway.state);
  context.subscriptions.push(
    gateway.onDidChange((state) => {
      if (state.kind === 'starting') showStartProgress(gateway);
    }),
  );
  // A stored sign-in is looked up (SecretStorage, no network, no prompt) before the gateway
  // starts; signing in or out later restarts it as that user (or stops it).
  void signIn.restore().finally(() => {
    context.subscriptions.push(
      signIn.onDidChange(() => {
        gateway.restart();
        void reviews.refresh();
      }),
    );
    gateway.restart();
  });
  const activationMs = performance.now() - activationStarted;
  log.info(`activated in ${activationMs.toFixed(1)} ms`);
  return {
    activationMs,
    pendingReviews: () => reviews.pending,
    toolsOf: (serverId) => gateway.toolsOf(serverId),
    isEnabled: (serverId) => enabled.has(serverId),
    account: () => signIn.account,
    signIn: () => signIn.signIn(),
    auditEvents: () => trail.events,
    auditView: () => audit.report,
    scopes: () => scopes.rows(),
    refreshScopes: () => scopes.refreshSignIns(),
    stateDir: slot.dir,
    gatewayReady: () =>
      new Promise((resolve) => {
        if (gateway.state.kind === 'ready') return resolve(gateway.state.ready);
        const subscription = gateway.onDidChange((state) => {
          if (state.kind !== 'ready') return;
          subscription.dispose();
          resolve(state.ready);
        });
      }),
  };
}

/** A progress notification while the gateway starts (in managed mode it fetches the user's policy then). */
function showStartProgress(gateway: GatewaySupervisor): void {
  const title = vscode.workspace.getConfiguration(SETTINGS.section).get<string>(SETTINGS.policyServerUrl)?.trim()
    ? 'Gatehouse: fetching your policy and starting approved servers…'
    : 'Gatehouse: starting the gateway…';
  void vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title },
    () =>
      new Promise<void>((resolve) => {
        const subscription = gateway.onDidChange((state) => {
          if (state.kind === 'starting') return;
          subscription.dispose();
          resolve();
        });
      }),
  );
}

/** Enables or disables a server, asking which when the command came from the palette. */
async function setEnabled(enabled: EnabledServers, gateway: GatewaySupervisor, serverId: string | undefined, on: boolean): Promise<void> {
  const choices =
    gateway.state.kind === 'ready' ? gateway.state.ready.servers.map((server) => server.id).filter((id) => enabled.has(id) !== on) : [];
  const id = serverId ?? (await vscode.window.showQuickPick(choices, { title: `${on ? 'Enable' : 'Disable'} a Gatehouse server` }));
  if (!id) return;
  await enabled.set(id, on);
  if (on) void startServer(gateway, id);
}

/**
 * Starts a just-enabled server in VS Code's MCP client, so its tools list (and show in the
 * sidebar) at once. The new definition reaches the workbench asynchronously, and starting
 * an id it does not know yet does nothing, so this asks again until the tools are in.
 */
async function startServer(gateway: GatewaySupervisor, serverId: string): Promise<void> {
  for (let attempt = 0; attempt < 20 && gateway.toolsOf(serverId) === undefined; attempt++) {
    await vscode.commands
      .executeCommand('workbench.mcp.startServer', mcpDefinitionId(serverId), { waitForLiveTools: true })
      .then(undefined, () => undefined);
    if (gateway.toolsOf(serverId) === undefined) await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

export function deactivate(): void {
  // Everything, the gateway's process group included, is disposed through context.subscriptions.
}

/** The gateway's mode from the settings: managed by a policy server, or a local config file. */
function gatewayLaunch(stateDir: string, signIn: SignIn): GatewayLaunch | { notConfigured: string } | { signedOut: string } {
  const settings = vscode.workspace.getConfiguration(SETTINGS.section);
  const dirs = {
    stateDir,
    runtimeDir: join(tmpdir(), `gatehouse-vscode-${process.getuid?.() ?? 'user'}`),
  };
  const url = settings.get<string>(SETTINGS.policyServerUrl)?.trim();
  if (url) {
    const keys = settings.get<string>(SETTINGS.policyServerKeysFile)?.trim();
    if (!keys) return { notConfigured: "Set gatehouse.policyServer.keysFile (the policy server's public keys) to use the policy server." };
    if (signIn.provider()) {
      if (!signIn.account) return { signedOut: 'Sign in with your organization to use Gatehouse.' };
      return { modeArgs: ['--policy-server', url, '--policy-keys', keys, '--policy-token', 'control'], ...dirs };
    }
    const token = settings.get<string>(SETTINGS.policyServerTokenFile)?.trim();
    if (!token) return { notConfigured: 'Choose how you sign in (gatehouse.signIn.provider), or set gatehouse.policyServer.tokenFile.' };
    return { modeArgs: ['--policy-server', url, '--policy-keys', keys, '--policy-token-file', token], ...dirs };
  }
  const config = settings.get<string>(SETTINGS.gatewayConfig)?.trim();
  if (config) return { modeArgs: ['--config', config], ...dirs };
  return { notConfigured: 'No policy server or gateway config is set (gatehouse.policyServer.url or gatehouse.gatewayConfig).' };
}

/** The policy server that queues second-person reviews, when the gateway is managed. */
function reviewServer(signIn: SignIn): ReviewServer | undefined {
  const settings = vscode.workspace.getConfiguration(SETTINGS.section);
  const url = settings.get<string>(SETTINGS.policyServerUrl)?.trim();
  if (!url) return undefined;
  if (signIn.provider()) return signIn.account ? { url, token: () => signIn.token() } : undefined;
  const tokenFile = settings.get<string>(SETTINGS.policyServerTokenFile)?.trim();
  return tokenFile ? { url, token: async () => (await readFile(tokenFile, 'utf8')).trim() } : undefined;
}

function statusText(state: GatewayState, account: string | undefined): string {
  switch (state.kind) {
    case 'ready': {
      const policy = state.ready.policy.mode === 'managed' ? `policy v${state.ready.policy.version ?? '?'}` : 'unmanaged';
      return `$(shield) Gatehouse: ${account ? `${account}, ` : ''}${policy}, ${state.ready.servers.filter(serverUsable).length} server(s)`;
    }
    case 'starting':
      return '$(sync~spin) Gatehouse: starting';
    case 'failed':
      return '$(error) Gatehouse: gateway down';
    case 'not-configured':
      return '$(shield) Gatehouse: not configured';
    case 'signed-out':
      return '$(account) Gatehouse: sign in';
  }
}
