/**
 * The extension side of the webview apps in the top-level `webviews/` folder: the Confirm,
 * Audit and Scopes hosts (confirm/, audit/, scopes/) all open their panel through here.
 *
 * The page around each Gatehouse webview: a strict Content Security Policy (nothing by
 * default; scripts only with this page's fresh nonce; styles and fonts only from the
 * extension's own bundle folder or with the nonce), the codicon font that
 * `@vscode-elements/elements` draws its icons with, VS Code's theme variables, and the
 * bundled script of the app. Panels limit `localResourceRoots` to `bundleRoot()`.
 */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';

export function bundleRoot(extensionUri: vscode.Uri): vscode.Uri {
  return vscode.Uri.joinPath(extensionUri, 'dist', 'webviews');
}

export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewPanelOptions & vscode.WebviewOptions {
  return { enableScripts: true, localResourceRoots: [bundleRoot(extensionUri)] };
}

export interface WebviewPage {
  title: string;
  /** The app's bundle, e.g. `audit.js` in dist/webviews. */
  script: string;
  /** Page-specific CSS (theme variables only). */
  style: string;
  body: string;
}

export function webviewHtml(webview: vscode.Webview, extensionUri: vscode.Uri, page: WebviewPage): string {
  const nonce = randomBytes(16).toString('base64');
  const root = bundleRoot(extensionUri);
  const csp = [
    `default-src 'none'`,
    `style-src ${webview.cspSource} 'nonce-${nonce}'`,
    `font-src ${webview.cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(page.title)}</title>
<link rel="stylesheet" href="${webview.asWebviewUri(vscode.Uri.joinPath(root, 'codicon.css')).toString()}" id="vscode-codicon-stylesheet">
<style nonce="${nonce}">
  body { font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); color: var(--vscode-foreground); background: var(--vscode-editor-background); }
  .muted { color: var(--vscode-descriptionForeground); }
${page.style}
</style>
</head>
<body>
${page.body}
<script nonce="${nonce}" src="${webview.asWebviewUri(vscode.Uri.joinPath(root, page.script)).toString()}"></script>
</body>
</html>`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
