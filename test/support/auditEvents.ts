/** An allowed, answered `tools/call` as the audit records it, with a fresh id; tests change what they need. */
import { createAuditEventId, type AuditEvent } from '../../common/audit/auditEvent';

export function auditEventOf(overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    id: createAuditEventId(),
    time: new Date().toISOString(),
    user: 'alice',
    client: { name: 'test', version: '1' },
    server: 'probe',
    method: 'tools/call',
    tool: 'echo',
    decision: 'allow',
    status: 'ok',
    redactions: {},
    flags: [],
    latencyMs: 1,
    ...overrides,
  };
}
