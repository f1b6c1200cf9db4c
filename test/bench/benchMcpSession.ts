/**
 * MCP over raw HTTP for the benchmarks: session set-up (initialize, initialized) and
 * reading JSON-RPC results out of plain JSON or SSE bodies, without an SDK client in the
 * measured path.
 */
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { describeError } from '../../common/log/logger';
import { sleep } from './benchProcesses';

export const TOOL_TEXT = 'This is a simple text response for testing.';
export const TOOL_CALL_BODY = (id: string | number) =>
  JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'test_simple_text', arguments: {} } });

/** JSON-RPC messages in a response body, whether plain JSON or SSE `data:` lines. */
export function rpcMessages(body: string): Array<Record<string, unknown>> {
  const trimmed = body.trimStart();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    const parsed = JSON.parse(trimmed) as unknown;
    return (Array.isArray(parsed) ? parsed : [parsed]) as Array<Record<string, unknown>>;
  }
  const messages: Array<Record<string, unknown>> = [];
  for (const event of body.split(/\r?\n\r?\n/)) {
    const data = event
      .split(/\r?\n/)
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).trimStart())
      .join('\n');
    if (data.trim()) messages.push(JSON.parse(data) as Record<string, unknown>);
  }
  return messages;
}

/** True when `body` carries the JSON-RPC result of test_simple_text (for `id`, if given). */
export function isToolResult(body: string, id?: string | number): boolean {
  try {
    return rpcMessages(body).some((m) => {
      const content = (m.result as { content?: Array<{ type?: string; text?: string }> } | undefined)?.content;
      return (id === undefined || m.id === id) && content?.[0]?.type === 'text' && content[0].text === TOOL_TEXT;
    });
  } catch {
    return false;
  }
}

export interface McpSession {
  url: string;
  /** Headers every request of the session carries (auth, session id, protocol version). */
  headers: Record<string, string>;
  /** The tools/call body for a JSON-RPC id (TOOL_CALL_BODY unless the session's era needs another). */
  body?: (id: string | number) => string;
}

const MODERN_VERSION = '2026-07-28';

/** A 2026-07-28 tools/call: no session, the client's envelope in `_meta`. */
export const MODERN_TOOL_CALL_BODY = (id: string | number) =>
  JSON.stringify({
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: {
      name: 'test_simple_text',
      arguments: {},
      _meta: {
        'io.modelcontextprotocol/protocolVersion': MODERN_VERSION,
        'io.modelcontextprotocol/clientCapabilities': {},
        'io.modelcontextprotocol/clientInfo': { name: 'gatehouse-bench', version: '1.0.0' },
      },
    },
  });

/**
 * A 2026-07-28 "session": nothing to open (each request stands alone), only the headers
 * every request carries, checked with one tools/call.
 */
export async function modernSession(url: string, extraHeaders: Record<string, string> = {}): Promise<McpSession> {
  const headers = {
    'Content-Type': 'application/json',
    Accept: 'application/json, text/event-stream',
    'mcp-protocol-version': MODERN_VERSION,
    'mcp-method': 'tools/call',
    'mcp-name': 'test_simple_text',
    ...extraHeaders,
  };
  const probe = await post(url, headers, MODERN_TOOL_CALL_BODY('probe'));
  if (probe.status !== 200 || !isToolResult(probe.text, 'probe')) {
    throw new Error(`${url}: probe tools/call (2026-07-28) failed (HTTP ${probe.status}): ${probe.text.slice(0, 500)}`);
  }
  return { url, headers, body: MODERN_TOOL_CALL_BODY };
}

async function post(
  url: string,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; headers: Headers; text: string }> {
  const response = await fetch(url, { method: 'POST', headers, body });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/**
 * initialize + notifications/initialized, then one checked tools/call. Retries while the
 * port refuses connections (a peer proxy that is still starting), up to `timeoutMs`.
 */
export async function openSession(
  url: string,
  extraHeaders: Record<string, string> = {},
  capabilities: Record<string, unknown> = {},
  options: { protocolVersion?: string; timeoutMs?: number } = {},
): Promise<McpSession> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const base = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...extraHeaders };
  const initialize = JSON.stringify({
    jsonrpc: '2.0',
    id: 0,
    method: 'initialize',
    params: {
      protocolVersion: options.protocolVersion ?? LATEST_PROTOCOL_VERSION,
      capabilities,
      clientInfo: { name: 'gatehouse-bench', version: '1.0.0' },
    },
  });
  const deadline = Date.now() + timeoutMs;
  let init: Awaited<ReturnType<typeof post>>;
  for (;;) {
    try {
      init = await post(url, base, initialize);
      break;
    } catch (error) {
      if (Date.now() > deadline)
        throw new Error(`${url}: no answer to initialize within ${timeoutMs} ms: ${describeError(error)}`, { cause: error });
      await sleep(100);
    }
  }
  const sessionId = init.headers.get('mcp-session-id');
  const result = rpcMessages(init.text).find((m) => m.id === 0)?.result as { protocolVersion?: string } | undefined;
  if (init.status !== 200 || !sessionId || !result?.protocolVersion) {
    throw new Error(`${url}: initialize failed (HTTP ${init.status}, session ${sessionId ?? 'none'}): ${init.text.slice(0, 500)}`);
  }
  const headers = { ...base, 'mcp-session-id': sessionId, 'mcp-protocol-version': result.protocolVersion };
  const initialized = await post(url, headers, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
  if (initialized.status !== 202 && initialized.status !== 200) {
    throw new Error(`${url}: notifications/initialized got HTTP ${initialized.status}: ${initialized.text.slice(0, 500)}`);
  }
  const probe = await post(url, headers, TOOL_CALL_BODY('probe'));
  if (probe.status !== 200 || !isToolResult(probe.text, 'probe')) {
    throw new Error(`${url}: probe tools/call failed (HTTP ${probe.status}): ${probe.text.slice(0, 500)}`);
  }
  return { url, headers };
}
