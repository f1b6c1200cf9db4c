/**
 * The Audit webview's app: a virtual list (only the rows in view exist in the DOM, so
 * 100,000 events scroll as smoothly as 100), filters by server / tool / decision / time,
 * text search, a detail pane, and export buttons that ask the host to write the rows
 * shown. Controls are `@vscode-elements/elements` components; colours are VS Code's theme
 * variables. Everything shown is set as text, never as HTML: events carry names chosen by
 * MCP servers and clients.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-icon/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import type { AuditEvent } from '../../common/audit/auditEvent';
import { AUDIT_DECISIONS } from '../../common/audit/auditVocabulary';
import { auditMatcher, redactionCount, type AuditFilter } from './auditFilter';
import type { AuditExportFormat } from '../../common/audit/auditExportFormat';
import type { AuditHostMessage, AuditViewMessage } from './auditProtocol';

declare function acquireVsCodeApi(): { postMessage(message: AuditViewMessage): void };
const vscode = acquireVsCodeApi();

const ROW_HEIGHT = 22;
/** As many as the host keeps (MAX_AUDIT_HISTORY). */
const MAX_EVENTS = 100_000;
const OVERSCAN = 10;
const SINCE_CHOICES: Array<[string, string]> = [
  ['', 'Any time'],
  ['900000', 'Last 15 minutes'],
  ['3600000', 'Last hour'],
  ['86400000', 'Last day'],
  ['604800000', 'Last week'],
];

type Select = HTMLElement & { value: string };
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const list = $('list');
const rows = $('rows');
const detail = $('detail');
const status = $('status');
const search = $<HTMLElement & { value: string }>('search');
const selects = { server: $<Select>('server'), tool: $<Select>('tool'), decision: $<Select>('decision'), since: $<Select>('since') };

let all: AuditEvent[] = [];
/** Older events the host is still sending. */
let olderToCome = 0;
let lastFilterAt = 0;
let shown: AuditEvent[] = [];
let selected: AuditEvent | undefined;
let servers = new Set<string>();
let wantedServer: string | undefined;
let tools = new Set<string>();

function currentFilter(): AuditFilter {
  const since = selects.since.value;
  return {
    ...(selects.server.value ? { server: selects.server.value } : {}),
    ...(selects.tool.value ? { tool: selects.tool.value } : {}),
    ...(selects.decision.value ? { decision: selects.decision.value as AuditFilter['decision'] } : {}),
    ...(since ? { sinceMs: Date.now() - Number(since) } : {}),
    ...(search.value.trim() ? { text: search.value.trim() } : {}),
  };
}

function setOptions(select: Select, all: string, values: Iterable<[string, string]>): void {
  const keep = select.value;
  select.replaceChildren();
  for (const [value, label] of [['', all] as [string, string], ...values]) {
    const option = document.createElement('vscode-option') as HTMLElement & { value: string };
    option.value = value;
    option.textContent = label;
    select.append(option);
  }
  select.value = keep;
}

function refreshChoices(): void {
  const nextServers = new Set(all.map((event) => event.server));
  if (wantedServer) nextServers.add(wantedServer); // asked for by the host before its events arrived
  const nextTools = new Set(all.flatMap((event) => (event.tool ? [event.tool] : [])));
  if (nextServers.size !== servers.size)
    setOptions(
      selects.server,
      'All servers',
      [...nextServers].sort().map((s) => [s, s]),
    );
  if (nextTools.size !== tools.size)
    setOptions(
      selects.tool,
      'All tools',
      [...nextTools].sort().map((t) => [t, t]),
    );
  servers = nextServers;
  tools = nextTools;
}

/** Applies the filters; the newest event first. */
function applyFilter(): void {
  const started = performance.now();
  const matches = auditMatcher(currentFilter());
  shown = [];
  for (let i = all.length - 1; i >= 0; i--) if (matches(all[i]!)) shown.push(all[i]!);
  const filterMs = performance.now() - started;
  rows.style.height = `${shown.length * ROW_HEIGHT}px`;
  renderRows();
  lastFilterAt = performance.now();
  status.textContent = `${shown.length.toLocaleString()} of ${all.length.toLocaleString()} events${olderToCome > 0 ? ` (loading ${olderToCome.toLocaleString()} older…)` : ''}${selected ? '' : ' · select one (or use the arrow keys) to see all of it'}`;
  vscode.postMessage({ type: 'rendered', shown: shown.length, total: all.length, filterMs });
}

function cell(text: string, className?: string): HTMLSpanElement {
  const span = document.createElement('span');
  span.textContent = text;
  span.title = text;
  if (className) span.className = className;
  return span;
}

const pad = (n: number) => String(n).padStart(2, '0');
/** `MM-DD hh:mm:ss` in local time: short enough for the column, the full time is in the tooltip. */
function shortTime(iso: string): string {
  const at = new Date(iso);
  return `${pad(at.getMonth() + 1)}-${pad(at.getDate())} ${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}`;
}

