/**
 * The durable-append primitives of the two append-only logs (the gateway's audit spool and
 * the policy server's audit store): a segment file is created exclusively and made to
 * survive a crash before anything is written to it, and a commit returns only once its
 * bytes are on disk. Both logs acknowledge a record only after `appendDurably`.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { fsyncDirectory } from './fsyncDirectory';

/** Creates `path` (in `dir`) for appending: it must not exist yet, a symlink is not followed, 0600; the folder is fsync'ed so the new name survives a crash. */
export async function createAppendOnlyFile(dir: string, path: string): Promise<FileHandle> {
  const handle = await open(
    path,
    fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW,
    0o600,
  );
  fsyncDirectory(dir);
  return handle;
}

/** Opens an existing segment to append to after a restart (a symlink is not followed). */
export function openForAppend(path: string): Promise<FileHandle> {
  return open(path, fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_NOFOLLOW);
}

/** Writes all of `bytes` at the end of the file, then fdatasync: on return they are durable. */
export async function appendDurably(handle: FileHandle, bytes: Buffer): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, written, bytes.length - written);
    written += bytesWritten;
  }
  await handle.datasync();
}
