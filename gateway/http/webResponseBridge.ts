/**
 * Serves the SDK's web-standard Streamable HTTP transport from node:http. The SDK's own
 * Node wrapper goes through @hono/node-server, which, when a streamed body's first chunk
 * (the SSE priming event) is ready before the second, waits on a timer before writing:
 * a ~1 ms floor on every call. Here each chunk is written the moment the transport
 * produces it, and the request is presented through a thin read-only view instead of a
 * full `Request` (the body is already parsed and passed separately).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';

/** The parts of `Request` the transport reads: method, url and headers. */
function requestView(req: IncomingMessage): Request {
  const raw = req.headers;
  const headers = {
    get(name: string): string | null {
      const value = raw[name.toLowerCase()];
      if (value === undefined) return null;
      return Array.isArray(value) ? value.join(', ') : value;
    },
    has(name: string): boolean {
      return raw[name.toLowerCase()] !== undefined;
    },
    *entries(): IterableIterator<[string, string]> {
      for (const [name, value] of Object.entries(raw)) {
        if (value !== undefined) yield [name, Array.isArray(value) ? value.join(', ') : value];
      }
    },
  };
  return { method: req.method ?? 'GET', url: `http://${raw.host ?? 'localhost'}${req.url ?? '/'}`, headers } as unknown as Request;
}

export async function serveWebTransport(
  transport: WebStandardStreamableHTTPServerTransport,
  req: IncomingMessage,
  res: ServerResponse,
  parsedBody: unknown,
): Promise<void> {
  const response = await transport.handleRequest(requestView(req), parsedBody === undefined ? {} : { parsedBody });
  await writeWebResponse(response, res);
}

/** Writes a web-standard `Response` to node:http, each body chunk as soon as it is produced. */
export async function writeWebResponse(response: Response, res: ServerResponse): Promise<void> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  res.writeHead(response.status, headers);
  if (!response.body) {
    res.end();
    return;
  }
  const reader = response.body.getReader();
  // A client that goes away cancels the stream, so the transport forgets it.
  res.once('close', () => {
    void reader.cancel().catch(() => undefined);
  });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value)) await new Promise<void>((resolve) => res.once('drain', resolve));
    }
  } catch {
    // Stream cancelled or errored: the connection is finished either way.
  }
  res.end();
}
