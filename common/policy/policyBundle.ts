/**
 * The signed policy bundle: a compact JWS (EdDSA) whose payload carries one user's
 * effective policy. The policy server signs it; the gateway accepts it only when the
 * signature verifies against its pinned key set, the type and audience are right, it
 * names the expected user and it has not expired. Verification is jose's, not ours.
 */
import { SignJWT, jwtVerify, type JSONWebKeySet, type CryptoKey, createLocalJWKSet } from 'jose';
import type { EffectivePolicy } from './effectivePolicy';
import { describeError } from '../log/logger';

export const BUNDLE_TYPE = 'gatehouse-policy+jwt';
export const BUNDLE_AUDIENCE = 'gatehouse-gateway';
export const BUNDLE_ALGORITHM = 'EdDSA';
/** The longest `guardrails.bundleTtlSeconds` a policy may set. */
export const MAX_BUNDLE_TTL_SECONDS = 86_400;
const MAX_CLOCK_SKEW_MS = 60_000;

export interface BundleClaims {
  sub: string;
  iat: number;
  exp: number;
  ver: number;
  groups: string[];
  policy: EffectivePolicy;
}

export async function signPolicyBundle(
  policy: EffectivePolicy,
  key: { privateKey: CryptoKey; kid: string },
  issuer: string,
  ttlSeconds: number,
  now = Date.now(),
): Promise<string> {
  const iat = Math.floor(now / 1000);
  return new SignJWT({ ver: policy.ver, groups: policy.groups, policy })
    .setProtectedHeader({ alg: BUNDLE_ALGORITHM, kid: key.kid, typ: BUNDLE_TYPE })
    .setSubject(policy.sub)
    .setIssuer(issuer)
    .setAudience(BUNDLE_AUDIENCE)
    .setIssuedAt(iat)
    .setExpirationTime(iat + ttlSeconds)
    .sign(key.privateKey);
}

export class BundleRejectedError extends Error {
  constructor(readonly reason: string) {
    super(`Policy bundle rejected: ${reason}`);
    this.name = 'BundleRejectedError';
  }
}

/**
 * Verifies a bundle against the pinned key set. `now` lets a caller re-check expiry of a
 * cached bundle without the network. No clock skew is granted past `exp`: fail closed.
 */
export async function verifyPolicyBundle(
  jws: string,
  keys: JSONWebKeySet,
  expected: { sub: string; issuer: string },
  now = Date.now(),
): Promise<BundleClaims> {
  try {
    const { payload } = await jwtVerify(jws, createLocalJWKSet(keys), {
      algorithms: [BUNDLE_ALGORITHM],
      typ: BUNDLE_TYPE,
      audience: BUNDLE_AUDIENCE,
      issuer: expected.issuer,
      subject: expected.sub,
      requiredClaims: ['sub', 'iat', 'exp', 'ver', 'policy'],
      currentDate: new Date(now),
    });
    // A bundle from the future (a policy server with a fast clock) would outlive its TTL here.
    if (typeof payload.iat !== 'number' || payload.iat * 1000 > now + MAX_CLOCK_SKEW_MS)
      throw new BundleRejectedError('it was issued in the future (check the policy server clock)');
    if (typeof payload.exp !== 'number' || payload.exp - payload.iat > MAX_BUNDLE_TTL_SECONDS)
      throw new BundleRejectedError('its lifetime is longer than any policy allows');
    const policy = payload.policy as EffectivePolicy | undefined;
    if (!policy || policy.sub !== payload.sub || typeof payload.ver !== 'number' || policy.ver !== payload.ver) {
      throw new BundleRejectedError('payload does not match its claims');
    }
    return payload as unknown as BundleClaims;
  } catch (error) {
    if (error instanceof BundleRejectedError) throw error;
    const code = (error as { code?: string }).code ?? '';
    const reason =
      code === 'ERR_JWT_EXPIRED'
        ? 'it has expired'
        : code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED'
          ? 'its signature does not verify (tampered, or signed by an unknown key)'
          : code === 'ERR_JWKS_NO_MATCHING_KEY'
            ? 'it was signed by a key that is not pinned'
            : code === 'ERR_JWT_CLAIM_VALIDATION_FAILED'
              ? `claim check failed: ${describeError(error)}`
              : describeError(error);
    throw new BundleRejectedError(reason);
  }
}
