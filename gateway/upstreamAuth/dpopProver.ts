/**
 * The gateway's side of DPoP (RFC 9449): when an upstream's authorization server offers
 * it, the gateway asks for tokens bound to a key of its own and proves that key on every
 * request, so a copied token is useless elsewhere. One ES256 key per (user, server),
 * kept with that server's tokens (in the extension's SecretStorage, gateway memory in
 * headless mode) and deleted with them; the private half never leaves the gateway
 * otherwise. jose signs; this file only says what RFC 9449 puts in a proof.
 */
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import { accessTokenHash, proofTarget } from '../../common/oauth/dpopClaims';

const ALGORITHM = 'ES256';
/** Longest server-supplied nonce kept (RFC 9449 gives no limit; a proof header should stay small). */
const MAX_NONCE_LENGTH = 512;

/** Whether an authorization server's (or resource's) metadata offers DPoP with the algorithm the gateway signs with. */
export function offersDpop(metadata: Record<string, unknown> | undefined): boolean {
  const algorithms = metadata?.dpop_signing_alg_values_supported;
  return Array.isArray(algorithms) && algorithms.includes(ALGORITHM);
}

/**
 * Whether to ask for DPoP-bound tokens: the authorization server must offer them, and the
 * resource must show it takes them (a DPoP challenge, RFC 9449 §7.1, or DPoP in its RFC 9728
 * metadata), since a Bearer-only server refuses a bound token.
 */
export function resourceTakesDpop(resourceMetadata: Record<string, unknown> | undefined, wwwAuthenticate: string | undefined): boolean {
  return (
    /(^|,)\s*dpop(\s|,|$)/i.test(wwwAuthenticate ?? '') ||
    offersDpop(resourceMetadata) ||
    resourceMetadata?.dpop_bound_access_tokens_required === true
  );
}

/** A new private key as a JWK, to be kept with the tokens it will be bound to. */
export async function newDpopKey(): Promise<JWK> {
  return (await newDpopKeyPair()).jwk;
}

/** A new key as a JWK (for DpopProver) and as the key pair openid-client's DPoP handle signs token requests with. */
export async function newDpopKeyPair(): Promise<{ jwk: JWK; keyPair: CryptoKeyPair }> {
  const keyPair = await generateKeyPair(ALGORITHM, { extractable: true });
  return { jwk: { ...(await exportJWK(keyPair.privateKey)), alg: ALGORITHM }, keyPair };
}

/** Signs proofs with the key the kept tokens are bound to; remembers the nonces servers supply. */
export class DpopProver {
  /**
   * The last nonce supplied at each endpoint (RFC 9449 §8, §9), by its proof target: an
   * authorization server's nonce and a resource's are separate even when the two share an
   * origin (one refused with the other's nonce would cost a retry each time).
   */
  private readonly nonces = new Map<string, string>();
  private imported: { jwk: JWK; key: CryptoKey | Uint8Array } | undefined;

  /** A fresh proof for one request; `accessToken` binds it to the token it accompanies (`ath`). */
  async proof(privateJwk: JWK, method: string, url: string, accessToken?: string): Promise<string> {
    if (this.imported?.jwk !== privateJwk) this.imported = { jwk: privateJwk, key: await importJWK(privateJwk, ALGORITHM) };
    const { kty, crv, x, y } = privateJwk; // only the public half goes into the proof
    const nonce = this.nonces.get(proofTarget(url));
    return new SignJWT({
      htm: method,
      htu: proofTarget(url),
      ...(accessToken !== undefined ? { ath: accessTokenHash(accessToken) } : {}),
      ...(nonce !== undefined ? { nonce } : {}),
    })
      .setProtectedHeader({ alg: ALGORITHM, typ: 'dpop+jwt', jwk: { kty, crv, x, y } })
      .setJti(randomUUID())
      .setIssuedAt()
      .sign(this.imported.key);
  }

  /** Keeps the nonce a server sent with `url`'s answer; true when it is new (worth a retry). */
  noteNonce(url: string, nonce: string | null | undefined): boolean {
    // RFC 9449 §8: a nonce is NQCHAR (printable ASCII but `"` and `\`).
    if (!nonce || nonce.length > MAX_NONCE_LENGTH || !/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(nonce)) return false;
    const target = proofTarget(url);
    if (this.nonces.get(target) === nonce) return false;
    this.nonces.set(target, nonce);
    return true;
  }
}
