/**
 * Shows the Confirm webview for a call that waits for the developer and resolves with
 * their decision. Closing the panel, or the gateway withdrawing the request (its timeout
 * passed, or the MCP client cancelled), denies. Strict CSP with a fresh nonce; scripts
 * only from the bundled webview file; no other local resources.
 */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import type { ConfirmParams, ConfirmResult } from '../../common/control/controlProtocol';
import { isConfirmViewMessage, type ConfirmHostMessage } from '../../webviews/confirm/confirmProtocol';

export const CONFIRM_VIEW_TYPE = 'gatehouse.confirm';

export function confirmWithPanel(extensionUri: vscode.Uri, call: ConfirmParams, cancelled: vscode.CancellationToken): Promise<ConfirmResult> {
  const bundle = vscode.Uri.joinPath(extensionUri, 'dist', 'webviews');
  const panel = vscode.window.createWebviewPanel(CONFIRM_VIEW_TYPE, `Confirm: ${call.subject}`, { viewColumn: vscode.ViewColumn.Active, preserveFocus: false }, {
    enableScripts: true,
    localResourceRoots: [bundle],
  });
  const deadline = Date.now() + call.timeoutMs;
  panel.webview.html = confirmHtml(panel.webview, vscode.Uri.joinPath(bundle, 'confirm.js'));
  return new Promise<ConfirmResult>((resolve) => {
    let settled = false;
    const subscriptions: vscode.Disposable[] = [];
    const finish = (decision: ConfirmResult['decision']) => {
      if (settled) return;
      settled = true;
      for (const subscription of subscriptions) subscription.dispose();
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

function confirmHtml(webview: vscode.Webview, script: vscode.Uri): string {
  const nonce = randomBytes(16).toString('base64');
  const csp = [`default-src 'none'`, `style-src 'nonce-${nonce}'`, `script-src 'nonce-${nonce}'`].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Confirm a tool call</title>
<style nonce="${nonce}">
  body { font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); color: var(--vscode-foreground); background: var(--vscode-editor-background); padding: 1rem 1.5rem; }
  h1 { font-size: 1.3em; font-weight: 600; }
  h2 { font-size: 1.05em; margin-top: 1.2em; }
  .reason { color: var(--vscode-foreground); }
  .muted { color: var(--vscode-descriptionForeground); }
  .arg { margin: 0.4em 0; }
  .arg-name { font-weight: 600; }
  pre { background: var(--vscode-textCodeBlock-background); padding: 0.4em 0.6em; white-space: pre-wrap; word-break: break-all; margin: 0.2em 0; }
  #actions { margin-top: 1.4em; display: flex; gap: 0.6em; align-items: center; }
  button { font: inherit; padding: 0.35em 1em; border: 1px solid var(--vscode-button-border, transparent); border-radius: 2px; cursor: pointer; }
  button:focus-visible { outline: 1px solid var(--vscode-focusBorder); outline-offset: 2px; }
  #approve { background: var(--vscode-button-background); color: var(--vscode-button-foreground); }
  #deny { background: var(--vscode-button-secondaryBackground); color: var(--vscode-button-secondaryForeground); }
</style>
</head>
<body>
<main id="call" aria-live="polite"><p class="muted">Loading the call…</p></main>
<div id="actions" hidden>
  <button id="approve" type="button">Approve once</button>
  <button id="deny" type="button">Deny</button>
  <span id="countdown" class="muted"></span>
</div>
<p id="status" role="status"></p>
<script nonce="${nonce}" src="${webview.asWebviewUri(script).toString()}"></script>
</body>
</html>`;
}
