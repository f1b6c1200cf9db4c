/**
 * The Audit webview: the trail of the gateway's calls, live. One panel at a time; it gets
 * the whole trail when its app says `ready`, then new events in batches (at most one
 * message per 200 ms, so a burst of calls does not flood the webview). Exports write the
 * rows the app's filter shows, to a file the developer picks.
 */
import * as vscode from 'vscode';
import type { AuditEvent } from '../../common/audit/auditEvent';
import { auditMatcher, type AuditFilter } from '../../webviews/audit/auditFilter';
import { isAuditViewMessage, type AuditExportFormat, type AuditHostMessage } from '../../webviews/audit/auditProtocol';
import { webviewHtml, webviewOptions } from '../webview/webviewHtml';
import { auditCsv, auditJsonl } from './auditExport';
import type { AuditTrail } from './auditTrail';

export const AUDIT_VIEW_TYPE = 'gatehouse.audit';
const APPEND_BATCH_MS = 200;

/** What the Audit app last reported it rendered (for the status line, the API and tests). */
export interface AuditViewReport {
  shown: number;
  total: number;
  filterMs: number;
}

export class AuditPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private pending: AuditEvent[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private lastReport: AuditViewReport | undefined;
  private readonly subscriptions: vscode.Disposable[];

  constructor(private readonly extensionUri: vscode.Uri, private readonly trail: AuditTrail, private readonly log: vscode.LogOutputChannel) {
    this.subscriptions = [
      trail.onDidAppend((events) => this.queue(events)),
      trail.onDidReset(() => this.post({ type: 'reset', events: [...trail.events] })),
    ];
  }

  get report(): AuditViewReport | undefined {
    return this.lastReport;
  }

  /** Opens the panel (or brings it forward), optionally filtered to one server. */
  show(server?: string): void {
    if (this.panel) {
      this.panel.reveal();
      if (server) this.post({ type: 'filter', filter: { server } });
      return;
    }
    const panel = vscode.window.createWebviewPanel(AUDIT_VIEW_TYPE, 'Gatehouse Audit', vscode.ViewColumn.Active, {
      ...webviewOptions(this.extensionUri),
      retainContextWhenHidden: true, // re-sending 100,000 events on every tab switch would be slow
    });
    this.panel = panel;
    this.lastReport = undefined;
    panel.webview.html = webviewHtml(panel.webview, this.extensionUri, AUDIT_PAGE);
    panel.onDidDispose(() => {
      this.panel = undefined;
      this.pending = [];
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    });
    panel.webview.onDidReceiveMessage((message: unknown) => {
      if (!isAuditViewMessage(message)) return;
      if (message.type === 'ready') {
        this.pending = [];
        this.post({ type: 'reset', events: [...this.trail.events] });
        if (server) this.post({ type: 'filter', filter: { server } });
      } else if (message.type === 'rendered') {
        this.lastReport = { shown: message.shown, total: message.total, filterMs: message.filterMs };
      } else {
        void this.exportWithDialog(message.format, message.filter);
      }
    });
  }

  /** Writes the events the filter matches to `target`; returns how many. */
  async export(target: vscode.Uri, format: AuditExportFormat, filter: AuditFilter = {}): Promise<number> {
    const events = this.trail.events.filter(auditMatcher(filter));
    const text = format === 'csv' ? auditCsv(events) : auditJsonl(events);
    await vscode.workspace.fs.writeFile(target, new TextEncoder().encode(text));
    return events.length;
  }

  dispose(): void {
    for (const subscription of this.subscriptions) subscription.dispose();
    clearTimeout(this.flushTimer);
    this.panel?.dispose();
  }

  private async exportWithDialog(format: AuditExportFormat, filter: AuditFilter): Promise<void> {
    const target = await vscode.window.showSaveDialog({
      title: 'Export the audit trail',
      saveLabel: 'Export',
      filters: format === 'csv' ? { CSV: ['csv'] } : { 'JSON Lines': ['jsonl'] },
      defaultUri: vscode.Uri.file(`gatehouse-audit.${format}`),
    });
    if (!target) return;
    try {
      const count = await this.export(target, format, filter);
      this.post({ type: 'exported', format, count, target: target.fsPath });
    } catch (error) {
      this.log.error(`audit export failed: ${(error as Error).message}`);
      this.post({ type: 'exportFailed', message: (error as Error).message });
    }
  }

  private queue(events: AuditEvent[]): void {
    if (!this.panel) return;
    this.pending.push(...events);
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      const batch = this.pending;
      this.pending = [];
      if (batch.length > 0) this.post({ type: 'append', events: batch });
    }, APPEND_BATCH_MS);
  }

  private post(message: AuditHostMessage): void {
    if (this.panel) void this.panel.webview.postMessage(message);
  }
}

