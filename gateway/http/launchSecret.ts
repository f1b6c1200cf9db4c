/**
 * The per-launch bearer secret that every client request must carry. It is created fresh
 * for each gateway launch (or read from stdin when the launcher creates it), compared in
 * constant time, and handed over only through a 0600 file or the launcher's pipe, never
 * argv, env or logs.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { generateLaunchSecret, isLaunchSecretText, LAUNCH_SECRET_MIN_LENGTH } from '../../common/control/launchSecretText';

export type LaunchSecretDelivery = { delivery: 'file'; path: string } | { delivery: 'stdin' };

export class LaunchSecret {
  private readonly digest: Buffer;

  constructor(secret: string) {
    if (!isLaunchSecretText(secret)) {
      throw new Error(`launch secret must be at least ${LAUNCH_SECRET_MIN_LENGTH} characters of token68 text`);
    }
    // Comparing fixed-length digests keeps the comparison constant-time even when lengths differ.
    this.digest = sha256(secret);
  }

  static generate(): { secret: LaunchSecret; value: string } {
    const value = generateLaunchSecret();
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
