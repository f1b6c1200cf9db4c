/**
 * The "Approved servers" tree in the Gatehouse sidebar: one item per server the gateway
 * serves, with its state (ready, failed with the reason). Welcome content (package.json
 * `viewsWelcome`) covers the not-configured case.
 */
import * as vscode from 'vscode';
import type { GatewayState, GatewaySupervisor } from '../gateway/gatewaySupervisor';

type ServerStatus = Extract<GatewayState, { kind: 'ready' }>['ready']['servers'][number];

export class CatalogView implements vscode.TreeDataProvider<ServerStatus>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly subscription: vscode.Disposable;

  constructor(private readonly gateway: GatewaySupervisor) {
    this.subscription = gateway.onDidChange(() => this.changed.fire());
  }

  getChildren(element?: ServerStatus): ServerStatus[] {
    const state = this.gateway.state;
    if (element || state.kind !== 'ready') return [];
    return state.ready.servers;
  }

  getTreeItem(server: ServerStatus): vscode.TreeItem {
    const item = new vscode.TreeItem(server.id, vscode.TreeItemCollapsibleState.None);
    item.id = server.id;
    item.description = server.state === 'ready' ? 'available' : `unavailable: ${server.error ?? server.state}`;
    item.tooltip = server.error ? `${server.id}: ${server.error}` : `${server.id} through the Gatehouse gateway`;
    item.iconPath = new vscode.ThemeIcon(server.state === 'ready' ? 'server-process' : 'warning');
    item.contextValue = `gatehouse.server.${server.state}`;
    return item;
  }

  refresh(): void {
    this.changed.fire();
  }

  dispose(): void {
    this.subscription.dispose();
    this.changed.dispose();
  }
}