function renderRows(): void {
  const first = Math.max(0, Math.floor(list.scrollTop / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(shown.length, Math.ceil((list.scrollTop + list.clientHeight) / ROW_HEIGHT) + OVERSCAN);
  const fragment = document.createDocumentFragment();
  for (let i = first; i < last; i++) {
    const event = shown[i]!;
    const row = document.createElement('div');
    row.className = event === selected ? 'row selected' : 'row';
    row.setAttribute('role', 'row');
    row.style.top = `${i * ROW_HEIGHT}px`;
    row.dataset.index = String(i);
    const redactions = redactionCount(event);
    const time = cell(shortTime(event.time));
    time.title = new Date(event.time).toLocaleString();
    row.append(
      time,
      cell(event.server),
      cell(event.tool ?? event.method),
      cell(event.decision, event.decision),
      cell(event.rule ?? '—'),
      cell(event.reviewer ?? ''),
      cell(event.latencyMs >= 1000 ? `${(event.latencyMs / 1000).toFixed(1)} s` : `${event.latencyMs.toFixed(1)} ms`, 'num'),
      cell(redactions > 0 ? String(redactions) : '', 'num'),
    );
    fragment.append(row);
  }
  rows.replaceChildren(fragment);
}

function showDetail(event: AuditEvent): void {
  selected = event;
  const pre = document.createElement('pre');
  pre.textContent = JSON.stringify(event, null, 2);
  const heading = document.createElement('h3');
  heading.textContent = `${event.tool ?? event.method} on ${event.server}: ${event.decision}`;
  detail.replaceChildren(heading, pre);
  detail.hidden = false;
  renderRows();
}

function requestExport(format: AuditExportFormat): void {
  vscode.postMessage({ type: 'export', format, filter: currentFilter() });
  status.textContent = `Exporting ${shown.length.toLocaleString()} events as ${format.toUpperCase()}…`;
}

setOptions(
  selects.decision,
  'All decisions',
  AUDIT_DECISIONS.map((d) => [d, d]),
);
setOptions(selects.since, 'Any time', SINCE_CHOICES.slice(1));
setOptions(selects.server, 'All servers', []);
setOptions(selects.tool, 'All tools', []);

let searchTimer: ReturnType<typeof setTimeout> | undefined;
search.addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(applyFilter, 120);
});
for (const select of Object.values(selects)) select.addEventListener('change', applyFilter);
list.addEventListener('scroll', () => requestAnimationFrame(renderRows), { passive: true });
rows.addEventListener('click', (event) => {
  const row = (event.target as HTMLElement).closest<HTMLElement>('.row');
  if (row?.dataset.index) showDetail(shown[Number(row.dataset.index)]!);
});
list.addEventListener('keydown', (event) => {
  if (event.key !== 'ArrowDown' && event.key !== 'ArrowUp') return;
  event.preventDefault();
  const at = selected ? shown.indexOf(selected) : -1;
  const next = Math.min(shown.length - 1, Math.max(0, at + (event.key === 'ArrowDown' ? 1 : -1)));
  if (shown[next]) {
    showDetail(shown[next]);
    const top = next * ROW_HEIGHT;
    if (top < list.scrollTop || top + ROW_HEIGHT > list.scrollTop + list.clientHeight) list.scrollTop = top - list.clientHeight / 2;
  }
});
$('export-jsonl').addEventListener('click', () => requestExport('jsonl'));
$('export-csv').addEventListener('click', () => requestExport('csv'));
new ResizeObserver(() => renderRows()).observe(list);

window.addEventListener('message', (event: MessageEvent<AuditHostMessage>) => {
  const message = event.data;
  switch (message.type) {
    case 'reset':
      all = message.events;
      olderToCome = message.olderToCome;
      refreshChoices();
      applyFilter();
      break;
    case 'older':
      all = message.events.concat(all);
      olderToCome = message.olderToCome;
      // While chunks arrive, refilter a few times a second, not per chunk; always on the last.
      if (olderToCome === 0 || performance.now() - lastFilterAt > 300) {
        refreshChoices();
        applyFilter();
      }
      break;
    case 'append':
      for (const appended of message.events) all.push(appended);
      if (all.length > MAX_EVENTS) all = all.slice(-MAX_EVENTS);
      refreshChoices();
      applyFilter();
      break;
    case 'filter':
      if (message.filter.server !== undefined) {
        wantedServer = message.filter.server;
        refreshChoices();
        selects.server.value = message.filter.server;
      }
      applyFilter();
      break;
    case 'exported':
      status.textContent = `Exported ${message.count.toLocaleString()} events to ${message.target}`;
      break;
    case 'exportFailed':
      status.textContent = `Export failed: ${message.message}`;
      break;
  }
});
vscode.postMessage({ type: 'ready' });
