/**
 * A test client for the policy server's HTTP API: `api(url)` for request/reply (the reply's
 * JSON read field by field) and `openEvents` for the `/v1/events` stream, recording every
 * event with the time it arrived.
 */
import { createParser } from 'eventsource-parser';
import { request } from 'undici';

/** An open `/v1/events` stream that records every event with the time it arrived. */
export interface EventStream {
  status: number;
  events: Array<{ event: string; data: Record<string, unknown>; at: number }>;
  ended: boolean;
  next(
    predicate: (e: { event: string; data: Record<string, unknown> }) => boolean,
    timeoutMs?: number,
  ): Promise<{ event: string; data: Record<string, unknown>; at: number }>;
  close(): void;
}

export async function openEvents(url: string, token: string): Promise<EventStream> {
  const aborter = new AbortController();
  const response = await request(`${url}/v1/events`, {
    headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
    signal: aborter.signal,
  });
  const stream: EventStream = {
    status: response.statusCode,
    events: [],
    ended: false,
    async next(predicate, timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = stream.events.find(predicate);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no matching event within ${timeoutMs} ms; got ${JSON.stringify(stream.events)}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    close: () => aborter.abort(),
  };
  const parser = createParser({
    onEvent: (e) =>
      stream.events.push({ event: e.event ?? 'message', data: JSON.parse(e.data) as Record<string, unknown>, at: Date.now() }),
  });
  void (async () => {
    try {
      for await (const chunk of response.body) parser.feed(chunk.toString());
    } catch {
      /* aborted */
    }
    stream.ended = true;
  })();
  return stream;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are read field by field; a missing field fails its assertion
export type Reply = { status: number; headers: Headers; text: string; json: any };

export function api(url: string) {
  return async (
    method: string,
    path: string,
    options: { token?: string; json?: unknown; yaml?: string; headers?: Record<string, string> } = {},
  ) => {
    const headers: Record<string, string> = { ...(options.token ? { Authorization: `Bearer ${options.token}` } : {}), ...options.headers };
    let body: string | undefined;
    if (options.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(options.json);
    }
    if (options.yaml !== undefined) {
      headers['Content-Type'] ??= 'application/yaml';
      body = options.yaml;
    }
    const response = await fetch(`${url}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await response.text();
    let json: Reply['json'];
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, headers: response.headers, text, json } as Reply;
  };
}

export async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return condition();
}
