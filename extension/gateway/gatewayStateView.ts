/**
 * What VS Code draws from the running gateway and the developer's enabled servers (the MCP
 * server definitions, the "Approved servers" tree): one change event that fires whenever
 * either changes, so each view only says how it draws.
 */
import * as vscode from 'vscode';
import type { EnabledServers } from '../catalog/enabledServers';
import { Disposable } from '../lifecycle';
import type { GatewayState, GatewaySupervisor } from './gatewaySupervisor';

export abstract class GatewayStateView extends Disposable {
  protected readonly changed = this._register(new vscode.EventEmitter<void>());

  constructor(
    protected readonly gateway: GatewaySupervisor,
    protected readonly enabled: EnabledServers,
    /** More sources to redraw on (the tools a client listed, for the tree). */
    ...also: vscode.Event<unknown>[]
  ) {
    super();
    this._fireOn(this.changed, gateway.onDidChange, enabled.onDidChange, ...also);
  }

  /** The gateway's state while it is ready, else undefined (nothing to show yet). */
  protected get ready(): Extract<GatewayState, { kind: 'ready' }> | undefined {
    const state = this.gateway.state;
    return state.kind === 'ready' ? state : undefined;
  }
}
