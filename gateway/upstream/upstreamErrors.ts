/**
 * How an upstream fails, as the rest of the gateway sees it: gone (exited, dropped, never
 * started), or waiting out a backoff after failing repeatedly.
 */

/** The upstream can no longer answer: it exited, its connection dropped, or it never started. */
export class UpstreamGoneError extends Error {
  constructor(
    readonly serverId: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`Upstream server "${serverId}" is unavailable: ${reason}`, options);
    this.name = 'UpstreamGoneError';
  }
}

/** The upstream failed repeatedly and the gateway is waiting before it tries again. */
export class UpstreamBackoffError extends UpstreamGoneError {
  constructor(serverId: string, failures: number, retryInMs: number, lastError: string | undefined) {
    super(
      serverId,
      `it failed ${failures} times in a row; Gatehouse tries again in ${Math.ceil(retryInMs / 1000)} s (last error: ${lastError ?? 'see the gateway log'})`,
    );
    this.name = 'UpstreamBackoffError';
  }
}

/** `error` or one of its causes, if it is a `type`. */
export function causedBy<T extends Error>(error: unknown, type: new (...args: never[]) => T): T | undefined {
  for (let current = error, depth = 0; current && depth < 5; current = (current as { cause?: unknown }).cause, depth++) {
    if (current instanceof type) return current;
  }
  return undefined;
}
