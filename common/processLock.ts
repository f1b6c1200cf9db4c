/**
 * One writer per append-only log (the gateway's audit spool, the policy server's audit
 * store): two would interleave records and fork the hash chain. The lock file holds the
 * owner's pid; a lock whose process is gone (a crash, SIGKILL) is taken over. A lock with
 * our own pid is ours only if this process took it: pids repeat across container restarts.
 */
import { closeSync, constants as fsConstants, fsyncSync, openSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs';

const heldByThisProcess = new Set<string>();

export class ProcessLock {
  private released = false;

  private constructor(private readonly path: string) {}

  /** Takes the lock at `path`; `inUse` explains a refusal in the caller's terms. */
  static acquire(path: string, inUse: (ownerPid: number) => string): ProcessLock {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o600);
        try {
          writeSync(fd, `${process.pid}\n`);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        heldByThisProcess.add(path);
        return new ProcessLock(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const owner = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
      if (Number.isInteger(owner) && owner > 0 && isAlive(owner, path)) throw new Error(inUse(owner));
      unlinkSync(path); // left by a process that is gone
    }
    throw new Error(`could not take the lock ${path}`);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    heldByThisProcess.delete(this.path);
    rmSync(this.path, { force: true });
  }
}

function isAlive(pid: number, lockPath: string): boolean {
  if (pid === process.pid) return heldByThisProcess.has(lockPath);
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
