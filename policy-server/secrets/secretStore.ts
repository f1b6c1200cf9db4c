/**
 * The policy server's store of shared service keys (credential mode `shared-key`): one file,
 * `secrets.json` in the data dir (0600), holding each key as a compact JWE (`dir` +
 * A256GCM, by `jose`) under a 256-bit key that lives in its own file (`--secrets-key-file`,
 * 0600): the one secret an operator manages, kept apart from the data it unlocks. The
 * secret's id is the JWE's integrity-protected `kid`, so a ciphertext moved to another id
 * does not decrypt as that id. Every read goes to the file, so `gatehouse secret set`
 * (rotation) takes effect on the next relayed call without a restart. Values never leave
 * this module except to the relay, and never appear in an error message.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { CompactEncrypt, compactDecrypt } from 'jose';
import { ensurePrivateFile, writePrivateFileAtomic } from '../store/privateFiles';

export const SECRETS_FILE = 'secrets.json';
const KEY_BYTES = 32;
/** Secret ids are the policy's `secretRef`s. */
export const SECRET_ID = /^[A-Za-z0-9_.-]{1,128}$/;
const MAX_SECRET_BYTES = 16 * 1024;

interface SecretsFile {
  version: 1;
  secrets: Record<string, { jwe: string; updatedAt: string }>;
}

export class SecretStoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretStoreError';
  }
}

export class SecretStore {
  private constructor(private readonly path: string, private readonly key: Uint8Array) {}

  /** Opens the store in `dataDir` with the key in `keyFile` (created, 0600, when `create` and it does not exist). */
  static open(dataDir: string, keyFile: string, options: { create?: boolean } = {}): SecretStore {
    if (!existsSync(keyFile)) {
      if (!options.create) throw new SecretStoreError(`The secrets key file ${keyFile} does not exist (gatehouse secret init-key creates one).`);
      writeFileSync(keyFile, `${Buffer.from(randomBytes(KEY_BYTES)).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    }
    const stats = statSync(keyFile);
    if ((stats.mode & 0o077) !== 0) throw new SecretStoreError(`The secrets key file ${keyFile} must be readable by its owner only (chmod 600).`);
    const key = Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'base64url');
    if (key.length !== KEY_BYTES) throw new SecretStoreError(`The secrets key file ${keyFile} must hold ${KEY_BYTES} random bytes, base64url-encoded.`);
    return new SecretStore(join(dataDir, SECRETS_FILE), key);
  }

  /** Stores (or replaces) the value of secret `id`. */
  async set(id: string, value: string): Promise<void> {
    if (!SECRET_ID.test(id)) throw new SecretStoreError('A secret id is 1 to 128 letters, digits, dots, dashes or underscores.');
    if (value.length === 0 || Buffer.byteLength(value) > MAX_SECRET_BYTES) throw new SecretStoreError(`A secret is 1 byte to ${MAX_SECRET_BYTES / 1024} KB.`);
    const jwe = await new CompactEncrypt(new TextEncoder().encode(value)).setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: id }).encrypt(this.key);
    const file = this.read();
    file.secrets[id] = { jwe, updatedAt: new Date().toISOString() };
    writePrivateFileAtomic(this.path, JSON.stringify(file, null, 2) + '\n');
  }

  /** The value of secret `id`, or undefined when there is none. */
  async get(id: string): Promise<string | undefined> {
    const entry = this.read().secrets[id];
    if (!entry) return undefined;
    try {
      const { plaintext, protectedHeader } = await compactDecrypt(entry.jwe, this.key);
      if (protectedHeader.kid !== id) throw new Error('bound to another id');
      return new TextDecoder().decode(plaintext);
    } catch {
      throw new SecretStoreError(`Secret "${id}" cannot be decrypted with this key: it was written with another key or altered.`);
    }
  }

  /** Ids and last update times, never values. */
  list(): Array<{ id: string; updatedAt: string }> {
    return Object.entries(this.read().secrets).map(([id, entry]) => ({ id, updatedAt: entry.updatedAt })).sort((a, b) => a.id.localeCompare(b.id));
  }

  private read(): SecretsFile {
    if (!existsSync(this.path)) return { version: 1, secrets: {} };
    ensurePrivateFile(this.path);
    const parsed = JSON.parse(readFileSync(this.path, 'utf8')) as Partial<SecretsFile>;
    if (parsed.version !== 1 || typeof parsed.secrets !== 'object' || parsed.secrets === null) throw new SecretStoreError(`${this.path} is not a Gatehouse secrets file.`);
    return { version: 1, secrets: parsed.secrets };
  }
}
