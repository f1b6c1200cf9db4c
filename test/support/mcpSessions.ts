/**
 * Session-keeping Streamable HTTP for the tests' own MCP servers (TEST FIXTURE helper):
 * a request with a known session id goes to its transport; an `initialize` without one
 * opens a session on a new server from `open`; anything else gets 404.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';

export class McpSessions {
  private readonly sessions = new Map<string, StreamableHTTPServerTransport>();

  async handle(req: IncomingMessage, res: ServerResponse, body: unknown, open: () => McpServer): Promise<void> {
    const sessionId = req.headers['mcp-session-id'];
    let transport = typeof sessionId === 'string' ? this.sessions.get(sessionId) : undefined;
    if (!transport) {
      if (req.method !== 'POST' || !isInitializeRequest(body)) {
        res.writeHead(404).end();
        return;
      }
      const created = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          this.sessions.set(id, created);
        },
      });
      transport = created;
      await open().connect(created);
    }
    await transport.handleRequest(req, res, body);
  }

  async closeAll(): Promise<void> {
    for (const transport of this.sessions.values()) await transport.close().catch(() => undefined);
  }
}
