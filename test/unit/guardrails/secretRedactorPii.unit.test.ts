/**
 * The secret redactor's PII mode: emails, phone numbers, card numbers and IBANs redacted
 * only when asked, their checksums, and look-alikes left alone.
 */
import assert from 'node:assert/strict';
import { luhnValid, ibanValid } from '../../../gateway/guardrails/redaction/piiRules';
import { SecretRedactor, redactionMarker } from '../../../gateway/guardrails/redaction/secretRedactor';
import { cleanSamples } from '../../fixtures/cleanCorpus';
import { piiLookalikes, piiSamples } from '../../fixtures/piiCorpus';
import { assertRedacted, onePerKind, redactor } from '../../support/secretRedactionChecks';

describe('SecretRedactor', () => {
  describe('PII', () => {
    const pii = new SecretRedactor({ pii: true });

    it('is off by default', () => {
      for (const sample of piiSamples())
        assert.deepEqual(redactor.redactText(sample.text), { text: sample.text, findings: {} }, sample.text);
    });

    it('redacts emails, phone numbers, Luhn-valid cards and valid IBANs when on', () => {
      for (const sample of piiSamples()) {
        const { text, findings } = pii.redactText(sample.text);
        assert.ok(!text.includes(sample.value), `${sample.kind}: ${text}`);
        assert.equal(findings[sample.kind], 1, `${sample.text}: ${JSON.stringify(findings)}`);
        assert.ok(text.includes(redactionMarker(sample.kind)));
      }
      const r = pii.redactResult('tools/call', {
        structuredContent: { customer: { email: 'ops@acme-corp.io', iban: 'GB82WEST12345698765432' } },
      });
      assert.deepEqual(r.findings, { email: 1, iban: 1 });
    });

    it('leaves look-alikes alone: bad check digits, ids, timestamps, versions', () => {
      for (const text of piiLookalikes()) assert.deepEqual(pii.redactText(text).findings, {}, text);
    });

    it('still redacts secrets, and finds no secrets in the clean corpus', () => {
      for (const sample of onePerKind())
        assertRedacted(pii.redactText(sample.text).text, sample, pii.redactText(sample.text).findings, 'pii on');
      for (const sample of cleanSamples()) {
        const kinds = Object.keys(pii.redactText(sample.text).findings);
        assert.deepEqual(
          kinds.filter((k) => k !== 'email'),
          [],
          `${sample.label}: ${kinds.join(', ')}`,
        );
      }
    });

    it('checks Luhn and IBAN mod-97 correctly', () => {
      assert.ok(luhnValid('4111111111111111'));
      assert.ok(luhnValid('378282246310005'));
      assert.ok(!luhnValid('4111111111111112'));
      assert.ok(ibanValid('DE89370400440532013000'));
      assert.ok(ibanValid('GB82WEST12345698765432'));
      assert.ok(ibanValid('FR1420041010050500013M02606'));
      assert.ok(!ibanValid('DE89370400440532013001'));
      assert.ok(!ibanValid('DE8937040044053201300')); // wrong length
      assert.ok(!ibanValid('XX89370400440532013000')); // unknown country
    });
  });
});
