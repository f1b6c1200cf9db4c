/**
 * The policy server's signing keys: Ed25519 (EdDSA) key pairs kept as JWKs in
 * `signing-keys.json` (0600) in the private data directory. The newest key signs; a
 * rotated-out key stays in the published JWKS until every bundle it signed has expired
 * (`servedUntil`), so gateways holding such a bundle keep verifying it, then it is dropped.
 * `kid` is the RFC 7638 thumbprint of the public key.
 *
 * `gatehouse policy-server rotate-key` may rewrite the file while the server runs; the
 * server notices the change (`refresh`) before it signs or serves the JWKS.
 */
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import { z } from 'zod';
import { ensurePrivateFile, writePrivateFileAtomic } from '../../common/fs/privateFiles';
import { describeError } from '../../common/log/logger';

export const KEY_FILE = 'signing-keys.json';
const ALGORITHM = 'EdDSA';

const StoredKey = z.object({
  kid: z.string().min(1),
  createdAt: z.string(),
  /** When it stopped signing; absent for the current key. */
  retiredAt: z.string().optional(),
  /** Until when its public key stays in the JWKS (its last bundle's expiry). */
  servedUntil: z.string().optional(),
  privateJwk: z.object({ kty: z.literal('OKP'), crv: z.literal('Ed25519'), x: z.string(), d: z.string() }),
});
const KeyFile = z.object({ schema: z.literal(1), keys: z.array(StoredKey).min(1) });
type StoredKey = z.infer<typeof StoredKey>;

export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
}

export interface PublicJwk extends JWK {
  kid: string;
  alg: typeof ALGORITHM;
  use: 'sig';
}

export class SigningKeyRing {
  private keys: StoredKey[] = [];
  private signing: SigningKey | undefined;
  private fileStamp = '';

  private constructor(private readonly path: string) {}

  /** Loads the key file, creating it with a fresh key pair on first start. */
  static async openOrCreate(dataDir: string, now = Date.now()): Promise<SigningKeyRing> {
    const ring = new SigningKeyRing(join(dataDir, KEY_FILE));
    if (!existsSync(ring.path)) {
      ring.keys = [await newStoredKey(now)];
      ring.save();
    }
    await ring.load();
    return ring;
  }

  /** The key that signs new bundles. Call `refresh` first when another process may have rotated. */
  current(): SigningKey {
    if (!this.signing) throw new Error('signing keys are not loaded');
    return this.signing;
  }

  /** Public keys a verifier should accept at `now`: the current key and rotated keys still within their overlap. */
  jwks(now = Date.now()): { keys: PublicJwk[] } {
    return {
      keys: this.keys
        .filter((key) => key.servedUntil === undefined || Date.parse(key.servedUntil) > now)
        .map((key) => ({ kty: 'OKP', crv: 'Ed25519', x: key.privateJwk.x, kid: key.kid, alg: ALGORITHM, use: 'sig' })),
    };
  }

  /**
   * Makes a new key current. The old current key keeps being served for `overlapSeconds`
   * (the longest bundle lifetime it may have signed); keys past their overlap are deleted.
   */
  async rotate(
    overlapSeconds: number,
    now = Date.now(),
  ): Promise<{ kid: string; previousKid: string | undefined; previousServedUntil: string | undefined }> {
    await this.refresh();
    const next = await newStoredKey(now);
    const previous = this.keys.find((key) => key.retiredAt === undefined);
    const servedUntil = new Date(now + overlapSeconds * 1000).toISOString();
    this.keys = [
      ...this.keys
        .filter((key) => key.servedUntil === undefined || Date.parse(key.servedUntil) > now)
        .map((key) => (key.retiredAt === undefined ? { ...key, retiredAt: new Date(now).toISOString(), servedUntil } : key)),
      next,
    ];
    this.save();
    await this.load();
    return { kid: next.kid, previousKid: previous?.kid, previousServedUntil: previous ? servedUntil : undefined };
  }

  /** Reloads the key file if another process (rotate-key) replaced it. */
  async refresh(): Promise<void> {
    if (this.stamp() !== this.fileStamp) await this.load();
  }

  private async load(): Promise<void> {
    ensurePrivateFile(this.path);
    const stamp = this.stamp();
    let parsed;
    try {
      parsed = KeyFile.parse(JSON.parse(await readFile(this.path, 'utf8')));
    } catch (error) {
      throw new Error(`the signing key file ${this.path} is unreadable or damaged: ${describeError(error)}`, { cause: error });
    }
    const current = parsed.keys.filter((key) => key.retiredAt === undefined);
    if (current.length !== 1)
      throw new Error(`the signing key file ${this.path} must have exactly one current key, found ${current.length}`);
    const privateKey = await importJWK({ ...current[0]!.privateJwk, alg: ALGORITHM }, ALGORITHM, { extractable: false });
    if (privateKey instanceof Uint8Array) throw new Error('unexpected symmetric key in the signing key file');
    this.keys = parsed.keys;
    this.signing = { kid: current[0]!.kid, privateKey };
    this.fileStamp = stamp;
  }

  private save(): void {
    writePrivateFileAtomic(this.path, JSON.stringify({ schema: 1, keys: this.keys }, null, 2) + '\n');
  }

  private stamp(): string {
    try {
      const stats = statSync(this.path);
      return `${stats.ino}:${stats.mtimeMs}:${stats.size}`;
    } catch {
      return 'missing';
    }
  }
}

async function newStoredKey(now: number): Promise<StoredKey> {
  const { privateKey } = await generateKeyPair(ALGORITHM, { extractable: true });
  const jwk = await exportJWK(privateKey);
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || !jwk.x || !jwk.d) throw new Error('key generation did not produce an Ed25519 key');
  const kid = await calculateJwkThumbprint({ kty: jwk.kty, crv: jwk.crv, x: jwk.x }, 'sha256');
  return { kid, createdAt: new Date(now).toISOString(), privateJwk: { kty: 'OKP', crv: 'Ed25519', x: jwk.x, d: jwk.d } };
}
