/**
 * What a client session relays, and how: the methods and notifications allowed each way,
 * the capabilities each side is told about, and the words for an upstream failure.
 * Deny when unsure: anything not listed here is not relayed.
 */
import type { ClientCapabilities, ServerCapabilities } from '@modelcontextprotocol/sdk/types.js';
import { describeError } from '../../common/log/logger';
import { UpstreamBackoffError, UpstreamGoneError } from '../upstream/upstreamErrors';

/** Client-to-server methods the gateway relays (shared with the policy server's relay). Anything else is refused. */
export { RELAYED_CLIENT_METHODS } from '../../common/policy/callSubject';

/** Server-to-client requests and the client capability each needs. */
export const RELAYED_SERVER_REQUESTS: Record<string, keyof ClientCapabilities> = {
  'sampling/createMessage': 'sampling',
  'elicitation/create': 'elicitation',
  'roots/list': 'roots',
};

export const RELAYED_SERVER_NOTIFICATIONS = new Set([
  'notifications/progress',
  'notifications/message',
  'notifications/cancelled',
  'notifications/tools/list_changed',
  'notifications/resources/list_changed',
  'notifications/prompts/list_changed',
  'notifications/resources/updated',
  'notifications/elicitation/complete',
]);

/** Notifications about the session as a whole; they go on the standalone stream. */
export const UNRELATED_NOTIFICATIONS = new Set([
  'notifications/tools/list_changed',
  'notifications/resources/list_changed',
  'notifications/prompts/list_changed',
  'notifications/resources/updated',
]);

/** What the upstream is told the client supports: only what the gateway can relay. */
export function relayedClientCapabilities(client: ClientCapabilities): ClientCapabilities {
  const relayed: ClientCapabilities = {};
  if (client.roots) relayed.roots = client.roots;
  if (client.sampling) relayed.sampling = client.sampling;
  if (client.elicitation) relayed.elicitation = client.elicitation;
  return relayed;
}

/**
 * What the client is told the server supports. List-changed is always on because the
 * gateway itself changes lists (policy updates, restarts). Resource subscriptions are
 * relayed to session clients only (a 2026-07-28 client's `resourceSubscriptions` are not
 * relayed yet). Tasks and experimental features are not relayed, so they are not advertised.
 */
export function relayedServerCapabilities(upstream: ServerCapabilities, options = { subscribe: true }): ServerCapabilities {
  const relayed: ServerCapabilities = {};
  if (upstream.tools) relayed.tools = { listChanged: true };
  if (upstream.resources)
    relayed.resources = { listChanged: true, ...(upstream.resources.subscribe && options.subscribe ? { subscribe: true } : {}) };
  if (upstream.prompts) relayed.prompts = { listChanged: true };
  if (upstream.completions) relayed.completions = {};
  if (upstream.logging) relayed.logging = {};
  return relayed;
}

/**
 * How clients see a server's identity: under its stable catalog id (VS Code names tools
 * after it), titled by the catalog, else by the server itself.
 */
export function catalogServerInfo(
  server: { id: string; title?: string | undefined },
  upstream: { name: string; title?: string | undefined; version: string } | undefined,
): { name: string; title?: string; version: string } {
  const title = server.title ?? upstream?.title ?? upstream?.name;
  return { name: server.id, ...(title !== undefined ? { title } : {}), version: upstream?.version ?? 'unknown' };
}

export function upstreamErrorText(serverId: string, error: unknown, method: string): string {
  if (error instanceof UpstreamBackoffError) {
    return `Upstream server "${serverId}" could not complete ${method}: ${error.reason}.`;
  }
  if (error instanceof UpstreamGoneError) {
    return `Upstream server "${serverId}" could not complete ${method}: ${error.reason}. Gatehouse restarts it on the next request.`;
  }
  return `Upstream server "${serverId}" could not complete ${method}: ${describeError(error)}`;
}
