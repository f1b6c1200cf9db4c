/**
 * The MCP authorization server's own secrets, in `authorization-server-keys.json` (0600) in
 * the private data directory, made on first start: the ES256 key its access tokens are
 * signed with (separate from the policy-bundle keys: a relay token is never a policy) and
 * the keys of its sign-in cookies. Replicas share them by sharing the data directory, as
 * they share the bundle keys.
 */
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { z } from 'zod';
import { readPrivateFile, writePrivateFileAtomic } from '../../common/fs/privateFiles';

/** The key file's name in the data dir. */
export const AUTHORIZATION_KEY_FILE = 'authorization-server-keys.json';
export const ACCESS_TOKEN_ALGORITHM = 'ES256';

const StoredKeys = z.object({
  schema: z.literal(1),
  signingJwk: z.object({ kty: z.literal('EC'), crv: z.literal('P-256'), x: z.string(), y: z.string(), d: z.string(), kid: z.string() }),
  cookieKeys: z.array(z.string().min(32)).min(1),
});

export interface AuthorizationKeys {
  /** The private signing key as oidc-provider takes it (`jwks.keys[0]`). */
  signingJwk: JWK & { kid: string };
  /** Its public half, which the relay verifies access tokens with. */
  publicJwk: JWK & { kid: string };
  cookieKeys: string[];
}

export async function openAuthorizationKeys(dataDir: string): Promise<AuthorizationKeys> {
  const path = join(dataDir, AUTHORIZATION_KEY_FILE);
  if (!existsSync(path)) {
    const { privateKey } = await generateKeyPair(ACCESS_TOKEN_ALGORITHM, { extractable: true });
    const jwk = await exportJWK(privateKey);
    const kid = await calculateJwkThumbprint(jwk);
    writePrivateFileAtomic(path, JSON.stringify({ schema: 1, signingJwk: { ...jwk, kid }, cookieKeys: [randomBytes(32).toString('hex')] }));
  }
  const parsed = StoredKeys.safeParse(JSON.parse(readPrivateFile(path).toString('utf8')));
  if (!parsed.success) throw new Error(`${path} is not a valid authorization server key file; move it away to have a new one made`);
  const { d: _private, ...publicJwk } = parsed.data.signingJwk;
  return {
    signingJwk: { ...parsed.data.signingJwk, alg: ACCESS_TOKEN_ALGORITHM, use: 'sig' },
    publicJwk: { ...publicJwk, alg: ACCESS_TOKEN_ALGORITHM, use: 'sig' },
    cookieKeys: parsed.data.cookieKeys,
  };
}
