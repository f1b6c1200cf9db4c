/**
 * A real PostgreSQL for tests, from Debian's packages (`apt-get install postgresql`; .ci/run
 * installs it): a fresh cluster made by `initdb` in a temporary folder, the server on
 * 127.0.0.1 and a random port, trust authentication (loopback only, the cluster lives as
 * long as the test), fsync off for speed (the tests kill policy servers, not PostgreSQL).
 * As root (CI) the cluster runs as the `postgres` account, which PostgreSQL requires.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, waitUntil } from './gatewayHarness';
import { describeError } from '../../common/log/logger';

export interface RunningPostgres {
  /** `postgres://gatehouse@127.0.0.1:<port>/gatehouse` (no password: trust on loopback). */
  url: string;
  /** Runs SQL as the test's superuser (checks, counts). */
  query<T extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, values?: unknown[]): Promise<pg.QueryResult<T>>;
  stop(): Promise<void>;
}

/** The newest PostgreSQL server binaries Debian installed, or undefined. */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : undefined;
}

export async function startPostgres(): Promise<RunningPostgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('PostgreSQL is not installed: apt-get install postgresql (.ci/run does)');
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-pg-'));
  const data = join(dir, 'data');
  mkdirSync(data);
  const asRoot = process.getuid?.() === 0;
  if (asRoot) execFileSync('chown', ['-R', 'postgres:postgres', dir]);
  const command = (program: string, args: string[]): [string, string[]] =>
    asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, program), ...args]] : [join(bin, program), args];
  const [initdb, initArgs] = command('initdb', ['-D', data, '-U', 'gatehouse', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  execFileSync(initdb, initArgs, { stdio: 'pipe' });
  const port = await freePort();
  const [postgres, args] = command('postgres', [
    '-D',
    data,
    '-p',
    String(port),
    '-k',
    dir,
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'fsync=off',
    '-c',
    'max_connections=200',
  ]);
  const child: ChildProcess = spawn(postgres, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (c: Buffer) => {
    log += c.toString();
  });
  const admin = new pg.Pool({ host: '127.0.0.1', port, user: 'gatehouse', database: 'postgres', max: 2 });
  try {
    await waitUntil(
      async () =>
        admin.query('select 1').then(
          () => true,
          () => false,
        ),
      20_000,
      100,
    );
    await admin.query('create database gatehouse');
  } catch (error) {
    child.kill();
    throw new Error(`PostgreSQL did not start: ${describeError(error)}\n${log}`, { cause: error });
  }
  await admin.end();
  const pool = new pg.Pool({ host: '127.0.0.1', port, user: 'gatehouse', database: 'gatehouse', max: 2 });
  return {
    url: `postgres://gatehouse@127.0.0.1:${port}/gatehouse`,
    query: (sql, values) => pool.query(sql, values),
    async stop() {
      await pool.end().catch(() => undefined);
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGINT'); // fast shutdown
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
