/**
 * Tokens shaped like the local IdP's (localIdp.ts) but meant to be refused: unsigned, signed
 * by a key no IdP publishes, and the plausible claims to forge them with.
 */
import { generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { accountClaims, type LocalIdp } from './localIdp';

/** An unsecured JWT (`alg: none`, empty signature) carrying whatever claims the test wants. */
export function unsignedToken(claims: JWTPayload): string {
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${encode({ alg: 'none', typ: 'JWT' })}.${encode(claims)}.`;
}

/** A well-formed RS256 JWT signed by a fresh key that no IdP publishes. */
export async function foreignSignedToken(claims: JWTPayload, kid = 'foreign-key'): Promise<string> {
  const { privateKey } = await generateKeyPair('RS256');
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid }).sign(privateKey);
}

/** Claims that would pass every check except the signature, for forging against `idp`. */
export function plausibleClaims(idp: Pick<LocalIdp, 'issuer' | 'audience'>, user = 'alice'): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  return { ...accountClaims(user), iss: idp.issuer, aud: idp.audience, iat: now, exp: now + 300 };
}
