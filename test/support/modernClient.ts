/**
 * A 2026-07-28 client for tests: the official SDK v2 client (`@modelcontextprotocol/client`
 * 2.4.0) pinned to 2026-07-28, so it sends stateless requests (`server/discover`, the
 * per-request `_meta` envelope, no session) to the gateway's front, as a modern CLI or agent
 * would, and answers `input_required` results itself with its own handlers.
 */
import { Client, StreamableHTTPClientTransport, type ClientCapabilities } from '@modelcontextprotocol/client';
import type { RunningGateway } from './gatewayHarness';

export const MODERN_VERSION = '2026-07-28';

export async function connectModernClient(
  gateway: RunningGateway,
  serverId: string,
  capabilities: ClientCapabilities = {},
  name = 'modern-test-client',
): Promise<Client> {
  const client = new Client({ name, version: '1.0.0' }, { capabilities, versionNegotiation: { mode: { pin: MODERN_VERSION } } });
  const transport = new StreamableHTTPClientTransport(new URL(gateway.url(serverId)), {
    requestInit: { headers: { Authorization: `Bearer ${gateway.secret}` } },
  });
  await client.connect(transport);
  return client;
}

/** What a raw 2026-07-28 POST got: its HTTP status and JSON-RPC body. */
export interface RawAnswer {
  status: number;
  body: { id?: unknown; result?: Record<string, unknown>; error?: { code: number; message: string; data?: unknown } };
}

/**
 * One 2026-07-28 request as raw HTTP (for what the SDK client would not send, or to see the
 * status): the headers and `_meta` envelope a client puts on it, at `version`.
 */
export async function postModern(
  gateway: RunningGateway,
  serverId: string,
  request: { id?: number; method: string; params?: Record<string, unknown> },
  options: { capabilities?: ClientCapabilities; version?: string } = {},
): Promise<RawAnswer> {
  const version = options.version ?? MODERN_VERSION;
  const params = request.params ?? {};
  const response = await fetch(gateway.url(serverId), {
    method: 'POST',
    headers: {
      authorization: `Bearer ${gateway.secret}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': version,
      'mcp-method': request.method,
      ...(typeof params.name === 'string' ? { 'mcp-name': params.name } : {}),
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: request.id ?? 1,
      method: request.method,
      params: {
        ...params,
        _meta: {
          'io.modelcontextprotocol/protocolVersion': version,
          'io.modelcontextprotocol/clientCapabilities': options.capabilities ?? {},
          'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
        },
      },
    }),
  });
  return { status: response.status, body: (await response.json()) as RawAnswer['body'] };
}

/** Answers every elicitation the client is asked with `content`; returns the messages it was asked. */
export function answerElicitations(client: Client, content: Record<string, unknown>): string[] {
  const asked: string[] = [];
  client.setRequestHandler('elicitation/create', async (request) => {
    asked.push((request.params as { message: string }).message);
    return { action: 'accept', content: content as Record<string, string | number | boolean | string[]> };
  });
  return asked;
}
