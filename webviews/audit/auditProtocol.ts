/**
 * Messages between the Audit webview and its host (extension/audit/auditPanel.ts). The
 * webview says `ready` once it listens; the host answers with the trail it holds, the
 * newest events first (`reset`, then `older` chunks, so the first screen does not wait for
 * 100,000 events to cross), and streams new events as the gateway makes them durable
 * (`append`). The
 * webview reports what it rendered (for the status line and the tests) and asks the host
 * to export the rows its filter shows.
 */
import type { AuditEvent } from '../../common/audit/auditEvent';
import { isAuditExportFormat, type AuditExportFormat } from '../../common/audit/auditExportFormat';
import { AUDIT_DECISIONS } from '../../common/audit/auditVocabulary';
import type { AuditFilter } from './auditFilter';

export type AuditHostMessage =
  /** The newest events; `olderToCome` more follow in `older` messages, newest chunk first. */
  | { type: 'reset'; events: AuditEvent[]; olderToCome: number }
  | { type: 'older'; events: AuditEvent[]; olderToCome: number }
  | { type: 'append'; events: AuditEvent[] }
  /** Narrow the view, e.g. to one server when opened from the sidebar. */
  | { type: 'filter'; filter: AuditFilter }
  | { type: 'exported'; format: AuditExportFormat; count: number; target: string }
  | { type: 'exportFailed'; message: string };

export type AuditViewMessage =
  | { type: 'ready' }
  | { type: 'export'; format: AuditExportFormat; filter: AuditFilter }
  | { type: 'rendered'; shown: number; total: number; filterMs: number };

function isFilter(value: unknown): value is AuditFilter {
  if (typeof value !== 'object' || value === null) return false;
  const filter = value as Record<string, unknown>;
  const optionalString = (key: string) =>
    filter[key] === undefined || (typeof filter[key] === 'string' && (filter[key] as string).length <= 1024);
  return (
    optionalString('server') &&
    optionalString('tool') &&
    optionalString('text') &&
    (filter.decision === undefined || (AUDIT_DECISIONS as readonly unknown[]).includes(filter.decision)) &&
    (filter.sinceMs === undefined || Number.isFinite(filter.sinceMs))
  );
}

/** Checks a message from the webview: it is untrusted input to the extension host. */
export function isAuditViewMessage(value: unknown): value is AuditViewMessage {
  if (typeof value !== 'object' || value === null) return false;
  const message = value as Record<string, unknown>;
  switch (message.type) {
    case 'ready':
      return true;
    case 'export':
      return isAuditExportFormat(message.format) && isFilter(message.filter);
    case 'rendered':
      return Number.isInteger(message.shown) && Number.isInteger(message.total) && Number.isFinite(message.filterMs);
    default:
      return false;
  }
}
