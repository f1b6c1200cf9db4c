/**
 * The spool's two per-installation secrets, both 0600 files in the spool folder, created
 * on first open:
 *  - `checkpoint-key.json`: an Ed25519 key pair (private JWK) that signs checkpoints. Its
 *    public half (`kid` = RFC 7638 thumbprint) is what a verifier, or the policy server,
 *    checks them with.
 *  - `args-digest.key`: 32 random bytes (base64url) keying the HMAC of call arguments.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import { z } from 'zod';
import { ARGS_DIGEST_KEY_BYTES } from '../../common/audit/auditEvent';
import { readPrivateFile, writePrivateFileAtomic } from '../../common/fs/privateFiles';
import { describeError } from '../../common/log/logger';

export const CHECKPOINT_KEY_FILE = 'checkpoint-key.json';
export const ARGS_DIGEST_KEY_FILE = 'args-digest.key';
export const CHECKPOINT_ALGORITHM = 'EdDSA';

const PublicJwkSchema = z.object({ kty: z.literal('OKP'), crv: z.literal('Ed25519'), x: z.string().min(1) });
const KeyFileSchema = z.object({
  schema: z.literal(1),
  kid: z.string().min(1),
  createdAt: z.string(),
  privateJwk: PublicJwkSchema.extend({ d: z.string().min(1) }),
});

export interface CheckpointPublicKey {
  kid: string;
  jwk: { kty: 'OKP'; crv: 'Ed25519'; x: string };
  key: CryptoKey;
}

export interface CheckpointSigningKey extends CheckpointPublicKey {
  privateKey: CryptoKey;
}

export async function loadOrCreateCheckpointKey(dir: string, now = Date.now()): Promise<CheckpointSigningKey> {
  const path = join(dir, CHECKPOINT_KEY_FILE);
  if (!existsSync(path)) {
    const { privateKey } = await generateKeyPair(CHECKPOINT_ALGORITHM, { extractable: true });
    const jwk = await exportJWK(privateKey);
    if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || !jwk.x || !jwk.d) throw new Error('key generation did not produce an Ed25519 key');
    const publicJwk = { kty: 'OKP' as const, crv: 'Ed25519' as const, x: jwk.x };
    const file = {
      schema: 1,
      kid: await calculateJwkThumbprint(publicJwk, 'sha256'),
      createdAt: new Date(now).toISOString(),
      privateJwk: { ...publicJwk, d: jwk.d },
    };
    writePrivateFileAtomic(path, JSON.stringify(file, null, 2) + '\n');
  }
  const stored = parseKeyFile(path, readPrivateFile(path).toString('utf8'));
  const { d, ...publicJwk } = stored.privateJwk;
  const privateKey = await importJWK({ ...publicJwk, d, alg: CHECKPOINT_ALGORITHM }, CHECKPOINT_ALGORITHM, { extractable: false });
  if (privateKey instanceof Uint8Array) throw new Error(`${path} holds a symmetric key, not an Ed25519 key pair`);
  return { ...(await importPublicKey(publicJwk, path)), privateKey };
}

/**
 * The public key checkpoints are checked with: from a JWK file (`{kty,crv,x}`, e.g. the key
 * the policy server registered for this installation) or, by default, from the spool's own
 * key file.
 */
export async function loadCheckpointPublicKey(spoolDir: string, jwkFile?: string): Promise<CheckpointPublicKey> {
  if (jwkFile) {
    let parsed: z.infer<typeof PublicJwkSchema>;
    try {
      parsed = PublicJwkSchema.parse(JSON.parse(readFileSync(jwkFile, 'utf8')));
    } catch (error) {
      throw new Error(`${jwkFile} is not an Ed25519 public JWK ({"kty":"OKP","crv":"Ed25519","x":...}): ${describeError(error)}`, {
        cause: error,
      });
    }
    return importPublicKey({ kty: parsed.kty, crv: parsed.crv, x: parsed.x }, jwkFile);
  }
  const path = join(spoolDir, CHECKPOINT_KEY_FILE);
  if (!existsSync(path))
    throw new Error(
      `${path} is missing, so checkpoints cannot be checked; pass the installation's public key with --public-key <jwk-file>`,
    );
  const { d: _private, ...publicJwk } = parseKeyFile(path, readFileSync(path, 'utf8')).privateJwk;
  return importPublicKey(publicJwk, path);
}

async function importPublicKey(jwk: CheckpointPublicKey['jwk'], source: string): Promise<CheckpointPublicKey> {
  const key = await importJWK({ ...jwk, alg: CHECKPOINT_ALGORITHM } satisfies JWK, CHECKPOINT_ALGORITHM);
  if (key instanceof Uint8Array) throw new Error(`${source} holds a symmetric key, not an Ed25519 key`);
  return { kid: await calculateJwkThumbprint(jwk, 'sha256'), jwk, key };
}

function parseKeyFile(path: string, text: string): z.infer<typeof KeyFileSchema> {
  try {
    return KeyFileSchema.parse(JSON.parse(text));
  } catch (error) {
    throw new Error(`the audit checkpoint key file ${path} is unreadable or damaged: ${describeError(error)}`, { cause: error });
  }
}

export function loadOrCreateArgsDigestKey(dir: string): Buffer {
  const path = join(dir, ARGS_DIGEST_KEY_FILE);
  if (!existsSync(path)) writePrivateFileAtomic(path, randomBytes(ARGS_DIGEST_KEY_BYTES).toString('base64url') + '\n');
  const key = Buffer.from(readPrivateFile(path).toString('utf8').trim(), 'base64url');
  if (key.length !== ARGS_DIGEST_KEY_BYTES)
    throw new Error(`the arguments digest key file ${path} is damaged (expected ${ARGS_DIGEST_KEY_BYTES} bytes of base64url)`);
  return key;
}
