/**
 * The "Approved servers" tree in the Gatehouse sidebar: the catalog servers the policy
 * blocks for this user (with the reason), and one item per server the gateway serves, with
 * its state (enabled, available to enable, or unavailable with the reason; an idle server
 * starts when first used) and inline actions (enable, disable, scopes, audit), expandable to
 * its tools once a client has listed them through the gateway, each with badges: destructive,
 * needs confirmation, changed since approval (hidden from clients), flagged. Welcome
 * content (package.json `viewsWelcome`) covers the not-configured case.
 */
import * as vscode from 'vscode';
import type { ToolSummary } from '../../common/control/controlProtocol';
import { serverUsable } from '../../common/gatewayReady';
import type { EnabledServers } from '../catalog/enabledServers';
import type { GatewayState, GatewaySupervisor } from '../gateway/gatewaySupervisor';
import { GatewayStateView } from '../gateway/gatewayStateView';

type ServerStatus = Extract<GatewayState, { kind: 'ready' }>['ready']['servers'][number];
type BlockedServer = NonNullable<Extract<GatewayState, { kind: 'ready' }>['ready']['blocked']>[number];
export type CatalogNode =
  | { kind: 'server'; server: ServerStatus }
  | { kind: 'tool'; serverId: string; tool: ToolSummary }
  | { kind: 'blocked'; server: BlockedServer };

export class CatalogView extends GatewayStateView implements vscode.TreeDataProvider<CatalogNode> {
  readonly onDidChangeTreeData = this.changed.event;

  constructor(gateway: GatewaySupervisor, enabled: EnabledServers) {
    super(gateway, enabled, gateway.onDidChangeTools);
  }

  getChildren(element?: CatalogNode): CatalogNode[] {
    const state = this.ready;
    if (!state) return [];
    if (!element) {
      return [
        ...state.ready.servers.map((server): CatalogNode => ({ kind: 'server', server })),
        ...(state.ready.blocked ?? []).map((server): CatalogNode => ({ kind: 'blocked', server })),
      ];
    }
    if (element.kind !== 'server') return [];
    return (this.gateway.toolsOf(element.server.id) ?? []).map((tool) => ({ kind: 'tool', serverId: element.server.id, tool }));
  }

  getTreeItem(node: CatalogNode): vscode.TreeItem {
    if (node.kind === 'blocked') return blockedItem(node.server);
    return node.kind === 'server' ? this.serverItem(node.server) : toolItem(node.serverId, node.tool);
  }

  refresh(): void {
    this.changed.fire();
  }

  private serverItem(server: ServerStatus): vscode.TreeItem {
    const tools = this.gateway.toolsOf(server.id);
    const enabled = this.enabled.has(server.id);
    const label = server.title ? `${server.title}` : server.id;
    const item = new vscode.TreeItem(
      label,
      tools && tools.length > 0 ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.None,
    );
    // A new id once tools are known: VS Code keeps an id's collapse state, and a leaf it saw first would stay collapsed.
    item.id = `server:${server.id}${tools ? ':tools' : ''}`;
    // An idle or sign-in server can be enabled: starting it (and asking the user) is what using it does.
    const usable = serverUsable(server);
    const state = !usable ? 'unavailable' : enabled ? 'enabled' : 'available';
    item.description =
      state === 'unavailable'
        ? `unavailable: ${server.error ?? server.state}`
        : `${state}${tools ? `, ${tools.length} tool(s)` : notStartedText(server.state)}`;
    const speaks = server.protocolVersion ? ` Speaks MCP ${server.protocolVersion}${bridged(server.protocolVersion)}.` : '';
    item.tooltip = server.error
      ? `${server.id}: ${server.error}`
      : enabled
        ? `${server.id}: enabled, offered to VS Code's MCP client through the Gatehouse gateway${tools ? '' : ' (tools show once VS Code has started it)'}.${speaks}`
        : `${server.id}: approved for you; enable it to offer it to VS Code's MCP client.${speaks}`;
    item.iconPath = new vscode.ThemeIcon(state === 'unavailable' ? 'warning' : enabled ? 'server-process' : 'circle-large-outline');
    item.contextValue = `gatehouse.server.${state}`;
    return item;
  }
}

function blockedItem(server: BlockedServer): vscode.TreeItem {
  const item = new vscode.TreeItem(server.title, vscode.TreeItemCollapsibleState.None);
  item.id = `blocked:${server.id}`;
  item.description = `blocked: ${server.reason}`;
  item.tooltip = `${server.id}: ${server.reason}`;
  item.iconPath = new vscode.ThemeIcon('circle-slash');
  item.contextValue = 'gatehouse.blocked';
  return item;
}

function toolItem(serverId: string, tool: ToolSummary): vscode.TreeItem {
  const item = new vscode.TreeItem(tool.name, vscode.TreeItemCollapsibleState.None);
  item.id = `tool:${serverId}:${tool.name}`;
  // The risk comes right after a hidden change: a narrow sidebar cuts the end of the line.
  const badges = [
    tool.changed ? 'changed since approval (hidden)' : undefined,
    tool.risk === 'destructive' ? 'destructive' : tool.risk === 'write' ? 'writes' : 'read-only',
    tool.policy === 'confirm' ? 'needs confirmation' : tool.policy === 'confirm-sometimes' ? 'may need confirmation' : undefined,
    tool.flags.some((flag) => flag !== 'tool-definition-changed') ? 'flagged' : undefined,
  ].filter((badge): badge is string => badge !== undefined);
  item.description = badges.join(' · ');
  item.tooltip = `${tool.title ?? tool.name} on ${serverId}\n${badges.join('\n')}${tool.flags.length > 0 ? `\nflags: ${tool.flags.join(', ')}` : ''}`;
  item.iconPath = new vscode.ThemeIcon(
    tool.changed ? 'diff-modified' : tool.policy !== 'allow' ? 'shield' : tool.risk === 'destructive' ? 'warning' : 'tools',
  );
  item.contextValue = 'gatehouse.tool';
  return item;
}

/** What the sidebar says of a usable server whose tools are not known yet. */
function notStartedText(state: ServerStatus['state']): string {
  if (state === 'sign-in') return ', asks you to sign in';
  if (state === 'idle') return ', starts when first used';
  if (state === 'starting') return ', starting';
  return '';
}

/** Said of a 2026-07-28 server, which VS Code (a 2025-era client) reaches only through the gateway's bridge. */
function bridged(protocolVersion: string): string {
  return protocolVersion >= '2026-07-28' ? ', bridged by the gateway for VS Code' : '';
}
