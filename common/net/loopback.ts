/**
 * Which hosts are this machine: where plain http is acceptable for an issuer, a policy
 * server or a redirect (nothing leaves the machine). The whole 127.0.0.0/8 block is
 * loopback (RFC 1122), as are `localhost` and `[::1]`.
 */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}$/.test(hostname);
}

/** https, or http to this machine. */
export function isSecureOrLoopback(url: URL): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname));
}
