/**
 * Which approved servers the developer has enabled. Approved is the org's word; enabled is
 * the developer's: only enabled servers are offered to VS Code's MCP client, so nothing
 * reaches a model until someone chose it. Kept in the extension's global state (not a
 * secret), so it survives restarts and follows the user across workspaces.
 */
import * as vscode from 'vscode';
import { STATE_KEYS } from '../ids';
import { Disposable } from '../lifecycle';

export class EnabledServers extends Disposable {
  private readonly changed = this._register(new vscode.EventEmitter<void>());
  readonly onDidChange = this.changed.event;

  constructor(private readonly state: vscode.Memento) {
    super();
  }

  has(serverId: string): boolean {
    return this.ids().includes(serverId);
  }

  async set(serverId: string, enabled: boolean): Promise<void> {
    const ids = this.ids().filter((id) => id !== serverId);
    if (enabled) ids.push(serverId);
    await this.state.update(STATE_KEYS.enabledServers, ids.sort());
    this.changed.fire();
  }

  private ids(): string[] {
    const stored = this.state.get<unknown>(STATE_KEYS.enabledServers);
    return Array.isArray(stored) ? stored.filter((id): id is string => typeof id === 'string') : [];
  }
}
