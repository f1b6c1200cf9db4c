/**
 * File-system ground rules for the audit spool: the folder and its files are private
 * (common/fs/privateFiles.ts: 0700 folder, 0600 files, atomic replacement), and one process
 * at a time owns the spool (a pid lock file, taken over when the process that left it is gone).
 */
import { join } from 'node:path';
import { ProcessLock } from '../../common/processLock';

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
