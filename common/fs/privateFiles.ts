/**
 * Files only their owner may read: launch secrets, signing and audit keys, policy caches,
 * pins, the policy server's data. A private folder is 0700, ours and not a symlink; a
 * private file is 0600; files are replaced atomically (temp file opened O_EXCL|O_NOFOLLOW,
 * fsync, rename, fsync of the folder), so a crash leaves the old or the new version, never
 * half a key, and a symlink planted at the temp name is not followed.
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
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fsyncDirectory, fsyncDirectoryAsync } from './fsyncDirectory';

const CREATE_PRIVATE = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;

/**
 * Creates a folder Gatehouse owns (0700) and insists it stays private: refused when it is a
 * symlink or another user's, re-permissioned when others can read it. Only for Gatehouse's
 * own folders; a folder the user named (think /tmp) goes through `ensureDirectory`.
 * `holds` says what is kept there, for the error a user reads.
 */
export function ensurePrivateDirectory(path: string, holds = 'private files (keys, secrets)'): void {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  const stats = lstatSync(path);
  if (!stats.isDirectory() || stats.isSymbolicLink()) throw new Error(`${path} is not a directory`);
  if (typeof process.getuid === 'function' && stats.uid !== process.getuid()) {
    throw new Error(`${path} is owned by another user; Gatehouse keeps ${holds} there, so this user must own the folder`);
  }
  if ((stats.mode & 0o077) !== 0) chmodSync(path, 0o700);
}

/** Creates a folder (0700 when new) that the user may have named; an existing one is left as it is. */
export function ensureDirectory(path: string): void {
  mkdirSync(path, { recursive: true, mode: 0o700 });
}

/** Makes an existing file private (0600) if it is not already; refuses anything but a regular file. */
export function ensurePrivateFile(path: string): void {
  const stats = lstatSync(path);
  if (!stats.isFile()) throw new Error(`${path} is not a regular file`);
  if ((stats.mode & 0o777) !== 0o600) chmodSync(path, 0o600);
}

function temporaryPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
}

/** Replaces `path` with `content` (0600), atomically. */
export function writePrivateFileAtomic(path: string, content: string | Uint8Array): void {
  const temporary = temporaryPath(path);
  rmSync(temporary, { force: true });
  const fd = openSync(temporary, CREATE_PRIVATE, 0o600);
  try {
    try {
      const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
      // writeSync may write less than asked (a full disk, a signal): go on until all is written.
      for (let written = 0; written < bytes.length;) written += writeSync(fd, bytes, written);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true }); // it may hold a key: never leave it behind
    throw error;
  }
  fsyncDirectory(dirname(path));
}

/** As `writePrivateFileAtomic`, off the event loop (for files rewritten while the gateway serves calls). */
export async function writePrivateFileAtomicAsync(path: string, content: string): Promise<void> {
  const temporary = temporaryPath(path);
  await rm(temporary, { force: true });
  const handle = await open(temporary, CREATE_PRIVATE, 0o600);
  try {
    try {
      await handle.writeFile(content, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  await fsyncDirectoryAsync(dirname(path));
}

/** Reads a private file, making it 0600 if needed and refusing a symlink planted in its place. */
export function readPrivateFile(path: string): Buffer {
  ensurePrivateFile(path);
  const fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  try {
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes a one-line secret (a launch secret) for `readSecretFile`: 0600, atomically. */
export function writeSecretFile(path: string, value: string): void {
  writePrivateFileAtomic(path, value + '\n');
}

/** A secret from a file only its owner can read (a password, a client secret); never from argv or env. */
export function readSecretFile(path: string): string {
  const stats = statSync(path);
  if ((stats.mode & 0o077) !== 0) throw new Error(`${path} must not be readable by others (chmod 600)`);
  const value = readFileSync(path, 'utf8').trim();
  if (!value) throw new Error(`${path} is empty`);
  return value;
}
