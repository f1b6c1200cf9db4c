/**
 * What binds a reviewer's approval to one exact call: the SHA-256 of the canonical JSON
 * (RFC 8785, `canonicalize`) of the arguments the reviewer was shown. The policy server
 * computes it from the review request itself (a client cannot send one digest and show
 * other arguments); the relay computes it on the call it is asked to pass. A call whose
 * arguments the gateway redacted for the reviewer therefore never matches: it is refused
 * at the relay rather than passed on an approval of something else.
 */
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

export function argumentsDigest(args: unknown): string {
  return createHash('sha256')
    .update(canonicalize(args ?? {}) ?? '')
    .digest('base64url');
}
