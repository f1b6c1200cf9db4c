/**
 * File-system ground rules for the audit spool: the folder is private (0700, ours, not a
 * symlink), every file in it 0600; small state files are replaced atomically (temp file,
 * fsync, rename, fsync of the folder) so a crash leaves the old or the new version, never
 * half; and one process at a time owns the spool (a pid lock file, taken over when the
 * process that left it is gone).
 */
import {
  chmodSync, closeSync, constants as fsConstants, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, unlinkSync, writeSync,
} from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
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

/** Makes a new or renamed directory entry durable; without it a crash can lose the file itself. */
export function fsyncDirectory(path: string): void {
  const fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
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

/**
 * Two writers on one spool would interleave and fork the chain, so the spool is owned by
 * one process: `spool.lock` holds its pid. A lock whose process is gone (a crash, SIGKILL)
 * is taken over.
 */
export class SpoolLock {
  private released = false;

  private constructor(private readonly path: string) {}

  static acquire(dir: string): SpoolLock {
    const path = join(dir, LOCK_FILE);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o600);
        try {
          writeSync(fd, `${process.pid}\n`);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        return new SpoolLock(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const owner = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
      if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) {
        throw new Error(`the audit spool ${dir} is in use by process ${owner}; one gateway writes a spool at a time (if that process is not a gateway, delete ${path})`);
      }
      unlinkSync(path); // left by a process that is gone
    }
    throw new Error(`could not take the audit spool lock ${path}`);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    rmSync(this.path, { force: true });
  }
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
