/**
 * The text of a per-launch bearer secret, made by whoever launches a gateway: the extension
 * (sent in `gatehouse/start`) or the gateway itself (for `--launch-secret-file`). One
 * generator, so both make the same strength of secret; the gateway checks what it is given
 * and compares it in constant time (gateway/http/launchSecret.ts).
 */
import { randomBytes } from 'node:crypto';

export const LAUNCH_SECRET_MIN_LENGTH = 32;

/** 32 random bytes, base64url: 43 characters of token68 text. */
export function generateLaunchSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** Long enough, and token68 text, so it travels as a Bearer token unchanged. */
export function isLaunchSecretText(value: string): boolean {
  return value.length >= LAUNCH_SECRET_MIN_LENGTH && /^[A-Za-z0-9._~+/=-]+$/.test(value);
}
