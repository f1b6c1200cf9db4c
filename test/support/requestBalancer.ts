/**
 * An HTTP load balancer for tests that sends each request, not each connection, to the next
 * backend in turn (standing in for an org's balancer without sticky sessions, the harshest
 * case): one sign-in's steps land on different replicas, so any state one replica kept in
 * memory is missing on the next. Requests and answers are passed through as they are
 * (method, path, headers, bodies, streams).
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RequestBalancer {
  url: string;
  /** The backends, in turn; set once they are started (they may need `url` first). */
  backends: string[];
  /** Requests sent to each backend so far, by its URL. */
  requests: Map<string, number>;
  stop(): Promise<void>;
}

export async function startRequestBalancer(): Promise<RequestBalancer> {
  let next = 0;
  const balancer: RequestBalancer = { url: '', backends: [], requests: new Map(), stop: async () => undefined };
  const server: Server = createServer((incoming, outgoing) => {
    const backend = balancer.backends[next++ % balancer.backends.length];
    if (!backend) return void outgoing.writeHead(503).end('no backend');
    balancer.requests.set(backend, (balancer.requests.get(backend) ?? 0) + 1);
    const target = new URL(backend);
    const forwarded = request(
      { host: target.hostname, port: target.port, method: incoming.method, path: incoming.url, headers: incoming.headers },
      (answer) => {
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
      },
    );
    forwarded.on('error', () => outgoing.destroy());
    outgoing.on('close', () => forwarded.destroy());
    incoming.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  balancer.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  balancer.stop = async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
  return balancer;
}
