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
