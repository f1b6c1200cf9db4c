/**
 * What a 2025-era client's session needs from a 2026-07-28 server that the server no
 * longer offers as such, done by the gateway on the client's behalf:
 *  - `ping`: answered by the gateway (the session the client checks is the gateway's);
 *  - `logging/setLevel`: remembered, and asked for on every later request (a 2026-07-28
 *    server logs only when a request names a level);
 *  - list changes and `resources/subscribe`/`unsubscribe`: one `subscriptions/listen`
 *    stream, opened when the session starts, opened again (then the old one closed) when
 *    the set of subscribed resources changes, and opened again (with backoff) when the
 *    server ends it; what arrives on it reaches the client as the 2025-era notifications it
 *    always was.
 */
import type { JSONRPCNotification, JSONRPCRequest, ServerCapabilities } from '@modelcontextprotocol/sdk/types.js';
import { SUBSCRIPTION_ID_META, type ModernEnvelope } from './modernProtocol';

/** The 2025-era methods the bridge answers itself for a modern server. */
export const BRIDGED_METHODS = new Set(['ping', 'logging/setLevel', 'resources/subscribe', 'resources/unsubscribe']);

type Answer = { result: Record<string, unknown> } | { error: { code: number; message: string } };

/** How the bridge reaches the server: raw requests in the modern form, closing one's stream, whether the connection lives. */
export interface BridgeLink {
  listen(params: NonNullable<JSONRPCRequest['params']>): { upstreamId: number; reply: Promise<unknown> };
  stop(upstreamId: number): void;
  alive(): boolean;
}

/** A listen stream that ended is opened again after 1 s, doubling up to a minute while it keeps ending within 30 s. */
const FIRST_REOPEN_MS = 1_000;
const MAX_REOPEN_MS = 60_000;
const STEADY_MS = 30_000;

export class SessionBridge {
  private readonly subscribed = new Set<string>();
  /** The upstream id of the listen stream now open (its notifications carry it as their subscription id). */
  private listening: number | undefined;
  /** Every listen stream of the bridge not ended yet (one being replaced may still deliver). */
  private readonly streams = new Set<number>();
  /** When the server ended the stream: the wait before it is opened again. */
  private reopenMs = FIRST_REOPEN_MS / 2;
  private reopening: NodeJS.Timeout | undefined;

  constructor(
    private readonly envelope: ModernEnvelope,
    private readonly capabilities: ServerCapabilities,
    private readonly link: BridgeLink,
  ) {}

  /** Answers one of BRIDGED_METHODS. */
  answer(method: string, params: JSONRPCRequest['params']): Answer {
    switch (method) {
      case 'logging/setLevel':
        if (typeof params?.level !== 'string') return { error: { code: -32602, message: 'logging/setLevel: level must be a string' } };
        this.envelope.logLevel = params.level;
        return { result: {} };
      case 'resources/subscribe':
      case 'resources/unsubscribe': {
        if (!this.capabilities.resources?.subscribe) {
          return { error: { code: -32601, message: `Method not found: the server offers no resource subscriptions (${method})` } };
        }
        if (typeof params?.uri !== 'string') return { error: { code: -32602, message: `${method}: uri must be a string` } };
        const changed = method === 'resources/subscribe' ? !this.subscribed.has(params.uri) : this.subscribed.has(params.uri);
        if (method === 'resources/subscribe') this.subscribed.add(params.uri);
        else this.subscribed.delete(params.uri);
        if (changed) this.follow();
        return { result: {} };
      }
      default:
        return { result: {} }; // ping
    }
  }

  /**
   * Opens the listen stream for what the server can announce (list changes, subscribed
   * resources); a stream already open is closed once the new one is asked for, so no
   * change falls between the two.
   */
  follow(): void {
    clearTimeout(this.reopening);
    this.reopening = undefined;
    const filter = {
      ...(this.capabilities.tools?.listChanged ? { toolsListChanged: true } : {}),
      ...(this.capabilities.prompts?.listChanged ? { promptsListChanged: true } : {}),
      ...(this.capabilities.resources?.listChanged ? { resourcesListChanged: true } : {}),
      ...(this.subscribed.size > 0 ? { resourceSubscriptions: [...this.subscribed] } : {}),
    };
    const previous = this.listening;
    this.listening = undefined;
    if (Object.keys(filter).length > 0) {
      const { upstreamId, reply } = this.link.listen({ notifications: filter });
      this.listening = upstreamId;
      this.streams.add(upstreamId);
      const opened = Date.now();
      // The server (or something between) ended the stream the session relies on: it is
      // opened again, sooner when it had lasted, later when it keeps ending at once.
      const ended = () => {
        this.streams.delete(upstreamId);
        if (this.listening !== upstreamId) return; // replaced or closed by the bridge itself
        this.listening = undefined;
        if (!this.link.alive()) return;
        this.reopenMs = Date.now() - opened > STEADY_MS ? FIRST_REOPEN_MS : Math.min(this.reopenMs * 2, MAX_REOPEN_MS);
        this.reopening = setTimeout(() => {
          this.reopening = undefined;
          if (this.listening === undefined && this.link.alive()) this.follow();
        }, this.reopenMs);
        this.reopening.unref();
      };
      reply.then(ended, ended);
    }
    if (previous !== undefined) {
      this.streams.delete(previous);
      this.link.stop(previous);
    }
  }

  /**
   * A notification from the server as the 2025-era client should get it: one from the
   * bridge's listen streams without the subscription id (their acknowledgements not at
   * all); any other as it came.
   */
  relayed(notification: JSONRPCNotification): JSONRPCNotification | undefined {
    const meta = notification.params?._meta as Record<string, unknown> | undefined;
    const subscription = meta?.[SUBSCRIPTION_ID_META];
    if (typeof subscription !== 'number' || !this.streams.has(subscription)) return notification;
    if (notification.method === 'notifications/subscriptions/acknowledged') return undefined;
    const { [SUBSCRIPTION_ID_META]: _id, ...rest } = meta!;
    const params = { ...notification.params, ...(Object.keys(rest).length > 0 ? { _meta: rest } : {}) };
    if (Object.keys(rest).length === 0) delete params._meta;
    return { ...notification, params };
  }
}
