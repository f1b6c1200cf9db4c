/**
 * The one JSON line the gateway prints on stdout when it is ready. The extension and the
 * tests read it to learn where each server is served and how the launch secret was
 * delivered. It never contains the secret.
 */
export interface GatewayReadyServer {
  id: string;
  /**
   * `idle`: not started yet; it starts when a client first asks for it (the default, lazy start).
   * `sign-in`: a user-oauth server that asks the user to sign in when first used.
   */
  state: 'idle' | 'starting' | 'ready' | 'failed' | 'sign-in';
  /** Request path on the gateway, e.g. `/mcp/everything`. */
  path: string;
  /** Full URL for TCP listeners; for unix sockets, use `socketPath` with `path`. */
  url?: string;
  error?: string;
  startupMs?: number;
  /** The MCP version spoken with the server once it ran: a 2025 one, or 2026-07-28 (which the gateway bridges for 2025-era clients). */
  protocolVersion?: string;
  /** The catalog's title for it. */
  title?: string;
  /** How its credential is held (never the credential): what the Scopes view shows. */
  credential?: { mode: 'none' } | { mode: 'user-oauth'; scopes?: string[] } | { mode: 'shared-key' } | { mode: 'relay-oauth' };
}

export interface GatewayReadyLine {
  event: 'ready';
  version: string;
  pid: number;
  listen: { type: 'unix'; socketPath: string } | { type: 'tcp'; host: string; port: number };
  launchSecret: { delivery: 'file'; path: string } | { delivery: 'stdin' };
  /** Managed: a policy server decides; unmanaged: everything in the local config is allowed. */
  policy: { mode: 'managed'; version?: number; denial?: string } | { mode: 'unmanaged' };
  servers: GatewayReadyServer[];
  /** Managed: catalog servers the policy does not let this user use, with the reason. */
  blocked?: Array<{ id: string; title: string; reason: string }>;
  /** From process start until the gateway served: with eager start, until every upstream was ready or had failed. */
  startupMs: number;
}

/** Whether a client may use the server: anything but a failed start (an idle one starts when asked, a sign-in one asks). */
export function serverUsable(server: Pick<GatewayReadyServer, 'state'>): boolean {
  return server.state !== 'failed';
}
