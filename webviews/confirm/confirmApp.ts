/**
 * The Confirm webview: shows one call that waits for the developer (server, tool, the
 * rule that asked and why, the arguments pretty-printed with long values collapsed, the
 * time left) and sends back Approve once or Deny. Keyboard: Tab between the buttons,
 * Enter or Space to press, Escape denies. No answer before the deadline means deny
 * (the gateway decides that; the countdown only says so).
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import type { ConfirmHostMessage, ConfirmViewMessage } from './confirmProtocol';

declare function acquireVsCodeApi(): { postMessage(message: ConfirmViewMessage): void };

const vscode = acquireVsCodeApi();
const LONG_VALUE = 200;
const RISK_WORDS = { read: 'reads only', write: 'writes', destructive: 'destructive (may delete or overwrite)' } as const;
let answered = false;

function answer(decision: 'approve' | 'deny'): void {
  if (answered) return;
  answered = true;
  document.querySelectorAll<HTMLElement & { disabled: boolean }>('vscode-button').forEach((button) => {
    button.disabled = true;
  });
  document.getElementById('status')!.textContent = decision === 'approve' ? 'Approved once.' : 'Denied.';
  vscode.postMessage({ type: 'answer', decision });
}

function text(tag: string, content: string, className?: string): HTMLElement {
  const element = document.createElement(tag);
  element.textContent = content;
  if (className) element.className = className;
  return element;
}

/** The arguments as indented JSON, each long string cut short behind a <details>. */
function renderArguments(args: Record<string, unknown>): HTMLElement {
  const container = document.createElement('div');
  const entries = Object.entries(args);
  if (entries.length === 0) container.append(text('p', 'No arguments.', 'muted'));
  for (const [key, value] of entries) {
    const row = document.createElement('div');
    row.className = 'arg';
    row.append(text('span', key, 'arg-name'));
    const json = JSON.stringify(value, null, 2) ?? 'undefined';
    if (json.length > LONG_VALUE) {
      const details = document.createElement('details');
      details.append(text('summary', `${json.slice(0, 80)}… (${json.length} characters)`), text('pre', json));
      row.append(details);
    } else {
      row.append(text('pre', json));
    }
    container.append(row);
  }
  return container;
}

function show(message: ConfirmHostMessage): void {
  const { call, deadline } = message;
  const main = document.getElementById('call')!;
  main.replaceChildren(
    text('h1', `Run "${call.subject}" on ${call.server}?`),
    text('p', call.message, 'reason'),
    text('p', `Rule: ${call.rule}${call.risk ? ` · Risk: ${RISK_WORDS[call.risk]}` : ''}`, 'muted'),
    text('h2', 'Arguments'),
    renderArguments(call.arguments),
  );
  const countdown = document.getElementById('countdown')!;
  const tick = () => {
    const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    countdown.textContent = answered ? '' : `Denied automatically in ${left} s.`;
    if (left > 0 && !answered) setTimeout(tick, 1000);
  };
  tick();
  document.getElementById('actions')!.hidden = false;
  document.getElementById('deny')!.focus();
}

window.addEventListener('message', (event: MessageEvent<ConfirmHostMessage>) => {
  if (event.data?.type === 'show') show(event.data);
});
document.getElementById('approve')!.addEventListener('click', () => answer('approve'));
document.getElementById('deny')!.addEventListener('click', () => answer('deny'));
window.addEventListener('keydown', (event) => {
  if (event.key === 'Escape') answer('deny');
});
vscode.postMessage({ type: 'ready' });
