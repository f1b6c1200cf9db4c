/**
 * The data directory holds the signing keys and the policy history, so it is private to
 * the service account: the folder is 0700 and owned by us, every file in it 0600, and
 * files are replaced atomically (temp file + fsync + rename) so a crash never leaves half
 * a key or half a database.
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
  statSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';

export function ensurePrivateDirectory(path: string): void {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  const stats = lstatSync(path);
  if (!stats.isDirectory() || stats.isSymbolicLink()) throw new Error(`${path} is not a directory`);
  if (typeof process.getuid === 'function' && stats.uid !== process.getuid()) {
    throw new Error(`${path} is owned by another user; the policy server keeps its signing keys there, so it must own the folder`);
  }
  if ((stats.mode & 0o077) !== 0) chmodSync(path, 0o700);
}

/** Makes an existing file private (0600) if it is not already. */
export function ensurePrivateFile(path: string): void {
  const stats = lstatSync(path);
  if (!stats.isFile()) throw new Error(`${path} is not a regular file`);
  if ((stats.mode & 0o777) !== 0o600) chmodSync(path, 0o600);
}

export function writePrivateFileAtomic(path: string, text: string): void {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  rmSync(temporary, { force: true });
  const fd = openSync(temporary, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
}

/** A secret from a file only its owner can read (a password, a client secret); never from argv or env. */
export function readSecretFile(path: string): string {
  const stats = statSync(path);
  if ((stats.mode & 0o077) !== 0) throw new Error(`${path} must not be readable by others (chmod 600)`);
  const value = readFileSync(path, 'utf8').trim();
  if (!value) throw new Error(`${path} is empty`);
  return value;
}
