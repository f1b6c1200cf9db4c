/**
 * A TCP load balancer for tests (it stands in for the org's own, which is outside this
 * machine's scope): each new connection goes to the next backend in turn; a backend that
 * refuses the connection is skipped for the next one, so a killed replica drops out as soon
 * as it stops accepting. Bytes are passed through untouched (HTTP keep-alive included, so a
 * connection stays on its backend until either side closes it).
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface RoundRobinBalancer {
  url: string;
  /** Connections sent to each backend so far, by its URL. */
  connections: Map<string, number>;
  stop(): Promise<void>;
}

export async function startRoundRobinBalancer(backends: string[]): Promise<RoundRobinBalancer> {
  const targets = backends.map((url) => new URL(url));
  const connections = new Map(backends.map((url) => [url, 0]));
  const sockets = new Set<Socket>();
  let next = 0;
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.pause();
    const attempt = (tries: number) => {
      if (tries >= targets.length) return void client.destroy();
      const target = targets[next++ % targets.length]!;
      const backend = backends[targets.indexOf(target)]!;
      const upstream = connect({ host: target.hostname, port: Number(target.port) });
      let connected = false;
      upstream.once('connect', () => {
        connected = true;
        connections.set(backend, (connections.get(backend) ?? 0) + 1);
        sockets.add(upstream);
        upstream.on('close', () => {
          sockets.delete(upstream);
          client.destroy();
        });
        client.on('close', () => upstream.destroy());
        upstream.on('error', () => client.destroy());
        client.on('error', () => upstream.destroy());
        client.pipe(upstream).pipe(client);
        client.resume();
      });
      upstream.once('error', () => {
        if (!connected) attempt(tries + 1);
      });
    };
    attempt(0);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
