/**
 * Push to gateways: every open `GET /v1/events` stream (server-sent events) is registered
 * here. A publish tells every stream the new version; a revocation is told only to the
 * revoked user's streams, which then end (the user can no longer open one). Heartbeat
 * comments keep proxies from closing idle streams, and a stream that stops reading is
 * dropped instead of buffering without bound.
 */
import type { Response } from 'express';
import type { CallerIdentity } from '../../common/policy/identity';
import type { Logger } from '../../common/log/logger';
import type { PolicyServerEvent } from '../../common/policy/policyServerApi';

export interface PolicyEventHubOptions {
  heartbeatMs: number;
  maxStreamsPerUser: number;
  maxStreams: number;
  log: Logger;
}

interface Stream {
  res: Response;
  sub: string;
  sessionId: string | undefined;
}

// A client this far behind is not reading; cut it off rather than hold its backlog.
const MAX_BUFFERED_BYTES = 256 * 1024;

export class StreamLimitError extends Error {}

export class PolicyEventHub {
  private readonly streams = new Set<Stream>();
  private readonly heartbeat: NodeJS.Timeout;

  constructor(private readonly options: PolicyEventHubOptions) {
    this.heartbeat = setInterval(() => this.broadcast(': heartbeat\n\n'), options.heartbeatMs);
    this.heartbeat.unref();
  }

  get size(): number {
    return this.streams.size;
  }

  /** Takes over `res` as an event stream for `caller`; throws StreamLimitError when over a limit. */
  open(res: Response, caller: CallerIdentity, currentVersion: number | undefined): void {
    if (this.streams.size >= this.options.maxStreams)
      throw new StreamLimitError(`the server holds its maximum of ${this.options.maxStreams} event streams`);
    const own = [...this.streams].filter((s) => s.sub === caller.sub).length;
    if (own >= this.options.maxStreamsPerUser)
      throw new StreamLimitError(`${caller.sub} already has ${own} open event streams (the limit); close one first`);
    const stream: Stream = { res, sub: caller.sub, sessionId: typeof caller.claims.sid === 'string' ? caller.claims.sid : undefined };
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.socket?.setNoDelay(true);
    res.write('retry: 5000\n\n');
    if (currentVersion !== undefined) res.write(format({ event: 'policy', data: { version: currentVersion } }));
    this.streams.add(stream);
    res.on('close', () => this.streams.delete(stream));
    this.options.log.debug('event stream opened', { sub: caller.sub, streams: this.streams.size });
  }

  publishedVersion(version: number): void {
    this.broadcast(format({ event: 'policy', data: { version } }));
  }

  /** Tells every stream of the user that their credential for `serverId` was revoked; the streams stay open. */
  credentialRevoked(sub: string, serverId: string): number {
    const text = format({ event: 'credential-revoked', data: { sub, serverId } });
    let told = 0;
    for (const stream of this.streams) {
      if (stream.sub !== sub) continue;
      stream.res.write(text);
      told++;
    }
    return told;
  }

  /** Tells the user's streams (all of them, or that session's) and closes those streams. */
  revoked(sub: string, sessionId: string | undefined): number {
    const text = format({ event: 'revoked', data: { sub, ...(sessionId !== undefined ? { sessionId } : {}) } });
    let told = 0;
    for (const stream of [...this.streams]) {
      if (stream.sub !== sub || (sessionId !== undefined && stream.sessionId !== sessionId)) continue;
      this.streams.delete(stream);
      stream.res.end(text);
      told++;
    }
    return told;
  }

  close(): void {
    clearInterval(this.heartbeat);
    for (const stream of this.streams) stream.res.end();
    this.streams.clear();
  }

  private broadcast(text: string): void {
    for (const stream of [...this.streams]) {
      if (stream.res.writableLength > MAX_BUFFERED_BYTES) {
        this.options.log.warn('dropping an event stream that stopped reading', { sub: stream.sub });
        this.streams.delete(stream);
        stream.res.destroy();
        continue;
      }
      stream.res.write(text);
    }
  }
}

function format(event: PolicyServerEvent): string {
  return `event: ${event.event}\ndata: ${JSON.stringify(event.data)}\n\n`;
}
