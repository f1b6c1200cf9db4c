/**
 * The subject tokens the relay presents in RFC 8693 token exchange (credential mode
 * `relay-oauth`): a one-minute JWT, signed by the policy server, saying which person the
 * upstream token is for (`sub`, and `email` when the IdP verified it), for one
 * authorization server (`aud`). Such an authorization server is set up to trust the issuer
 * `<public url>/token-exchange` and its key set (`/token-exchange/jwks`, also named by
 * `/token-exchange/.well-known/openid-configuration`).
 *
 * The key is used for nothing else and never leaves the policy server: policy bundles and
 * relay tokens, both of which sit on laptops, are signed with other keys, so neither can be
 * passed off as a subject token at an authorization server that checks less than it should.
 * It lives in `token-exchange-key.json` (0600) in the private data directory, made on first
 * start; replicas share it by sharing that directory, as they share the other keys.
 */
import { existsSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import { Router } from 'express';
import { z } from 'zod';
import { readPrivateFile, writePrivateFileAtomic } from '../../common/fs/privateFiles';
import { trustedEmail } from '../../common/policy/effectivePolicy';
import type { CallerIdentity } from '../../common/policy/identity';

const KEY_FILE = 'token-exchange-key.json';
const ALGORITHM = 'ES256';
const LIFETIME_SECONDS = 60;
/** Where the issuer lives under the policy server's public URL. */
export const SUBJECT_ISSUER_PATH = '/token-exchange';

const StoredKey = z.object({
  schema: z.literal(1),
  jwk: z.object({ kty: z.literal('EC'), crv: z.literal('P-256'), x: z.string(), y: z.string(), d: z.string(), kid: z.string() }),
});

export class SubjectTokens {
  private constructor(
    /** `<public url>/token-exchange`: the `iss` of every subject token. */
    readonly issuer: string,
    private readonly privateKey: CryptoKey | Uint8Array,
    private readonly publicJwk: JWK & { kid: string },
  ) {}

  static async open(dataDir: string, publicUrl: string): Promise<SubjectTokens> {
    const path = join(dataDir, KEY_FILE);
    if (!existsSync(path)) {
      const { privateKey } = await generateKeyPair(ALGORITHM, { extractable: true });
      const jwk = await exportJWK(privateKey);
      writePrivateFileAtomic(path, JSON.stringify({ schema: 1, jwk: { ...jwk, kid: await calculateJwkThumbprint(jwk) } }));
    }
    const parsed = StoredKey.safeParse(JSON.parse(readPrivateFile(path).toString('utf8')));
    if (!parsed.success) throw new Error(`${path} is not a valid token exchange key file; move it away to have a new one made`);
    const { d: _private, ...publicJwk } = parsed.data.jwk;
    return new SubjectTokens(`${publicUrl.replace(/\/$/, '')}${SUBJECT_ISSUER_PATH}`, await importJWK(parsed.data.jwk, ALGORITHM), {
      ...publicJwk,
      alg: ALGORITHM,
      use: 'sig',
    });
  }

  /** A subject token for `caller`, for the authorization server `audience` alone. */
  mint(caller: CallerIdentity, audience: string): Promise<string> {
    const email = trustedEmail(caller);
    return new SignJWT({ ...(email ? { email, email_verified: true } : {}) })
      .setProtectedHeader({ alg: ALGORITHM, kid: this.publicJwk.kid, typ: 'JWT' })
      .setIssuer(this.issuer)
      .setSubject(caller.sub)
      .setAudience(audience)
      .setIssuedAt()
      .setExpirationTime(`${LIFETIME_SECONDS}s`)
      .setJti(randomUUID())
      .sign(this.privateKey);
  }

  /** The key set and the discovery document an authorization server reads to trust this issuer (no auth: public keys). */
  routes(): Router {
    const router = Router();
    router.get('/jwks', (_req, res) => {
      res
        .set('Cache-Control', 'public, max-age=300')
        .type('application/jwk-set+json')
        .send(JSON.stringify({ keys: [this.publicJwk] }));
    });
    router.get('/.well-known/openid-configuration', (_req, res) => {
      res.set('Cache-Control', 'public, max-age=300').json({ issuer: this.issuer, jwks_uri: `${this.issuer}/jwks` });
    });
    return router;
  }
}
