/**
 * DPoP (RFC 9449) proofs as a resource server and a token endpoint check them: a JWT of
 * type `dpop+jwt` signed by the public key in its own header, for this method and URL,
 * fresh, never seen before, and (at a resource) bound to the access token by `ath`. The
 * caller compares the returned thumbprint with the token's `cnf.jkt`. jose does the JOSE;
 * this file only applies RFC 9449's rules.
 */
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, jwtVerify } from 'jose';
import { accessTokenHash, proofTarget } from '../../common/oauth/dpopClaims';

/** Proof signing algorithms accepted (asymmetric only), as published in `dpop_signing_alg_values_supported`. */
export const DPOP_ALGORITHMS = ['ES256', 'EdDSA', 'PS256', 'RS256'];
/** How far a proof's `iat` may be from now (RFC 9449 leaves the window to the server). */
const PROOF_WINDOW_SECONDS = 60;
const MAX_PROOF_LENGTH = 8 * 1024;

export class DpopProofError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'DpopProofError';
  }
}

/** Where a proof's `jti` is claimed once (per process, or across replicas: oidcProvider.ts's AuthorizationState). */
export interface ProofReplays {
  firstUse(key: string, expiresAt: number): Promise<boolean>;
}

export interface ProofExpectation {
  method: string;
  /** The request's URL without query or fragment (`htu`). */
  url: string;
  /** At a resource: the access token the proof must be bound to (`ath`). */
  accessToken?: string;
}

/** Verifies one DPoP proof and returns the RFC 7638 thumbprint of its key. */
export async function verifyDpopProof(proof: string | undefined, expected: ProofExpectation, replays: ProofReplays): Promise<string> {
  if (!proof) throw new DpopProofError('the request has no DPoP proof');
  if (proof.length > MAX_PROOF_LENGTH || proof.includes(',')) throw new DpopProofError('the request must carry exactly one DPoP proof');
  let alg: string | undefined;
  try {
    alg = decodeProtectedHeader(proof).alg;
  } catch {
    throw new DpopProofError('the DPoP proof is not a well-formed JWT');
  }
  if (!alg || !DPOP_ALGORITHMS.includes(alg))
    throw new DpopProofError(`the DPoP proof algorithm is not accepted (accepted: ${DPOP_ALGORITHMS.join(', ')})`);
  let verified;
  try {
    verified = await jwtVerify(proof, EmbeddedJWK, {
      typ: 'dpop+jwt',
      algorithms: DPOP_ALGORITHMS,
      requiredClaims: ['jti', 'htm', 'htu', 'iat'],
    });
  } catch {
    throw new DpopProofError('the DPoP proof signature or claims are not valid');
  }
  const { payload, protectedHeader } = verified;
  if (payload.htm !== expected.method) throw new DpopProofError('the DPoP proof is for another HTTP method');
  if (typeof payload.htu !== 'string' || proofTarget(payload.htu) !== proofTarget(expected.url))
    throw new DpopProofError('the DPoP proof is for another URL');
  const now = Math.floor(Date.now() / 1000);
  if (typeof payload.iat !== 'number' || Math.abs(now - payload.iat) > PROOF_WINDOW_SECONDS)
    throw new DpopProofError('the DPoP proof is not fresh');
  if (expected.accessToken !== undefined && payload.ath !== accessTokenHash(expected.accessToken)) {
    throw new DpopProofError('the DPoP proof is not bound to this access token');
  }
  if (
    typeof payload.jti !== 'string' ||
    payload.jti.length > 256 ||
    !(await replays.firstUse(`dpop ${proofTarget(expected.url)} ${payload.jti}`, now + 2 * PROOF_WINDOW_SECONDS))
  ) {
    throw new DpopProofError('the DPoP proof was already used');
  }
  return calculateJwkThumbprint(protectedHeader.jwk!);
}
