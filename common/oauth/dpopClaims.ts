/**
 * The two DPoP (RFC 9449) claims both ends compute the same way: the gateway when it signs
 * a proof (gateway/upstreamAuth/dpopProver.ts) and the policy server when it checks one
 * (policy-server/authorization/dpopProof.ts).
 */
import { createHash } from 'node:crypto';

/** `ath`: the base64url SHA-256 of the access token's ASCII (RFC 9449 §4.2). */
export function accessTokenHash(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'ascii').digest('base64url');
}

/** `htu`: the request URL without query and fragment (RFC 9449 §4.2); '' for what is not a URL. */
export function proofTarget(url: string | URL): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return '';
  }
}
