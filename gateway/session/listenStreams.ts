/**
 * `subscriptions/listen` for 2026-07-28 clients of one server: each listen request keeps
 * its HTTP response open as an SSE stream of the list changes the client asked for, every
 * notification on it (the acknowledgement first) tagged with the client's subscription id,
 * which is the listen request's id.
 *  - to a 2026-07-28 server the listen is passed on, and what arrives on the server's stream
 *    comes back under the client's id; the upstream stream ends when the client goes;
 *  - for a 2025-era server the gateway acknowledges itself and relays the list changes the
 *    server announces in its session;
 *  - either way the gateway's own list changes (a new policy) reach every stream.
 * Resource subscriptions (`resourceSubscriptions`) are not relayed yet: the acknowledgement
 * says what is honoured, and it never lists them.
 */
import type { PerRequestHTTPServerTransport } from '@modelcontextprotocol/server';
import type { JSONRPCNotification, JSONRPCRequest, RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { UpstreamConnection } from '../upstream/upstreamConnection';
import { SUBSCRIPTION_ID_META, type ModernEnvelope } from '../upstream/modernProtocol';

/** The list-change kinds a client may ask for, by the notification that announces each. */
const LIST_CHANGES = {
  toolsListChanged: 'notifications/tools/list_changed',
  promptsListChanged: 'notifications/prompts/list_changed',
  resourcesListChanged: 'notifications/resources/list_changed',
} as const;
type Filter = Partial<Record<keyof typeof LIST_CHANGES, true>>;

interface Listener {
  transport: PerRequestHTTPServerTransport;
  /** The client's listen request id: its subscription id. */
  requestId: RequestId;
  filter: Filter;
}

export class ListenStreams {
  /** Streams passed on to a 2026-07-28 server, by the upstream listen's id. */
  private readonly relayed = new Map<number, Listener>();
  /** Streams the gateway answers itself (a 2025-era server). */
  private readonly own = new Set<Listener>();

  /** Opens a listen stream for `request` on `transport`, which stays open until the client or the server ends it. */
  open(connection: UpstreamConnection, request: JSONRPCRequest, transport: PerRequestHTTPServerTransport, envelope: ModernEnvelope): void {
    const filter = filterOf(request.params?.notifications);
    const listener: Listener = { transport, requestId: request.id, filter };
    if (connection.era === 'legacy') {
      this.own.add(listener);
      transport.onclose = () => this.own.delete(listener);
      this.send(listener, { jsonrpc: '2.0', method: 'notifications/subscriptions/acknowledged', params: { notifications: filter } });
      return;
    }
    const { upstreamId, reply } = connection.requestAsIs(
      { method: 'subscriptions/listen', params: { ...request.params, notifications: filter } },
      envelope,
    );
    this.relayed.set(upstreamId, listener);
    transport.onclose = () => {
      if (this.relayed.delete(upstreamId)) connection.endStream(upstreamId);
    };
    // The server ended the stream: its last word (a result or an error) ends the client's.
    const ended = (answer?: { result?: Record<string, unknown>; error?: unknown }) => {
      if (!this.relayed.delete(upstreamId)) return;
      const result = answer?.result
        ? { result: { ...answer.result, _meta: { ...(answer.result._meta as object), [SUBSCRIPTION_ID_META]: request.id } } }
        : undefined;
      const message = result ?? {
        error: (answer?.error as { code: number; message: string }) ?? { code: -32603, message: 'The server ended the subscription' },
      };
      void transport.send({ jsonrpc: '2.0', id: request.id, ...message } as never).catch(() => undefined);
    };
    reply.then(
      (answer) => ended(answer as never),
      () => ended(),
    );
  }

  /** A notification from the server: taken when it belongs to a listen stream (true), else left to the caller. */
  fromServer(notification: JSONRPCNotification, era: 'legacy' | 'modern'): boolean {
    const subscription = (notification.params?._meta as Record<string, unknown> | undefined)?.[SUBSCRIPTION_ID_META];
    if (typeof subscription === 'number') {
      const listener = this.relayed.get(subscription);
      if (!listener) return false;
      const { _meta, ...params } = notification.params ?? {};
      this.send(listener, { jsonrpc: '2.0', method: notification.method, params: { ...params, ...(_meta ? { _meta } : {}) } });
      return true;
    }
    if (era !== 'legacy' || !Object.values(LIST_CHANGES).includes(notification.method as never)) return false;
    for (const listener of this.own)
      if (wants(listener, notification.method)) this.send(listener, { jsonrpc: '2.0', method: notification.method });
    return true;
  }

  /** The gateway changed the lists itself (a new policy): every stream that asked hears it. */
  listsChanged(): void {
    for (const listener of [...this.relayed.values(), ...this.own]) {
      for (const method of Object.values(LIST_CHANGES)) if (wants(listener, method)) this.send(listener, { jsonrpc: '2.0', method });
    }
  }

  /** Ends every stream (the server left the catalog, the gateway stops). */
  closeAll(): void {
    for (const listener of [...this.relayed.values(), ...this.own]) void listener.transport.close();
  }

  /** Sends on the listener's stream, tagged with its subscription id. */
  private send(listener: Listener, notification: JSONRPCNotification): void {
    const meta = { ...(notification.params?._meta as Record<string, unknown> | undefined), [SUBSCRIPTION_ID_META]: listener.requestId };
    const tagged = { ...notification, params: { ...notification.params, _meta: meta } };
    listener.transport.send(tagged, { relatedRequestId: listener.requestId }).catch(() => undefined);
  }
}

/** Only the list changes a client may ask for, each as `true` (anything else in the filter is not honoured). */
function filterOf(requested: unknown): Filter {
  const asked = (typeof requested === 'object' && requested !== null ? requested : {}) as Record<string, unknown>;
  return Object.fromEntries(
    Object.keys(LIST_CHANGES)
      .filter((key) => asked[key] === true)
      .map((key) => [key, true]),
  ) as Filter;
}

function wants(listener: Listener, method: string): boolean {
  return Object.entries(LIST_CHANGES).some(([key, announced]) => announced === method && listener.filter[key as keyof Filter]);
}
