/**
 * Extension entry point and its one composition root. This foundation build only logs that
 * it is active; the sidebar, MCP server definition provider and gateway supervision are
 * built here in the extension issue (#5), each constructed in activate() and registered
 * on `context.subscriptions`.
 */
import * as vscode from 'vscode';

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('Gatehouse', { log: true });
  context.subscriptions.push(log);
  log.info('Gatehouse activated (foundation build: gateway CLI only, no sidebar yet)');
}

export function deactivate(): void {
  // Everything is disposed through context.subscriptions.
}
