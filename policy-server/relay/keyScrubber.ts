/**
 * A stream that replaces every occurrence of one secret with a marker, including an
 * occurrence split across chunks (it holds back the last `secret.length - 1` bytes until
 * it knows they do not start one). The relay passes upstream answers through it: an
 * upstream that echoes its credential (an error quoting the request's headers, a debug
 * tool) must not hand the shared key to a laptop.
 */
import { Transform, type TransformCallback } from 'node:stream';

export const SCRUBBED = '[REDACTED:relay-credential]';

export class KeyScrubber extends Transform {
  private readonly secret: Buffer;
  private readonly marker = Buffer.from(SCRUBBED);
  private held: Buffer = Buffer.alloc(0);

  constructor(secret: string) {
    super();
    this.secret = Buffer.from(secret);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    const data = this.scrub(Buffer.concat([this.held, chunk]));
    const keep = Math.min(this.secret.length - 1, data.length);
    this.held = data.subarray(data.length - keep);
    if (data.length > keep) this.push(data.subarray(0, data.length - keep));
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.held.length > 0) this.push(this.held);
    done();
  }

  private scrub(data: Buffer): Buffer {
    let at = data.indexOf(this.secret);
    if (at < 0) return data;
    const parts: Buffer[] = [];
    let from = 0;
    while (at >= 0) {
      parts.push(data.subarray(from, at), this.marker);
      from = at + this.secret.length;
      at = data.indexOf(this.secret, from);
    }
    parts.push(data.subarray(from));
    return Buffer.concat(parts);
  }
}
