/**
 * What binds a reviewer's approval to one exact call: the SHA-256 of the canonical JSON
 * (RFC 8785, `canonicalize`) of its arguments before any redaction. The gateway sends it
 * with the review request; the relay computes it again on the call it is asked to pass.
 */
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

export function argumentsDigest(args: unknown): string {
  return createHash('sha256').update(canonicalize(args ?? {}) ?? '').digest('base64url');
}

export const ARGUMENTS_DIGEST = /^[A-Za-z0-9_-]{43}$/;
