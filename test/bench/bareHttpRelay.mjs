/**
 * BENCH FIXTURE, not product code: the floor of any second HTTP hop in Node. It forwards
 * each request's bytes to one upstream URL over keep-alive connections and pipes the
 * answer back (SSE streams included), with no parsing, no MCP, no checks. The gateway
 * bench measures it beside the gateway, so the gateway's added latency and CPU can be
 * read against what merely being a Node HTTP proxy costs on the same machine.
 *
 *   node test/bench/bareHttpRelay.mjs http://127.0.0.1:3001/mcp   prints "listening on <url>"
 */
import { Agent, createServer, request } from 'node:http';
import process from 'node:process';
import { URL } from 'node:url';

const target = new URL(process.argv[2]);
const agent = new Agent({ keepAlive: true, maxSockets: 256 });

const server = createServer((incoming, outgoing) => {
  const upstream = request(
    {
      host: target.hostname,
      port: target.port,
      path: target.pathname,
      method: incoming.method,
      headers: { ...incoming.headers, host: target.host },
      agent,
    },
    (answer) => {
      outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(outgoing);
    },
  );
  upstream.on('error', () => {
    if (!outgoing.headersSent) outgoing.writeHead(502);
    outgoing.end();
  });
  incoming.pipe(upstream);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`bare relay listening on http://127.0.0.1:${server.address().port}/mcp\n`);
});
