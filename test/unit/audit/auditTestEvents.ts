/** Builders for audit tests: realistic events and a scratch spool folder per test. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEvent } from '../../../common/audit/auditEvent';
import { auditEventOf } from '../../support/auditEvents';

/** A realistic event, varied by `n` (confirmed deletes with a reviewer, redactions, rules), on the shared builder. */
export function sampleEvent(n: number, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return auditEventOf({
    user: 'alice@example.com',
    client: { name: 'Visual Studio Code', version: '1.117.0' },
    server: 'github',
    tool: n % 3 === 0 ? 'delete_repo' : 'list_issues',
    decision: n % 3 === 0 ? 'confirm-approved' : 'allow',
    rule: `rule-${n % 7}`,
    ...(n % 3 === 0 ? { reviewer: 'bob@example.com' } : {}),
    argsDigest: 'ab'.repeat(32),
    redactions: n % 5 === 0 ? { 'github-token': 1 } : {},
    latencyMs: 12.5,
    ...overrides,
  });
}

const scratch: string[] = [];

/** A not-yet-existing spool folder inside a fresh temporary folder (removed by `removeScratchDirs`). */
export function scratchDir(label = 'audit'): string {
  const parent = mkdtempSync(join(tmpdir(), `gatehouse-${label}-`));
  scratch.push(parent);
  return join(parent, 'spool');
}

export function removeScratchDirs(): void {
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
}
