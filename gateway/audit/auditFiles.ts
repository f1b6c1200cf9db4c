/**
 * File-system ground rules for the audit spool: the folder is private (0700, ours, not a
 * symlink), every file in it 0600; small state files are replaced atomically (temp file,
 * fsync, rename, fsync of the folder) so a crash leaves the old or the new version, never
 * half; and one process at a time owns the spool (a pid lock file, taken over when the
 * process that left it is gone).
 */
import {
  chmodSync,
  closeSync,
  constants as fsConstants,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { fsyncDirectory, ProcessLock } from '../../common/processLock';

export { fsyncDirectory };
import { basename, dirname, join } from 'node:path';

export function ensurePrivateDirectory(path: string): void {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  const stats = lstatSync(path);
  if (!stats.isDirectory() || stats.isSymbolicLink()) throw new Error(`${path} is not a directory`);
  if (typeof process.getuid === 'function' && stats.uid !== process.getuid()) {
    throw new Error(`${path} is owned by another user; the audit spool keeps its keys there, so this user must own the folder`);
  }
  if ((stats.mode & 0o077) !== 0) chmodSync(path, 0o700);
}

/** Makes an existing file private (0600) if it is not already; refuses anything but a regular file. */
export function ensurePrivateFile(path: string): void {
  const stats = lstatSync(path);
  if (!stats.isFile()) throw new Error(`${path} is not a regular file`);
  if ((stats.mode & 0o777) !== 0o600) chmodSync(path, 0o600);
}

export function writePrivateFileAtomic(path: string, content: string | Uint8Array): void {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  rmSync(temporary, { force: true });
  const fd = openSync(temporary, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, typeof content === 'string' ? Buffer.from(content, 'utf8') : content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
  fsyncDirectory(dirname(path));
}

/** As `writePrivateFileAtomic`, off the event loop (for files rewritten while the gateway serves calls). */
export async function writePrivateFileAtomicAsync(path: string, content: string): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  await rm(temporary, { force: true });
  const handle = await open(temporary, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o600);
  try {
    await handle.writeFile(content, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, path);
  const dir = await open(dirname(path), fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** Reads a private file, refusing a symlink planted in its place. */
export function readPrivateFile(path: string): Buffer {
  ensurePrivateFile(path);
  const fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  try {
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

export const LOCK_FILE = 'spool.lock';

/** The spool's owner: one gateway writes a spool at a time. */
export class SpoolLock {
  private constructor(private readonly lock: ProcessLock) {}

  static acquire(dir: string): SpoolLock {
    const path = join(dir, LOCK_FILE);
    return new SpoolLock(
      ProcessLock.acquire(
        path,
        (owner) =>
          `the audit spool ${dir} is in use by process ${owner}; one gateway writes a spool at a time (if that process is not a gateway, delete ${path})`,
      ),
    );
  }

  release(): void {
    this.lock.release();
  }
}
