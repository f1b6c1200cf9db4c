/**
 * What the secret redactor's unit tests share (test/unit/guardrails/secretRedactor*.unit.test.ts):
 * the default redactor, one corpus sample per kind, and the check that a secret is gone and
 * reported under its kind.
 */
import assert from 'node:assert/strict';
import { SecretRedactor, type RedactionFindings } from '../../gateway/guardrails/redaction/secretRedactor';
import { secretSamples, type SecretSample } from '../fixtures/secretCorpus';

export const redactor = new SecretRedactor();

/** One sample per kind (the first), for the per-container tests. */
export function onePerKind(): SecretSample[] {
  const seen = new Map<string, SecretSample>();
  for (const s of secretSamples()) if (!seen.has(s.kind)) seen.set(s.kind, s);
  return [...seen.values()];
}

export function assertRedacted(output: string, sample: SecretSample, findings: RedactionFindings, where: string): void {
  assert.ok(!output.includes(sample.secret), `${sample.label} (${where}): the secret survived:\n${output.slice(0, 400)}`);
  assert.ok((findings[sample.kind] ?? 0) >= 1, `${sample.label} (${where}): expected kind ${sample.kind}, got ${JSON.stringify(findings)}`);
}

export function decode(blob: string): string {
  return Buffer.from(blob, 'base64').toString('utf8');
}
