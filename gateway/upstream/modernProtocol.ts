/**
 * The gateway's side of MCP 2026-07-28 ("modern") upstreams, for the bridge that lets a
 * 2025-era client (VS Code) use them. A modern server has no `initialize` and no session:
 * every request carries the protocol version, the client's capabilities and its identity
 * in `_meta`, over HTTP also as `MCP-Protocol-Version` / `Mcp-Method` / `Mcp-Name`
 * headers, and `server/discover` says what the server is. The gateway finds a server's era
 * by asking `server/discover` first and falling back to `initialize` on anything but a
 * modern answer (the spec's order for a client that speaks both), then keeps the client's
 * session itself and sends each relayed request in the modern form.
 *
 * The same helpers serve 2026-07-28 clients at the gateway's front
 * (session/statelessRequests.ts); what a 2025-era session needs beyond them is in
 * sessionBridge.ts (ping, log level, listen streams) and listCache.ts (`ttlMs`).
 */
import type { JSONRPCMessage, JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';

export const MODERN_PROTOCOL_VERSION = '2026-07-28';
export const PROTOCOL_VERSION_META = 'io.modelcontextprotocol/protocolVersion';
export const CLIENT_CAPABILITIES_META = 'io.modelcontextprotocol/clientCapabilities';
export const CLIENT_INFO_META = 'io.modelcontextprotocol/clientInfo';
export const SERVER_INFO_META = 'io.modelcontextprotocol/serverInfo';
export const LOG_LEVEL_META = 'io.modelcontextprotocol/logLevel';
export const SUBSCRIPTION_ID_META = 'io.modelcontextprotocol/subscriptionId';
const MODERN_META_KEYS = new Set([PROTOCOL_VERSION_META, CLIENT_CAPABILITIES_META, CLIENT_INFO_META]);

/** What every modern request carries about its client (the gateway, on the developer's client's behalf). */
export interface ModernEnvelope {
  clientCapabilities: Record<string, unknown>;
  clientInfo: { name: string; version: string };
  /** The log level a 2025-era client set with `logging/setLevel`: a modern server logs only when a request asks. */
  logLevel?: string;
}

/** `server/discover`'s result (2026-07-28 `DiscoverResult`), as far as the gateway reads it. */
export interface DiscoverResult {
  supportedVersions: string[];
  capabilities: Record<string, unknown>;
  instructions?: string;
  _meta?: Record<string, unknown>;
}

/** `params` with the modern per-request fields added to its `_meta`. */
export function withModernMeta(params: JSONRPCRequest['params'], envelope: ModernEnvelope): NonNullable<JSONRPCRequest['params']> {
  const meta = (params?._meta ?? {}) as Record<string, unknown>;
  return {
    ...params,
    _meta: {
      ...meta,
      [PROTOCOL_VERSION_META]: MODERN_PROTOCOL_VERSION,
      [CLIENT_CAPABILITIES_META]: envelope.clientCapabilities,
      [CLIENT_INFO_META]: envelope.clientInfo,
      ...(envelope.logLevel !== undefined ? { [LOG_LEVEL_META]: envelope.logLevel } : {}),
    },
  };
}

/** `params` without the modern per-request `_meta` fields, for a 2025-era server (which has them from `initialize`). */
export function withoutModernMeta(params: JSONRPCRequest['params']): JSONRPCRequest['params'] {
  const meta = params?._meta as Record<string, unknown> | undefined;
  if (!meta) return params;
  const kept = Object.fromEntries(Object.entries(meta).filter(([key]) => !MODERN_META_KEYS.has(key)));
  const { _meta: _all, ...rest } = params!;
  return Object.keys(kept).length > 0 ? { ...rest, _meta: kept } : rest;
}

/** Whether a `server/discover` result says the server speaks the modern protocol. */
export function isModernDiscovery(result: unknown): result is DiscoverResult {
  const candidate = result as Partial<DiscoverResult> | undefined;
  return (
    Array.isArray(candidate?.supportedVersions) &&
    candidate.supportedVersions.includes(MODERN_PROTOCOL_VERSION) &&
    typeof candidate.capabilities === 'object' &&
    candidate.capabilities !== null
  );
}

/**
 * A modern result as a 2025-era client expects it: without `resultType`, `ttlMs`,
 * `cacheScope` and the server's identity in `_meta`. (An `input_required` result never
 * gets here: the connection answers it with a round of questions to the client first.)
 */
export function legacyResult(result: Record<string, unknown>): Record<string, unknown> {
  const { resultType: _type, ttlMs: _ttl, cacheScope: _scope, _meta, ...rest } = result;
  if (_meta && typeof _meta === 'object') {
    const { [SERVER_INFO_META]: _server, ...meta } = _meta as Record<string, unknown>;
    if (Object.keys(meta).length > 0) return { ...rest, _meta: meta };
  }
  return rest;
}

/** Results a 2026-07-28 client may cache, which must say for how long and for whom. */
const CACHEABLE_METHODS = new Set([
  'server/discover',
  'tools/list',
  'prompts/list',
  'resources/list',
  'resources/templates/list',
  'resources/read',
]);

/**
 * A result as the gateway gives it to a 2026-07-28 client: `resultType` stamped (a
 * 2025-era server's result is complete), cacheable ones with the server's `ttlMs` (0, do
 * not reuse, when it gave none) and always `cacheScope: private` (the gateway filters
 * lists for this user, so no answer is fit for another), and the gateway's name for the
 * server as `serverInfo`, as `initialize` gives it.
 */
export function modernResult(
  method: string,
  result: Record<string, unknown>,
  serverInfo: Record<string, unknown>,
): Record<string, unknown> {
  const stamped: Record<string, unknown> = { ...result, resultType: result.resultType ?? 'complete' };
  if (CACHEABLE_METHODS.has(method) && stamped.resultType === 'complete') {
    stamped.ttlMs = typeof result.ttlMs === 'number' && result.ttlMs >= 0 ? result.ttlMs : 0;
    stamped.cacheScope = 'private';
  }
  stamped._meta = { ...(result._meta as Record<string, unknown> | undefined), [SERVER_INFO_META]: serverInfo };
  return stamped;
}

/** The 2026-07-28 error for a version the server does not speak (`data: {supported, requested}`). */
export const UNSUPPORTED_PROTOCOL_VERSION = -32022;
/** The 2025-era SDKs' code for a resource that does not exist. */
const RESOURCE_NOT_FOUND_2025 = -32002;
const INVALID_PARAMS = -32602;

/** A client's envelope as its request's `_meta` carries it (the SDK's classification has checked it). */
export function envelopeOf(request: JSONRPCRequest): ModernEnvelope {
  const meta = (request.params?._meta ?? {}) as Record<string, unknown>;
  const info = meta[CLIENT_INFO_META] as { name?: unknown; version?: unknown } | undefined;
  return {
    clientInfo: {
      name: typeof info?.name === 'string' ? info.name : 'unknown',
      version: typeof info?.version === 'string' ? info.version : 'unknown',
    },
    clientCapabilities: (meta[CLIENT_CAPABILITIES_META] ?? {}) as Record<string, unknown>,
  };
}

/**
 * An error in the 2026-07-28 vocabulary: a 2025-era server's refusal to read a resource
 * ("not found", -32002, or Invalid Params) is Invalid Params naming the URI (SEP-2164).
 */
export function modernError(request: JSONRPCRequest, error: { code: number; message: string; data?: unknown }) {
  const refusedRead = error.code === RESOURCE_NOT_FOUND_2025 || error.code === INVALID_PARAMS;
  if (!refusedRead || request.method !== 'resources/read') return { error };
  const data = typeof error.data === 'object' && error.data !== null ? error.data : {};
  return { error: { code: INVALID_PARAMS, message: error.message, data: { ...data, uri: request.params?.uri } } };
}

/** Methods whose `Mcp-Name` header carries what they act on. */
const NAMED_METHODS: Record<string, 'name' | 'uri'> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri' };

/**
 * The HTTP headers a modern request must carry, derived from the message itself (empty for
 * a 2025-era message): the version from its `_meta`, its method, and what it names.
 */
export function modernHeaders(message: JSONRPCMessage): Record<string, string> {
  if (!('method' in message)) return {};
  const params = (message.params ?? {}) as Record<string, unknown>;
  const version = (params._meta as Record<string, unknown> | undefined)?.[PROTOCOL_VERSION_META];
  if (typeof version !== 'string') return {};
  const headers: Record<string, string> = { 'mcp-protocol-version': version, 'mcp-method': headerValue(message.method) };
  const field = NAMED_METHODS[message.method];
  const named = field ? params[field] : undefined;
  if (typeof named === 'string') headers['mcp-name'] = headerValue(named);
  return headers;
}

/** A header value as the spec encodes it: plain printable ASCII as is, anything else as `=?base64?...?=`. */
function headerValue(value: string): string {
  return /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(value) ? value : `=?base64?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}
