/**
 * Which state folder this window's gateway uses. Each VS Code window runs its own extension
 * host, so its own gateway, and a gateway's audit spool takes one writer only: two windows
 * sharing a folder would leave the second without a gateway. The first window takes
 * `state/`, the next `state-2/` and so on; a window holds its slot (a lock file with its
 * extension host's pid) until it closes, and a slot whose window is gone (a crash) is
 * taken over. Each slot's audit is shipped on its own; tool pins taken on first use are
 * per slot (the org's pins are the same for all).
 */
import { join } from 'node:path';
import { ensureDirectory } from '../../common/fs/privateFiles';
import { ProcessLock } from '../../common/processLock';

const MAX_SLOTS = 32;

export class StateSlot {
  private constructor(
    readonly dir: string,
    private readonly lock: ProcessLock,
  ) {}

  static acquire(storageDir: string): StateSlot {
    for (let slot = 1; slot <= MAX_SLOTS; slot++) {
      const dir = join(storageDir, slot === 1 ? 'state' : `state-${slot}`);
      ensureDirectory(dir);
      try {
        return new StateSlot(
          dir,
          ProcessLock.acquire(join(dir, 'window.lock'), (pid) => `held by window ${pid}`),
        );
      } catch {
        continue; // another open window has it
      }
    }
    throw new Error(`more than ${MAX_SLOTS} VS Code windows run Gatehouse at once`);
  }

  dispose(): void {
    this.lock.release();
  }
}