const AUDIT_PAGE = {
  title: 'Gatehouse Audit',
  script: 'audit.js',
  style: `
  body { padding: 0 1rem; display: flex; flex-direction: column; height: 100vh; margin: 0; box-sizing: border-box; }
  #toolbar { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: center; padding: 0.6rem 0; }
  #toolbar vscode-textfield { min-width: 14rem; flex: 1; }
  #main { display: flex; flex: 1; min-height: 0; gap: 0.75rem; }
  #list { flex: 3; overflow-y: auto; position: relative; border: 1px solid var(--vscode-panel-border); }
  #rows { position: relative; }
  .row, .head { display: grid; grid-template-columns: 11em 8em 10em 9em 9em 7em 5em 4em; gap: 0.5em; padding: 0 0.5em; white-space: nowrap; }
  .row { position: absolute; left: 0; right: 0; height: 22px; line-height: 22px; cursor: pointer; }
  .row > span, .head > span { overflow: hidden; text-overflow: ellipsis; }
  .row:hover { background: var(--vscode-list-hoverBackground); }
  .row.selected { background: var(--vscode-list-activeSelectionBackground); color: var(--vscode-list-activeSelectionForeground); }
  .head { position: sticky; top: 0; z-index: 1; background: var(--vscode-editor-background); font-weight: 600; line-height: 24px; border-bottom: 1px solid var(--vscode-panel-border); }
  .deny, .confirm-denied, .confirm-timeout { color: var(--vscode-errorForeground); }
  .confirm-approved { color: var(--vscode-charts-yellow); }
  #detail { flex: 2; overflow: auto; border: 1px solid var(--vscode-panel-border); padding: 0.5rem; }
  #detail pre { white-space: pre-wrap; word-break: break-all; margin: 0; }
  #status { padding: 0.4rem 0; }`,
  body: `
<div id="toolbar" role="search">
  <vscode-textfield id="search" placeholder="Search tool, rule, reviewer, flag…" aria-label="Search the audit trail"><vscode-icon slot="content-before" name="search"></vscode-icon></vscode-textfield>
  <vscode-single-select id="server" aria-label="Server"></vscode-single-select>
  <vscode-single-select id="tool" aria-label="Tool"></vscode-single-select>
  <vscode-single-select id="decision" aria-label="Decision"></vscode-single-select>
  <vscode-single-select id="since" aria-label="Time"></vscode-single-select>
  <vscode-button id="export-jsonl" secondary icon="desktop-download">JSONL</vscode-button>
  <vscode-button id="export-csv" secondary icon="desktop-download">CSV</vscode-button>
</div>
<div id="main">
  <div id="list" tabindex="0" role="grid" aria-label="Audit events">
    <div class="head" role="row"><span>Time</span><span>Server</span><span>Tool</span><span>Decision</span><span>Rule</span><span>Reviewer</span><span>Latency</span><span>Redact.</span></div>
    <div id="rows"></div>
  </div>
  <aside id="detail" aria-label="Event detail"><p class="muted">Select an event to see all of it.</p></aside>
</div>
<div id="status" class="muted" role="status">Waiting for the trail…</div>`,
};
