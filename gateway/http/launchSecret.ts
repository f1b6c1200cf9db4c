/**
 * The per-launch bearer secret that every client request must carry. It is created fresh
 * for each gateway launch (or read from stdin when the launcher creates it), compared in
 * constant time, and handed over only through a 0600 file or the launcher's pipe, never
 * argv, env or logs.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
// Pins (gateway/guardrails/pinning) still import the file writer from here.
export { writeSecretFile } from '../../common/fs/privateFiles';

export type LaunchSecretDelivery = { delivery: 'file'; path: string } | { delivery: 'stdin' };

const MIN_SECRET_LENGTH = 32;

export class LaunchSecret {
  private readonly digest: Buffer;

  constructor(secret: string) {
    if (secret.length < MIN_SECRET_LENGTH || !/^[A-Za-z0-9._~+/=-]+$/.test(secret)) {
      throw new Error(`launch secret must be at least ${MIN_SECRET_LENGTH} characters of token68 text`);
    }
    // Comparing fixed-length digests keeps the comparison constant-time even when lengths differ.
    this.digest = sha256(secret);
  }

  static generate(): { secret: LaunchSecret; value: string } {
    const value = randomBytes(32).toString('base64url');
    return { secret: new LaunchSecret(value), value };
  }

  /** True when the Authorization header carries exactly this secret as a Bearer token. */
  matchesAuthorization(header: string | undefined): boolean {
    if (!header) return false;
    const match = /^Bearer ([^\s]+)$/i.exec(header.trim());
    if (!match) return false;
    return timingSafeEqual(sha256(match[1]!), this.digest);
  }
}

/** Reads one line (the secret) from a stream, e.g. the launcher's pipe on stdin. */
export function readSecretLine(input: NodeJS.ReadableStream, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => finish(new Error('no launch secret arrived on stdin')), timeoutMs);
    const onData = (chunk: Buffer | string) => {
      buffered += chunk.toString();
      const newline = buffered.indexOf('\n');
      if (newline >= 0) finish(undefined, buffered.slice(0, newline).trim());
      else if (buffered.length > 4096) finish(new Error('launch secret line too long'));
    };
    const onEnd = () => finish(buffered.trim() ? undefined : new Error('stdin closed before a launch secret arrived'), buffered.trim());
    const finish = (error?: Error, value?: string) => {
      clearTimeout(timer);
      input.off('data', onData);
      input.off('end', onEnd);
      if (error) reject(error);
      else resolve(value!);
    };
    input.on('data', onData);
    input.on('end', onEnd);
  });
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
