/**
 * A remote MCP server protected by OAuth (TEST FIXTURE, a real resource server): Streamable
 * HTTP on 127.0.0.1 with RFC 9728 protected-resource metadata naming the test's IdP, and
 * JWT access tokens verified with jose against the IdP's JWKS: issuer, audience (this
 * server's URL, RFC 8707), expiry. Scopes: `notes:read` for everything, `notes:write` also
 * for `write_note` (403 `insufficient_scope` otherwise, so clients step up). Records every
 * Authorization header it was sent. Tools: `read_note`, `write_note`, `whoami` (the token's
 * subject, to show whose token arrived), `leak_token` (answers with the Authorization header
 * that opened the session, as a careless upstream might).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { z } from 'zod';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { McpSessions } from './mcpSessions';

export const READ_SCOPE = 'notes:read';
export const WRITE_SCOPE = 'notes:write';

export interface OAuthUpstream {
  url: string;
  /** Every Authorization header received, in order ('' when none). */
  authorizations: string[];
  /** Point it at its authorization server (the IdP starts after the port is known). */
  trust(issuer: string): void;
  /** From now on, tokens issued before now are refused (`invalid_token`), as after a revocation at the upstream. */
  refuseTokensIssuedUntilNow(): void;
  stop(): Promise<void>;
}

/** Listens first (so the IdP can name this URL as a resource); call `trust` before use. */
export async function startOAuthUpstream(): Promise<OAuthUpstream> {
  const authorizations: string[] = [];
  const sessions = new McpSessions();
  let issuer = '';
  let jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  let notBeforeSeconds = 0;
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const url = `${origin}/mcp`;
  const metadataUrl = `${origin}/.well-known/oauth-protected-resource/mcp`;

  const serverFor = (subject: string, authorization: string) => {
    const mcp = new McpServer({ name: 'notes', version: '1.0.0' });
    const text = (t: string) => ({ content: [{ type: 'text' as const, text: t }] });
    mcp.registerTool('read_note', { inputSchema: { id: z.string() } }, ({ id }) => text(`note ${id}: hello`));
    mcp.registerTool('write_note', { inputSchema: { id: z.string(), text: z.string() } }, ({ id }) => text(`saved note ${id}`));
    mcp.registerTool('whoami', {}, () => text(`token subject: ${subject}`));
    // An upstream that echoes its credential (a debug tool, an error quoting headers).
    mcp.registerTool('leak_token', {}, () => text(`I was called with: ${authorization}`));
    return mcp;
  };

  const challenge = (res: import('node:http').ServerResponse, status: 401 | 403, scope: string, error: string) => {
    res
      .writeHead(status, {
        'content-type': 'application/json',
        'www-authenticate': `Bearer error="${error}", scope="${scope}", resource_metadata="${metadataUrl}"`,
      })
      .end(JSON.stringify({ error }));
  };

  server.on('request', async (req, res) => {
    if (req.method === 'GET' && req.url === '/.well-known/oauth-protected-resource/mcp') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          resource: url,
          authorization_servers: [issuer],
          scopes_supported: [READ_SCOPE, WRITE_SCOPE],
          bearer_methods_supported: ['header'],
        }),
      );
      return;
    }
    authorizations.push(req.headers.authorization ?? '');
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = chunks.length > 0 ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown) : undefined;
    const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!token || !jwks) return challenge(res, 401, READ_SCOPE, 'invalid_token');
    let scopes: string[];
    let subject: string;
    try {
      const { payload } = await jwtVerify(token, jwks, { issuer, audience: url });
      if ((payload.iat ?? 0) <= notBeforeSeconds) throw new Error('revoked here');
      scopes = typeof payload.scope === 'string' ? payload.scope.split(' ') : [];
      subject = String(payload.sub);
    } catch {
      return challenge(res, 401, READ_SCOPE, 'invalid_token');
    }
    if (!scopes.includes(READ_SCOPE)) return challenge(res, 403, READ_SCOPE, 'insufficient_scope');
    const calls = (Array.isArray(body) ? body : [body]) as Array<{ method?: string; params?: { name?: string } }>;
    if (calls.some((m) => m?.method === 'tools/call' && m.params?.name === 'write_note') && !scopes.includes(WRITE_SCOPE)) {
      return challenge(res, 403, `${READ_SCOPE} ${WRITE_SCOPE}`, 'insufficient_scope');
    }
    await sessions.handle(req, res, body, () => serverFor(subject, req.headers.authorization ?? ''));
  });

  return {
    url,
    authorizations,
    refuseTokensIssuedUntilNow: () => {
      notBeforeSeconds = Math.floor(Date.now() / 1000);
    },
    trust: (next) => {
      issuer = next;
      jwks = createRemoteJWKSet(new URL(`${next}/jwks`));
    },
    stop: async () => {
      await sessions.closeAll();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
