/**
 * A 2026-07-28 server says how long each list (and resource read) stays good (`ttlMs`);
 * for a 2025-era client's session the gateway keeps the server's answers that long, so
 * the client's repeated lists cost no round trip. What is kept is the server's answer
 * (the policy, pins and redaction still run on every use), for one connection only (one
 * client's session), and forgotten as soon as the server announces a change on the
 * session's listen stream.
 */
import type { JSONRPCRequest } from '@modelcontextprotocol/sdk/types.js';

/** The cacheable methods, by the notification that says their answers changed. */
const CHANGED_BY: Record<string, string> = {
  'tools/list': 'notifications/tools/list_changed',
  'prompts/list': 'notifications/prompts/list_changed',
  'resources/list': 'notifications/resources/list_changed',
  'resources/templates/list': 'notifications/resources/list_changed',
  'resources/read': 'notifications/resources/updated',
};
/** A server asking for longer than a day is held to a day. */
const MAX_TTL_MS = 24 * 60 * 60_000;
/** Enough for every page of every list of a server; the oldest goes first. */
const MAX_ENTRIES = 256;

export class ListCache {
  private readonly entries = new Map<string, { result: Record<string, unknown>; until: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** The server's answer to the same request, while it is good. */
  get(method: string, params: JSONRPCRequest['params']): Record<string, unknown> | undefined {
    if (!(method in CHANGED_BY)) return undefined;
    const key = keyOf(method, params);
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.until > this.now()) return entry.result;
    this.entries.delete(key);
    return undefined;
  }

  /** Keeps a complete answer for the `ttlMs` it came with (nothing when it gave none, or 0). */
  put(method: string, params: JSONRPCRequest['params'], modernResult: Record<string, unknown>, answer: Record<string, unknown>): void {
    const ttlMs = modernResult.ttlMs;
    if (!(method in CHANGED_BY) || modernResult.resultType !== 'complete' || typeof ttlMs !== 'number' || !(ttlMs > 0)) return;
    if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(keyOf(method, params), { result: answer, until: this.now() + Math.min(ttlMs, MAX_TTL_MS) });
  }

  /** The server announced a change: what it changes is forgotten (for an updated resource, that resource's reads). */
  changed(notification: { method: string; params?: Record<string, unknown> }): void {
    const uri = notification.params?.uri;
    for (const key of [...this.entries.keys()]) {
      const { method, params } = JSON.parse(key) as { method: string; params: Record<string, unknown> };
      if (CHANGED_BY[method] !== notification.method) continue;
      if (method === 'resources/read' && typeof uri === 'string' && params.uri !== uri) continue;
      this.entries.delete(key);
    }
  }
}

/** The request without its `_meta` (per-request envelope, progress token): the same question asked again. */
function keyOf(method: string, params: JSONRPCRequest['params']): string {
  const { _meta: _ignored, ...rest } = params ?? {};
  return JSON.stringify({ method, params: rest });
}
