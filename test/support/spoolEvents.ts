/** Reading a gateway's local audit spool in tests (also inside VS Code, so nothing else is imported). */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditEvent } from '../../common/audit/auditEvent';

/** The audit events in a gateway's local spool (`<state dir>/audit`), oldest first. */
export function spoolEvents(stateDir: string): AuditEvent[] {
  const dir = join(stateDir, 'audit');
  return readdirSync(dir)
    .filter((f) => /^audit-\d+\.jsonl$/.test(f))
    .sort()
    .flatMap((file) => readFileSync(join(dir, file), 'utf8').split('\n').filter(Boolean))
    .map((line) => JSON.parse(line) as { kind: string; event?: AuditEvent })
    .filter((record) => record.kind === 'event')
    .map((record) => record.event!);
}

/** How far the policy server has acknowledged a gateway's spool (`<state dir>/audit/shipped.json`); 0 before anything was. */
export function spoolShippedThrough(stateDir: string): number {
  try {
    return (JSON.parse(readFileSync(join(stateDir, 'audit', 'shipped.json'), 'utf8')) as { seq: number }).seq;
  } catch {
    return 0;
  }
}
