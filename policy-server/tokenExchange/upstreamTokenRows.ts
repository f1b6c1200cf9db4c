/**
 * Where the per-user upstream tokens of `relay-oauth` servers are kept, as ciphertexts
 * (upstreamTokens.ts seals them): `upstream-tokens.json` (0600) in the data dir for one
 * policy server, or the `relay_user_tokens` table with `--store`, so every replica uses
 * (and a revocation deletes) the same rows.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { ensurePrivateFile, writePrivateFileAtomic } from '../../common/fs/privateFiles';

export interface UpstreamTokenRows {
  read(serverId: string, sub: string): Promise<string | undefined>;
  write(serverId: string, sub: string, jwe: string): Promise<void>;
  /** Deletes the user's rows: for one server, or all of them. */
  delete(sub: string, serverId?: string): Promise<void>;
}

const TOKENS_FILE = 'upstream-tokens.json';

interface TokensFile {
  version: 1;
  /** By server id, then subject. */
  tokens: Record<string, Record<string, string>>;
}

export class FileUpstreamTokenRows implements UpstreamTokenRows {
  private readonly path: string;

  constructor(dataDir: string) {
    this.path = join(dataDir, TOKENS_FILE);
  }

  async read(serverId: string, sub: string): Promise<string | undefined> {
    return this.file().tokens[serverId]?.[sub];
  }

  async write(serverId: string, sub: string, jwe: string): Promise<void> {
    const file = this.file();
    (file.tokens[serverId] ??= {})[sub] = jwe;
    this.save(file);
  }

  async delete(sub: string, serverId?: string): Promise<void> {
    const file = this.file();
    for (const [id, bySub] of Object.entries(file.tokens)) if (serverId === undefined || id === serverId) delete bySub[sub];
    this.save(file);
  }

  private file(): TokensFile {
    if (!existsSync(this.path)) return { version: 1, tokens: {} };
    ensurePrivateFile(this.path);
    const parsed = JSON.parse(readFileSync(this.path, 'utf8')) as Partial<TokensFile>;
    if (parsed.version !== 1 || typeof parsed.tokens !== 'object' || parsed.tokens === null)
      throw new Error(`${this.path} is not a Gatehouse upstream token file.`);
    // Null-prototype maps: a server id or subject such as `__proto__` is just a key.
    const tokens: TokensFile['tokens'] = Object.create(null) as TokensFile['tokens'];
    for (const [id, bySub] of Object.entries(parsed.tokens))
      tokens[id] = Object.assign(Object.create(null) as Record<string, string>, bySub);
    return { version: 1, tokens };
  }

  private save(file: TokensFile): void {
    writePrivateFileAtomic(this.path, JSON.stringify(file) + '\n');
  }
}

export class PostgresUpstreamTokenRows implements UpstreamTokenRows {
  constructor(private readonly pool: pg.Pool) {}

  async read(serverId: string, sub: string): Promise<string | undefined> {
    const { rows } = await this.pool.query<{ jwe: string }>('select jwe from relay_user_tokens where server_id = $1 and sub = $2', [
      serverId,
      sub,
    ]);
    return rows[0]?.jwe;
  }

  async write(serverId: string, sub: string, jwe: string): Promise<void> {
    await this.pool.query(
      'insert into relay_user_tokens (server_id, sub, jwe) values ($1, $2, $3) on conflict (server_id, sub) do update set jwe = excluded.jwe',
      [serverId, sub, jwe],
    );
  }

  async delete(sub: string, serverId?: string): Promise<void> {
    if (serverId === undefined) await this.pool.query('delete from relay_user_tokens where sub = $1', [sub]);
    else await this.pool.query('delete from relay_user_tokens where sub = $1 and server_id = $2', [sub, serverId]);
  }
}
