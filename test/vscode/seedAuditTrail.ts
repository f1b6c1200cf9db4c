/**
 * Fills a gateway's audit spool with a long history before VS Code starts, so the suite can
 * show the Audit view holds 100,000 events: written through the real AuditSpool (hash
 * chain, checkpoints) exactly as a gateway writes them, and marked shipped so the gateway
 * does not send them all to the test's policy server.
 */
import { AuditSpool } from '../../gateway/audit/auditSpool';
import { createAuditEventId, type AuditEvent } from '../../common/audit/auditEvent';
import type { AuditDecision } from '../../common/audit/auditVocabulary';

const SERVERS = ['probe', 'github', 'jira', 'postgres'];
const TOOLS = ['echo', 'list_issues', 'create_ticket', 'query', 'delete_branch', 'env'];
const DECISIONS: AuditDecision[] = ['allow', 'allow', 'allow', 'allow', 'deny', 'confirm-approved', 'confirm-denied', 'confirm-timeout'];
const WEEK_MS = 7 * 24 * 3600_000;

export async function seedAuditTrail(spoolDir: string, count: number, user: string): Promise<void> {
  const spool = await AuditSpool.open({ dir: spoolDir, checkpointEverySeconds: 0 });
  try {
    const now = Date.now();
    const writes: Array<Promise<number>> = [];
    for (let n = 0; n < count; n++) {
      const at = now - WEEK_MS + Math.floor((n / count) * (WEEK_MS - 3600_000));
      const decision = DECISIONS[n % DECISIONS.length]!;
      const event: AuditEvent = {
        id: createAuditEventId(at),
        time: new Date(at).toISOString(),
        user,
        client: { name: 'Visual Studio Code', version: '1.117.0' },
        server: SERVERS[n % SERVERS.length]!,
        method: 'tools/call',
        tool: TOOLS[n % TOOLS.length]!,
        decision,
        rule: `seeded-rule-${n % 40}`,
        ...(decision.startsWith('confirm-') && decision !== 'confirm-timeout' ? { reviewer: user } : {}),
        status: decision === 'allow' || decision === 'confirm-approved' ? 'ok' : 'denied',
        redactions: n % 50 === 0 ? { 'aws-access-key': 1 } : {},
        flags: [],
        latencyMs: 1 + (n % 97) / 10,
      };
      writes.push(spool.append(event));
      if (writes.length === 4096) await Promise.all(writes.splice(0));
    }
    await Promise.all(writes);
    await spool.markShipped(spool.stats().lastSeq);
  } finally {
    await spool.close();
  }
}
