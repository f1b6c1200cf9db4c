/**
 * Guardrails benchmark group (`npm run bench -- guardrails`): secret redaction speed and
 * recall (redactionBench.ts) and the durable audit spool (auditBench.ts). Prints a table
 * and one JSON line starting `{"bench":"guardrails"`.
 */
import { runAuditBench } from './auditBench';
import { markdownTable, round } from './benchStats';
import { runRedactionBench } from './redactionBench';

const TARGETS = { redact_clean_1kb_us: 50, redact_mb_s: 100, audit_events_s: 20_000 };

export async function runGuardrailsBench(): Promise<void> {
  const redaction = await runRedactionBench();
  const audit = await runAuditBench();
  const line = {
    bench: 'guardrails',
    redact_clean_1kb_us: redaction.redact_clean_1kb_us,
    redact_mb_s: redaction.redact_mb_s,
    redact_dirty_1kb_us: redaction.redact_dirty_1kb_us,
    recall: redaction.recall,
    false_positives: redaction.false_positives,
    corpus_kinds: redaction.corpus_kinds,
    corpus_secrets: redaction.corpus_secrets,
    secretlint_1kb_us: redaction.secretlint_1kb_us,
    audit_events_s: audit.audit_events_s,
    // What a call waits for its audit event to be durable (one appender, group commit).
    audit_added_p50_ms: audit.audit_append_p50_ms,
    audit_added_p99_ms: audit.audit_append_p99_ms,
    audit_append_p50_ms_c32: audit.audit_append_p50_ms_c32,
    fsync_ms_p50: audit.fsync_ms_p50,
    targets_met: {
      redact_clean_1kb_us: (redaction.redact_clean_1kb_us ?? Infinity) <= TARGETS.redact_clean_1kb_us,
      redact_mb_s: (redaction.redact_mb_s ?? 0) >= TARGETS.redact_mb_s,
      audit_events_s: (audit.audit_events_s ?? 0) >= TARGETS.audit_events_s,
    },
  };
  process.stdout.write(
    `\n${markdownTable(
      ['metric', 'value', 'target'],
      [
        ['redact_clean_1kb_us', round(line.redact_clean_1kb_us ?? NaN), `<= ${TARGETS.redact_clean_1kb_us}`],
        ['redact_mb_s', round(line.redact_mb_s ?? NaN), `>= ${TARGETS.redact_mb_s}`],
        ['recall (own corpus)', round(line.recall ?? NaN), '-'],
        ['audit_events_s', round(line.audit_events_s ?? NaN), `>= ${TARGETS.audit_events_s}`],
        ['audit_added_p50_ms', round(line.audit_added_p50_ms ?? NaN), 'report'],
      ],
    )}\n\n${JSON.stringify(line)}\n`,
  );
}
