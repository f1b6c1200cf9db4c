/**
 * The audit trail the Audit view shows: the gateway's recent local events (asked for each
 * time it is ready) plus every event it streams afterwards, newest last, at most
 * MAX_AUDIT_HISTORY (the oldest drop out first). Events are kept by id, so an event that
 * arrives both live and in a history answer is listed once.
 */
import * as vscode from 'vscode';
import type { AuditEvent } from '../../common/audit/auditEvent';
import { MAX_AUDIT_HISTORY } from '../../common/control/controlProtocol';
import type { GatewaySupervisor } from '../gateway/gatewaySupervisor';
import { Disposable } from '../lifecycle';
import { describeError } from '../../common/log/logger';

export class AuditTrail extends Disposable {
  private list: AuditEvent[] = [];
  private readonly ids = new Set<string>();
  private readonly appended = this._register(new vscode.EventEmitter<AuditEvent[]>());
  /** New events, in order; `onDidReset` when the whole trail was replaced. */
  readonly onDidAppend = this.appended.event;
  private readonly reset = this._register(new vscode.EventEmitter<void>());
  readonly onDidReset = this.reset.event;
  /** The gateway process whose history was loaded. */
  private loadedFrom: number | undefined;

  constructor(
    private readonly gateway: GatewaySupervisor,
    private readonly log: vscode.LogOutputChannel,
  ) {
    super();
    this._register(gateway.onDidAudit((event) => this.add([event])));
    this._register(
      gateway.onDidChange((state) => {
        // Ready again after a policy update is the same gateway: its history is already here.
        if (state.kind !== 'ready' || state.ready.pid === this.loadedFrom) return;
        this.loadedFrom = state.ready.pid;
        void this.load();
      }),
    );
  }

  get events(): readonly AuditEvent[] {
    return this.list;
  }

  /** Replaces the trail with the gateway's recent history, keeping live events that arrived meanwhile. */
  private async load(): Promise<void> {
    let history: AuditEvent[];
    try {
      history = await this.gateway.auditHistory(MAX_AUDIT_HISTORY);
    } catch (error) {
      this.log.warn(`could not read the gateway's audit history: ${describeError(error)}`);
      return;
    }
    const historyIds = new Set(history.map((event) => event.id));
    const live = this.list.filter((event) => !historyIds.has(event.id));
    this.list = [...history, ...live].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).slice(-MAX_AUDIT_HISTORY);
    this.ids.clear();
    for (const event of this.list) this.ids.add(event.id);
    this.reset.fire();
  }

  private add(events: AuditEvent[]): void {
    const fresh = events.filter((event) => !this.ids.has(event.id));
    if (fresh.length === 0) return;
    for (const event of fresh) {
      this.list.push(event);
      this.ids.add(event.id);
    }
    if (this.list.length > MAX_AUDIT_HISTORY) {
      for (const dropped of this.list.splice(0, this.list.length - MAX_AUDIT_HISTORY)) this.ids.delete(dropped.id);
    }
    this.appended.fire(fresh);
  }
}
