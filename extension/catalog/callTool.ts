/**
 * "Call tool…" on a tool in the sidebar: runs it once through VS Code's own MCP client
 * (`vscode.lm.invokeTool`), so the call takes the path a model's call takes (gateway,
 * policy, confirmation, redaction, audit) without needing a chat model. Arguments are asked
 * for as a JSON object and must parse before anything is sent; the result opens in an
 * editor.
 */
import * as vscode from 'vscode';
import { mcpDefinitionId } from '../ids';
import { describeError } from '../../common/log/logger';

export interface ToolRef {
  serverId: string;
  tool: { name: string };
}

export async function callToolFromSidebar(ref: ToolRef | undefined, log: vscode.LogOutputChannel): Promise<void> {
  if (!ref) return void vscode.window.showInformationMessage('Pick a tool under a server in the Gatehouse sidebar to call it.');
  const tool = await liveTool(ref);
  if (!tool) {
    return void vscode.window.showWarningMessage(
      `${ref.tool.name} on ${ref.serverId} is not available to VS Code: enable the server and start it first.`,
    );
  }
  const text = await vscode.window.showInputBox({
    title: `Call ${ref.tool.name} on ${ref.serverId}`,
    prompt: 'Arguments as a JSON object',
    value: '{}',
    validateInput: (value) => (parseArguments(value) ? undefined : 'Enter a JSON object, e.g. {"path": "README.md"}'),
  });
  if (text === undefined) return;
  const input = parseArguments(text)!;
  let output: string;
  try {
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Calling ${ref.tool.name} on ${ref.serverId}…`, cancellable: true },
      (_progress, token) => vscode.lm.invokeTool(tool.name, { input, toolInvocationToken: undefined }, token),
    );
    output = result.content.map((part) => (part instanceof vscode.LanguageModelTextPart ? part.value : '')).join('\n');
  } catch (error) {
    output = `The call was refused or failed:\n\n${describeError(error)}`;
    log.warn(`${ref.serverId}/${ref.tool.name}: ${describeError(error)}`);
  }
  const document = await vscode.workspace.openTextDocument({ content: output, language: 'markdown' });
  await vscode.window.showTextDocument(document, { preview: true });
}

/** The tool as VS Code's MCP client offers it, starting the server if VS Code has not yet. */
async function liveTool(ref: ToolRef): Promise<vscode.LanguageModelToolInformation | undefined> {
  const find = () => {
    const named = vscode.lm.tools.filter((tool) => tool.tags.includes('mcp') && tool.name.endsWith(`_${ref.tool.name}`));
    // VS Code prefixes MCP tools with a name derived from the server's; prefer that one when several servers share a tool name.
    return named.length > 1 ? named.find((tool) => tool.name.includes(ref.serverId)) : named[0];
  };
  if (find()) return find();
  await vscode.commands.executeCommand('workbench.mcp.startServer', mcpDefinitionId(ref.serverId), { waitForLiveTools: true });
  return find();
}

function parseArguments(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
