/**
 * `gatehouse secret`: the shared service keys the relay adds for `shared-key` servers.
 * Values are read from stdin, never from argv (shell history, `ps`) or the environment, and
 * never printed. The running policy server reads the store on every relayed call, so a
 * `set` is a rotation that takes effect on the next call, without a restart.
 */
import { explainUsage, parseCommandLine, UsageError } from '../../common/cli/commandLine';
import { openStoreDatabase } from '../store/postgresDatabase';
import { resolve } from 'node:path';
import { describeError } from '../../common/log/logger';
import { DEFAULT_DATA_DIR, storeOption } from './policyServerArgs';
import { SecretStore, SecretStoreError } from '../secrets/secretStore';
import { ensurePrivateDirectory } from '../../common/fs/privateFiles';

export const SECRET_USAGE = `Usage: gatehouse secret init-key <path>
       gatehouse secret set <id> --key-file <path> [--data-dir <dir> | --store postgres://...]   (the value on stdin)
       gatehouse secret list --key-file <path> [--data-dir <dir> | --store postgres://...]

init-key  writes a new random key for the secret store to <path> (0600); keep it outside
          the data dir and give it to the policy server with --secrets-key-file
set       stores (or rotates) the secret <id> (a catalog server's credential.secretRef),
          encrypted with that key; the running server uses it from the next call on
list      the ids and when each was last set, never the values
`;

export async function runSecretCommand(argv: string[], stdin: NodeJS.ReadableStream = process.stdin): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === 'init-key') {
      const [path] = rest;
      if (!path || rest.length !== 1) return usage('init-key takes one path');
      SecretStore.open(resolve('.'), resolve(path), { create: true });
      process.stdout.write(`wrote a new secret store key to ${resolve(path)} (0600)\n`);
      return 0;
    }
    if (command !== 'set' && command !== 'list') return usage(command ? `unknown secret command "${command}"` : 'which secret command?');
    const { values, positionals } = parseCommandLine(rest, {
      strings: ['data-dir', 'key-file', 'store', 'store-password-file'],
      positionals: true,
    });
    if (!values['key-file']) return usage('--key-file is required');
    const dataDir = resolve(values['data-dir'] ?? DEFAULT_DATA_DIR);
    ensurePrivateDirectory(dataDir);
    // With --store, the ciphertexts go to the database every replica reads.
    const storeDatabase = storeOption(values);
    const database = storeDatabase ? (await openStoreDatabase(storeDatabase, 1)).pool : undefined;
    try {
      const store = SecretStore.open(dataDir, resolve(values['key-file']), database ? { database } : {});
      if (command === 'list') {
        for (const { id, updatedAt } of await store.list()) process.stdout.write(`${id}\t${updatedAt}\n`);
        return 0;
      }
      const [id] = positionals;
      if (!id || positionals.length !== 1) return usage('set takes one secret id');
      const value = (await readAll(stdin)).replace(/\r?\n$/, '');
      await store.set(id, value);
      process.stdout.write(`secret ${id} set; the policy server uses it from the next relayed call\n`);
      return 0;
    } finally {
      await database?.end();
    }
  } catch (error) {
    if (error instanceof UsageError) return usage(error.message);
    if (error instanceof SecretStoreError) {
      process.stderr.write(`gatehouse secret: ${error.message}\n`);
      return 2;
    }
    process.stderr.write(`gatehouse secret: ${describeError(error)}\n`);
    return 1;
  }
}

function usage(problem: string): number {
  return explainUsage('secret', problem, SECRET_USAGE);
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}
