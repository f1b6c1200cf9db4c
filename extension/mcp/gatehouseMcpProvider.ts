/**
 * VS Code's MCP client reaches Gatehouse servers through this provider: one
 * `McpHttpServerDefinition` per server the running gateway serves and the developer enabled. `provide` never prompts
 * and carries no secret; `resolve` (called when VS Code starts a server) adds the
 * per-launch `Authorization` header. The gateway listens on a unix socket where VS Code
 * can reach one, loopback TCP otherwise. The definition `version` changes with the policy
 * version and each gateway launch, so VS Code reconnects after either.
 */
import * as vscode from 'vscode';
import type { GatewayReadyLine, GatewayReadyServer } from '../../common/gatewayReady';
import type { GatewayState } from '../gateway/gatewaySupervisor';
import { GatewayStateView } from '../gateway/gatewayStateView';

export class GatehouseMcpProvider extends GatewayStateView implements vscode.McpServerDefinitionProvider<vscode.McpHttpServerDefinition> {
  readonly onDidChangeMcpServerDefinitions = this.changed.event;

  provideMcpServerDefinitions(): vscode.McpHttpServerDefinition[] {
    const state = this.ready;
    if (!state) return [];
    return state.ready.servers
      .filter((server) => this.enabled.has(server.id))
      .map((server) => new vscode.McpHttpServerDefinition(server.id, serverUri(state.ready, server), {}, definitionVersion(state)));
  }

  resolveMcpServerDefinition(definition: vscode.McpHttpServerDefinition): vscode.McpHttpServerDefinition | undefined {
    const state = this.ready;
    // VS Code reports the server as unavailable; a definition VS Code kept from before it was disabled is refused too.
    if (!state || !this.enabled.has(definition.label)) return undefined;
    definition.headers = { ...definition.headers, Authorization: `Bearer ${state.secret}` };
    return definition;
  }
}

/**
 * Where VS Code's MCP client reaches a server: the gateway's unix socket (socket path as the
 * URI path, request path as the fragment, VS Code's convention) or its loopback TCP URL.
 */
function serverUri(ready: GatewayReadyLine, server: GatewayReadyServer): vscode.Uri {
  if (ready.listen.type === 'unix') return vscode.Uri.from({ scheme: 'unix', path: ready.listen.socketPath, fragment: server.path });
  return vscode.Uri.parse(server.url ?? `http://${ready.listen.host}:${ready.listen.port}${server.path}`);
}

function definitionVersion(state: GatewayState & { kind: 'ready' }): string {
  const policy = state.ready.policy.mode === 'managed' ? `policy-${state.ready.policy.version ?? 'none'}` : 'unmanaged';
  return `${policy}-gateway-${state.ready.pid}`;
}
