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

/**
 * The spool's events once every call the gateway has answered has its outcome event in it.
 * The gateway answers a call when the call's intent is durable (`<state dir>/audit/
 * intents.jsonl`); its outcome event follows a moment later. Waits (up to `timeoutMs`) until
 * every intent in the journal has an event in the spool, then returns `spoolEvents`.
 */
export async function settledSpoolEvents(stateDir: string, timeoutMs = 5_000): Promise<AuditEvent[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const events = spoolEvents(stateDir);
    const recorded = new Set(events.map((event) => event.id));
    const waiting = intentIds(stateDir).filter((id) => !recorded.has(id));
    if (waiting.length === 0) return events;
    if (Date.now() > deadline) throw new Error(`${waiting.length} answered call(s) still have no outcome event after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Event ids in the gateway's intent journal (whole lines only). */
function intentIds(stateDir: string): string[] {
  let text: string;
  try {
    text = readFileSync(join(stateDir, 'audit', 'intents.jsonl'), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .slice(0, -1)
    .map((line) => (JSON.parse(line) as { event: { id: string } }).event.id);
}

/** How far the policy server has acknowledged a gateway's spool (`<state dir>/audit/shipped.json`); 0 before anything was. */
export function spoolShippedThrough(stateDir: string): number {
  try {
    return (JSON.parse(readFileSync(join(stateDir, 'audit', 'shipped.json'), 'utf8')) as { seq: number }).seq;
  } catch {
    return 0;
  }
}
