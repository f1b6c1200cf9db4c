/**
 * The policy server's store of shared service keys (credential mode `shared-key`): each key
 * a compact JWE (`dir` + A256GCM, by `jose`) under a 256-bit key that lives in its own file
 * (`--secrets-key-file`, 0600): the one secret an operator manages, kept apart from the
 * data it unlocks. The ciphertexts live in `secrets.json` in the data dir (0600), or in
 * PostgreSQL with `--store` (every replica reads the same rows; each replica is given the
 * same key file). The secret's id is the JWE's integrity-protected `kid`, so a ciphertext
 * moved to another id does not decrypt as that id. Every read goes to the rows, so
 * `gatehouse secret set` (rotation) takes effect on the next relayed call without a
 * restart. Values never leave this module except to the relay, and never appear in an
 * error message.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { CompactEncrypt, compactDecrypt } from 'jose';
import type pg from 'pg';
import { ensurePrivateFile, writePrivateFileAtomic } from '../../common/fs/privateFiles';

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

/** Where the ciphertexts are kept. */
export interface SecretRows {
  read(id: string): Promise<{ jwe: string; updatedAt: string } | undefined>;
  write(id: string, jwe: string, updatedAt: string): Promise<void>;
  list(): Promise<Array<{ id: string; updatedAt: string }>>;
}

export class SecretStore {
  private constructor(
    private readonly rows: SecretRows,
    private readonly key: Uint8Array,
  ) {}

  /**
   * Opens the store with the key in `keyFile` (created, 0600, when `create` and it does not
   * exist); the ciphertexts in `dataDir`'s file, or in `database` when given.
   */
  static open(dataDir: string, keyFile: string, options: { create?: boolean; database?: pg.Pool } = {}): SecretStore {
    if (!existsSync(keyFile)) {
      if (!options.create)
        throw new SecretStoreError(`The secrets key file ${keyFile} does not exist (gatehouse secret init-key creates one).`);
      writeFileSync(keyFile, `${Buffer.from(randomBytes(KEY_BYTES)).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    }
    const stats = statSync(keyFile);
    if ((stats.mode & 0o077) !== 0)
      throw new SecretStoreError(`The secrets key file ${keyFile} must be readable by its owner only (chmod 600).`);
    const key = Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'base64url');
    if (key.length !== KEY_BYTES)
      throw new SecretStoreError(`The secrets key file ${keyFile} must hold ${KEY_BYTES} random bytes, base64url-encoded.`);
    return new SecretStore(
      options.database ? new PostgresSecretRows(options.database) : new FileSecretRows(join(dataDir, SECRETS_FILE)),
      key,
    );
  }

  /** Stores (or replaces) the value of secret `id`. */
  async set(id: string, value: string): Promise<void> {
    if (!SECRET_ID.test(id)) throw new SecretStoreError('A secret id is 1 to 128 letters, digits, dots, dashes or underscores.');
    if (value.length === 0 || Buffer.byteLength(value) > MAX_SECRET_BYTES)
      throw new SecretStoreError(`A secret is 1 byte to ${MAX_SECRET_BYTES / 1024} KB.`);
    await this.rows.write(id, await this.seal(id, value), new Date().toISOString());
  }

  /** The value of secret `id`, or undefined when there is none. */
  async get(id: string): Promise<string | undefined> {
    const entry = await this.rows.read(id);
    return entry ? this.unseal(id, entry.jwe) : undefined;
  }

  /**
   * `value` encrypted under this store's key and bound to `label` (the JWE's
   * integrity-protected `kid`): other stores of the policy server (per-user upstream
   * tokens) keep their values with the same one key.
   */
  seal(label: string, value: string): Promise<string> {
    return new CompactEncrypt(new TextEncoder().encode(value))
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: label })
      .encrypt(this.key);
  }

  /** What `seal(label, ...)` encrypted; throws (naming the label, never a value) for another key, label or an altered text. */
  async unseal(label: string, jwe: string): Promise<string> {
    try {
      const { plaintext, protectedHeader } = await compactDecrypt(jwe, this.key);
      if (protectedHeader.kid !== label) throw new Error('bound to another label');
      return new TextDecoder().decode(plaintext);
    } catch {
      throw new SecretStoreError(`"${label}" cannot be decrypted with this key: it was written with another key or altered.`);
    }
  }

  /** Ids and last update times, never values. */
  list(): Promise<Array<{ id: string; updatedAt: string }>> {
    return this.rows.list();
  }
}

class FileSecretRows implements SecretRows {
  constructor(private readonly path: string) {}

  async read(id: string): Promise<{ jwe: string; updatedAt: string } | undefined> {
    return this.file().secrets[id];
  }

  async write(id: string, jwe: string, updatedAt: string): Promise<void> {
    const file = this.file();
    file.secrets[id] = { jwe, updatedAt };
    writePrivateFileAtomic(this.path, JSON.stringify(file, null, 2) + '\n');
  }

  async list(): Promise<Array<{ id: string; updatedAt: string }>> {
    return Object.entries(this.file().secrets)
      .map(([id, entry]) => ({ id, updatedAt: entry.updatedAt }))
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  private file(): SecretsFile {
    if (!existsSync(this.path)) return { version: 1, secrets: {} };
    ensurePrivateFile(this.path);
    const parsed = JSON.parse(readFileSync(this.path, 'utf8')) as Partial<SecretsFile>;
    if (parsed.version !== 1 || typeof parsed.secrets !== 'object' || parsed.secrets === null)
      throw new SecretStoreError(`${this.path} is not a Gatehouse secrets file.`);
    return { version: 1, secrets: parsed.secrets };
  }
}

/** The ciphertexts in PostgreSQL (`--store`), shared by every replica. */
class PostgresSecretRows implements SecretRows {
  constructor(private readonly pool: pg.Pool) {}

  async read(id: string): Promise<{ jwe: string; updatedAt: string } | undefined> {
    const { rows } = await this.pool.query<{ jwe: string; updated_at: string }>('select jwe, updated_at from relay_secrets where id = $1', [
      id,
    ]);
    return rows[0] ? { jwe: rows[0].jwe, updatedAt: rows[0].updated_at } : undefined;
  }

  async write(id: string, jwe: string, updatedAt: string): Promise<void> {
    await this.pool.query(
      'insert into relay_secrets (id, jwe, updated_at) values ($1, $2, $3) on conflict (id) do update set jwe = excluded.jwe, updated_at = excluded.updated_at',
      [id, jwe, updatedAt],
    );
  }

  async list(): Promise<Array<{ id: string; updatedAt: string }>> {
    const { rows } = await this.pool.query<{ id: string; updated_at: string }>('select id, updated_at from relay_secrets order by id');
    return rows.map((row) => ({ id: row.id, updatedAt: row.updated_at }));
  }
}
