/**
 * Which audit events the Audit view shows: by server, tool, decision, age and free text.
 * Shared by the webview (what it lists) and its host (what an export writes), so an export
 * holds exactly the rows the reviewer was looking at. Pure and allocation-light: it runs
 * over 100,000 events on every keystroke.
 */
import type { AuditEvent } from '../../common/audit/auditEvent';
import type { AuditDecision } from '../../common/audit/auditVocabulary';

export interface AuditFilter {
  server?: string;
  tool?: string;
  decision?: AuditDecision;
  /** Only events at or after this time (ms since the epoch). */
  sinceMs?: number;
  /** Case-insensitive text that must appear in one of the event's fields. */
  text?: string;
}

const haystacks = new WeakMap<AuditEvent, string>();

/** The words a text search looks through, lower-cased once per event. */
function haystackOf(event: AuditEvent): string {
  let text = haystacks.get(event);
  if (text === undefined) {
    text = [
      event.server,
      event.tool ?? '',
      event.method,
      event.decision,
      event.rule ?? '',
      event.reviewer ?? '',
      event.status,
      event.user,
      event.client.name,
      ...event.flags,
      ...Object.keys(event.redactions),
      event.id,
    ]
      .join('\n')
      .toLowerCase();
    haystacks.set(event, text);
  }
  return text;
}

export function auditMatcher(filter: AuditFilter): (event: AuditEvent) => boolean {
  const text = filter.text?.trim().toLowerCase();
  const since = filter.sinceMs;
  return (event) =>
    (!filter.server || event.server === filter.server) &&
    (!filter.tool || event.tool === filter.tool) &&
    (!filter.decision || event.decision === filter.decision) &&
    (since === undefined || Date.parse(event.time) >= since) &&
    (!text || haystackOf(event).includes(text));
}

/** Total redactions of an event, for the list's column. */
export function redactionCount(event: AuditEvent): number {
  let total = 0;
  for (const count of Object.values(event.redactions)) total += count;
  return total;
}
