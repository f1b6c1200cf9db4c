/**
 * A remote MCP server that takes a shared service key (TEST FIXTURE): Streamable HTTP on
 * 127.0.0.1, answering only requests that carry `Authorization: Bearer <the current key>`
 * (401 otherwise), and recording every Authorization header it was sent, so a test can show
 * the user's own token never arrived. Tools: `echo`; `leak`, which answers with the
 * Authorization header it received (an upstream that echoes its credential); `drop_table`,
 * which the tests' policy denies. The key can be changed while it runs (rotation).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { McpSessions } from './mcpSessions';

export interface KeyedUpstream {
  url: string;
  /** Every Authorization header received, in order. */
  authorizations: string[];
  /** Every request body received, as text. */
  bodies: string[];
  setKey(key: string): void;
  stop(): Promise<void>;
}

export async function startKeyedUpstream(initialKey: string): Promise<KeyedUpstream> {
  let key = initialKey;
  const authorizations: string[] = [];
  const bodies: string[] = [];
  const sessions = new McpSessions();

  const serverFor = (request: IncomingMessage) => {
    const mcp = new McpServer({ name: 'keyed-upstream', version: '1.0.0' });
    const text = (t: string) => ({ content: [{ type: 'text' as const, text: t }] });
    mcp.registerTool('echo', { inputSchema: { text: z.string() } }, ({ text: t }) => text(t));
    mcp.registerTool('leak', {}, () => text(`I was called with: ${request.headers.authorization ?? 'nothing'}`));
    mcp.registerTool('drop_table', { inputSchema: { table: z.string() } }, ({ table }) => text(`dropped ${table}`));
    return mcp;
  };

  const server: Server = createServer(async (req, res) => {
    authorizations.push(req.headers.authorization ?? '');
    if (req.headers.authorization !== `Bearer ${key}`) {
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_token' }));
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (chunks.length > 0) bodies.push(Buffer.concat(chunks).toString('utf8'));
    const body = chunks.length > 0 ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown) : undefined;
    // The tools see the headers of the request that opened the session (enough for `leak`).
    await sessions.handle(req, res, body, () => serverFor(req));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    authorizations,
    bodies,
    setKey: (next) => {
      key = next;
    },
    stop: async () => {
      await sessions.closeAll();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
