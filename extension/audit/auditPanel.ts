/**
 * The Audit webview: the trail of the gateway's calls, live. One panel at a time; it gets
 * the whole trail when its app says `ready`, then new events in batches (at most one
 * message per 200 ms, so a burst of calls does not flood the webview). Exports write the
 * rows the app's filter shows, to a file the developer picks.
 */
import * as vscode from 'vscode';
import type { AuditEvent } from '../../common/audit/auditEvent';
import { auditMatcher, type AuditFilter } from '../../webviews/audit/auditFilter';
import { auditExportText, type AuditExportFormat } from '../../common/audit/auditExportFormat';
import { isAuditViewMessage, type AuditHostMessage } from '../../webviews/audit/auditProtocol';
import { Disposable } from '../lifecycle';
import { webviewHtml, webviewOptions } from '../webviewHost/webviewHtml';
import type { AuditTrail } from './auditTrail';
import { describeError } from '../../common/log/logger';

export const AUDIT_VIEW_TYPE = 'gatehouse.audit';
const APPEND_BATCH_MS = 200;
/** Events in the first message (a screenful many times over) and in each later chunk. */
const FIRST_CHUNK = 2_000;
const OLDER_CHUNK = 10_000;

/** What the Audit app last reported it rendered (for the status line, the API and tests). */
export interface AuditViewReport {
  shown: number;
  total: number;
  filterMs: number;
  /** From opening the view to its first rows on screen. */
  firstRowsMs?: number;
}

export class AuditPanel extends Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private pending: AuditEvent[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private lastReport: AuditViewReport | undefined;
  private openedAt = 0;
  private firstRowsMs: number | undefined;
  /** Bumped on each (re)send of the whole trail, so an older send in progress stops. */
  private generation = 0;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly trail: AuditTrail,
    private readonly log: vscode.LogOutputChannel,
  ) {
    super();
    this._register(trail.onDidAppend((events) => this.queue(events)));
    this._register(trail.onDidReset(() => void this.sendTrail()));
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
    this.openedAt = performance.now();
    this.firstRowsMs = undefined;
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
        if (server) this.post({ type: 'filter', filter: { server } });
        void this.sendTrail();
      } else if (message.type === 'rendered') {
        this.firstRowsMs ??= performance.now() - this.openedAt;
        this.lastReport = { shown: message.shown, total: message.total, filterMs: message.filterMs, firstRowsMs: this.firstRowsMs };
      } else {
        void this.exportWithDialog(message.format, message.filter);
      }
    });
  }

  /** Writes the events the filter matches to `target`; returns how many. */
  async export(target: vscode.Uri, format: AuditExportFormat, filter: AuditFilter = {}): Promise<number> {
    const events = this.trail.events.filter(auditMatcher(filter));
    const text = auditExportText(format, events);
    await vscode.workspace.fs.writeFile(target, new TextEncoder().encode(text));
    return events.length;
  }

  override dispose(): void {
    super.dispose();
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
      this.log.error(`audit export failed: ${describeError(error)}`);
      this.post({ type: 'exportFailed', message: describeError(error) });
    }
  }

  /** The whole trail, newest first in chunks; each chunk waits for the webview to take the one before. */
  private async sendTrail(): Promise<void> {
    const panel = this.panel;
    if (!panel) return;
    const generation = ++this.generation;
    this.pending = [];
    const snapshot = this.trail.events.slice();
    let end = Math.max(0, snapshot.length - FIRST_CHUNK);
    await panel.webview.postMessage({ type: 'reset', events: snapshot.slice(end), olderToCome: end } satisfies AuditHostMessage);
    while (end > 0 && this.panel === panel && this.generation === generation) {
      const start = Math.max(0, end - OLDER_CHUNK);
      await panel.webview.postMessage({ type: 'older', events: snapshot.slice(start, end), olderToCome: start } satisfies AuditHostMessage);
      end = start;
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
  #toolbar { display: flex; flex-wrap: wrap; gap: 0.4rem; align-items: center; padding: 0.6rem 0; }
  #toolbar vscode-textfield { flex: 1 1 14rem; }
  #toolbar vscode-single-select { width: 10.5rem; }
  #main { display: flex; flex: 1; min-height: 0; gap: 0.75rem; }
  #list { flex: 1 1 auto; overflow: auto; position: relative; border: 1px solid var(--vscode-panel-border); }
  #rows { position: relative; min-width: 56em; }
  .row, .head { display: grid; grid-template-columns: 8.5em 6em 8em 10em 9em 6em 4.5em 3em; gap: 0.5em; padding: 0 0.5em; white-space: nowrap; min-width: 56em; }
  .row { position: absolute; left: 0; right: 0; height: 22px; line-height: 22px; cursor: pointer; }
  .row > span, .head > span { overflow: hidden; text-overflow: ellipsis; }
  .row > span.num, .head > span.num { text-align: right; }
  .row:hover { background: var(--vscode-list-hoverBackground); }
  .row.selected { background: var(--vscode-list-activeSelectionBackground); color: var(--vscode-list-activeSelectionForeground); }
  .head { position: sticky; top: 0; z-index: 1; background: var(--vscode-editor-background); font-weight: 600; line-height: 24px; border-bottom: 1px solid var(--vscode-panel-border); }
  .deny, .confirm-denied, .confirm-timeout { color: var(--vscode-errorForeground); }
  .confirm-approved { color: var(--vscode-charts-yellow); }
  #detail[hidden] { display: none; }
  #detail { flex: 0 0 18rem; overflow: auto; border: 1px solid var(--vscode-panel-border); padding: 0.5rem; }
  #detail h3 { margin-top: 0; font-size: 1em; }
  #detail pre { white-space: pre-wrap; word-break: break-all; margin: 0; font-family: var(--vscode-editor-font-family); font-size: 0.9em; }
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
    <div class="head" role="row"><span>Time</span><span>Server</span><span>Tool</span><span>Decision</span><span>Rule</span><span>Reviewer</span><span class="num">Latency</span><span class="num" title="Values redacted from the result">Red.</span></div>
    <div id="rows"></div>
  </div>
  <aside id="detail" aria-label="Event detail" hidden></aside>
</div>
<div id="status" class="muted" role="status">Waiting for the trail…</div>`,
};
