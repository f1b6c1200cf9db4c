/**
 * DNS-rebinding defence: a web page can make a browser send requests to 127.0.0.1 under
 * its own host name, so the gateway accepts only its own loopback Host names and, when a
 * browser sends an Origin, only its own loopback origins.
 */
export type ListenAddress = { type: 'unix'; path: string } | { type: 'tcp'; host: string; port: number };

export class OriginGuard {
  private readonly hosts: Set<string>;
  private readonly origins: Set<string>;

  constructor(address: ListenAddress) {
    const names = ['localhost', '127.0.0.1', '[::1]'];
    if (address.type === 'tcp') {
      this.hosts = new Set(names.map((name) => `${name}:${address.port}`));
      this.origins = new Set(names.map((name) => `http://${name}:${address.port}`));
    } else {
      // Over a unix socket clients send a nominal Host; no browser can reach the socket.
      this.hosts = new Set(names);
      this.origins = new Set();
    }
  }

  /** Why the request must be refused, or undefined when Host and Origin are acceptable. */
  check(host: string | undefined, origin: string | undefined): string | undefined {
    if (!host || !this.hosts.has(host.toLowerCase())) return 'Host header is not this gateway';
    if (origin !== undefined && !this.origins.has(origin.toLowerCase())) return 'Origin is not allowed';
    return undefined;
  }
}
