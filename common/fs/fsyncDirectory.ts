/**
 * Makes a new or renamed directory entry durable: after creating or renaming a file, the
 * file's own fsync is not enough; without the folder's, a crash can lose the name itself.
 */
import { closeSync, constants as fsConstants, fsyncSync, openSync } from 'node:fs';
import { open } from 'node:fs/promises';

const DIRECTORY = fsConstants.O_RDONLY | fsConstants.O_DIRECTORY;

export function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** As `fsyncDirectory`, off the event loop. */
export async function fsyncDirectoryAsync(dir: string): Promise<void> {
  const handle = await open(dir, DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
