/**
 * Shows the Confirm webview for a call that waits for the developer and resolves with
 * their decision. Closing the panel, or the gateway withdrawing the request (its timeout
 * passed, or the MCP client cancelled), denies. The page around it (strict CSP with a
 * fresh nonce, codicons, bundle-only resources) is webviewHost/webviewHtml.ts.
 */
import * as vscode from 'vscode';
import type { ConfirmParams, ConfirmResult } from '../../common/control/controlProtocol';
import { isConfirmViewMessage, type ConfirmHostMessage } from '../../webviews/confirm/confirmProtocol';
import { disposeAll } from '../lifecycle';
import { webviewHtml, webviewOptions } from '../webviewHost/webviewHtml';

export const CONFIRM_VIEW_TYPE = 'gatehouse.confirm';

export function confirmWithPanel(
  extensionUri: vscode.Uri,
  call: ConfirmParams,
  cancelled: vscode.CancellationToken,
): Promise<ConfirmResult> {
  const panel = vscode.window.createWebviewPanel(
    CONFIRM_VIEW_TYPE,
    `Confirm: ${call.subject}`,
    { viewColumn: vscode.ViewColumn.Active, preserveFocus: false },
    webviewOptions(extensionUri),
  );
  const deadline = Date.now() + call.timeoutMs;
  panel.webview.html = webviewHtml(panel.webview, extensionUri, CONFIRM_PAGE);
  return new Promise<ConfirmResult>((resolve) => {
    let settled = false;
    const subscriptions: vscode.Disposable[] = [];
    const finish = (decision: ConfirmResult['decision']) => {
      if (settled) return;
      settled = true;
      disposeAll(subscriptions);
      resolve({ decision });
      panel.dispose();
    };
    subscriptions.push(
      panel.webview.onDidReceiveMessage((message: unknown) => {
        if (!isConfirmViewMessage(message)) return;
        if (message.type === 'ready') {
          const show: ConfirmHostMessage = { type: 'show', call, deadline };
          void panel.webview.postMessage(show);
        } else {
          finish(message.decision);
        }
      }),
      panel.onDidDispose(() => finish('deny')),
      cancelled.onCancellationRequested(() => finish('deny')),
    );
  });
}

const CONFIRM_PAGE = {
  title: 'Confirm a tool call',
  script: 'confirm.js',
  style: `
  body { padding: 1rem 1.5rem; }
  h1 { font-size: 1.3em; font-weight: 600; }
  h2 { font-size: 1.05em; margin-top: 1.2em; }
  .arg { margin: 0.4em 0; }
  .arg-name { font-weight: 600; }
  pre { background: var(--vscode-textCodeBlock-background); padding: 0.4em 0.6em; white-space: pre-wrap; word-break: break-all; margin: 0.2em 0; }
  #actions { margin-top: 1.4em; display: flex; gap: 0.6em; align-items: center; }`,
  body: `
<main id="call" aria-live="polite"><p class="muted">Loading the call…</p></main>
<div id="actions" hidden>
  <vscode-button id="approve" icon="check">Approve once</vscode-button>
  <vscode-button id="deny" secondary icon="close">Deny</vscode-button>
  <span id="countdown" class="muted"></span>
</div>
<p id="status" role="status"></p>`,
};
