/**
 * The words an audit event's `decision` and `status` take. Kept apart from auditEvent.ts
 * (which needs node:crypto) so the Audit webview can use them in the browser.
 */
export const AUDIT_DECISIONS = ['allow', 'deny', 'confirm-approved', 'confirm-denied', 'confirm-timeout'] as const;
export type AuditDecision = (typeof AUDIT_DECISIONS)[number];

/** `unknown`: the call went upstream and the gateway stopped before its outcome was recorded (see gateway/audit/intentJournal.ts). */
export const AUDIT_RESULT_STATUSES = ['ok', 'error', 'denied', 'upstream-error', 'unknown'] as const;
export type AuditResultStatus = (typeof AUDIT_RESULT_STATUSES)[number];
