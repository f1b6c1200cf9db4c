/**
 * The secret redactor on text: every corpus sample redacted in its context, the clean corpus
 * untouched, and the findings it reports. Results, overlaps, PII and the corpus itself have
 * their own secretRedactor*.unit.test.ts files.
 */
import assert from 'node:assert/strict';
import { redactionMarker } from '../../../gateway/guardrails/redaction/secretRedactor';
import { SECRET_KINDS, SECRET_RULES } from '../../../gateway/guardrails/redaction/secretRules';
import { cleanSamples } from '../../fixtures/cleanCorpus';
import { secretSamples } from '../../fixtures/secretCorpus';
import { assertRedacted, redactor } from '../../support/secretRedactionChecks';

describe('SecretRedactor', () => {
  describe('text', () => {
    it('the corpus covers at least 15 kinds with several samples each', () => {
      const counts = new Map<string, number>();
      for (const s of secretSamples()) counts.set(s.kind, (counts.get(s.kind) ?? 0) + 1);
      assert.ok(counts.size >= 15, `only ${counts.size} kinds`);
      const multi = [...counts.values()].filter((n) => n >= 3).length;
      assert.ok(multi >= 15, `only ${multi} kinds have 3+ samples`);
      for (const kind of counts.keys()) assert.ok(SECRET_KINDS.includes(kind), `corpus kind ${kind} is not a rule kind`);
    });

    for (const sample of secretSamples()) {
      it(`redacts ${sample.label}`, () => {
        const { text, findings } = redactor.redactText(sample.text);
        assertRedacted(text, sample, findings, 'text');
        assert.ok(text.includes(redactionMarker(sample.kind)));
      });
    }

    it('replaces only the secret, keeping the surrounding text', () => {
      const token = secretSamples().find((s) => s.kind === 'github-token')!.secret;
      assert.deepEqual(redactor.redactText(`before ${token} after`), {
        text: 'before [REDACTED:github-token] after',
        findings: { 'github-token': 1 },
      });
      const url = redactor.redactText('git clone https://deploy:Zx9vQ2mLp8sTq@git.example.net/api.git');
      assert.equal(url.text, 'git clone https://[REDACTED:basic-auth-url]@git.example.net/api.git');
      const aws = redactor.redactText('aws_secret_access_key = Xb3kq9ZrT1mN8pW2vL6yC4hJ0sD7fG5aE3uR1oQ9\nregion = eu-west-1');
      assert.equal(aws.text, 'aws_secret_access_key = [REDACTED:aws-secret-key]\nregion = eu-west-1');
    });

    it('redacts every kind inside JSON carried as text (escaped quotes and newlines)', () => {
      for (const sample of secretSamples()) {
        const json = JSON.stringify({ tool: 'read_file', output: sample.text, lines: sample.text.split('\n').length });
        const { text, findings } = redactor.redactText(json);
        const escaped = JSON.stringify(sample.secret).slice(1, -1);
        assert.ok(!text.includes(escaped), `${sample.label}: survived in JSON`);
        // Escaped twice, a service-account file is still caught, as a private key.
        const kinds = sample.kind === 'gcp-service-account' ? ['gcp-service-account', 'private-key'] : [sample.kind];
        assert.ok(
          kinds.some((k) => (findings[k] ?? 0) > 0),
          `${sample.label}: kind ${sample.kind} not reported in JSON: ${JSON.stringify(findings)}`,
        );
        assert.doesNotThrow(() => JSON.parse(text), `${sample.label}: redaction broke the JSON`);
      }
    });

    it('finds nothing in the clean corpus and returns the very same string', () => {
      for (const sample of cleanSamples()) {
        const out = redactor.redactText(sample.text);
        assert.deepEqual(out.findings, {}, `${sample.label}: false positive ${JSON.stringify(out.findings)}`);
        assert.equal(out.text, sample.text);
        assert.ok(Object.isFrozen(out.findings));
      }
    });

    it('is idempotent: redacted text has nothing left to find', () => {
      for (const sample of secretSamples()) {
        const once = redactor.redactText(sample.text).text;
        assert.deepEqual(redactor.redactText(once).findings, {}, sample.label);
      }
    });

    it('skips documented examples and placeholders', () => {
      for (const text of [
        'AKIAIOSFODNN7EXAMPLE',
        'aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
        'xoxb-your-bot-token-here',
        'https://user:password@example.com',
        'postgres://app:${DB_PASSWORD}@db:5432/app',
        'mongodb://admin:admin@localhost',
        '{"password": "<your password>"}',
        'Authorization: Bearer ${GITHUB_TOKEN}',
        'DB_PASSWORD=changeme',
        '"api_key": "YOUR_API_KEY_HERE"',
        '-----BEGIN RSA PRIVATE KEY-----\nMIIE...\n-----END RSA PRIVATE KEY-----',
        '//registry.npmjs.org/:_authToken=${NPM_TOKEN}',
      ]) {
        assert.deepEqual(redactor.redactText(text).findings, {}, text);
      }
    });
  });

  describe('findings', () => {
    it('report kinds and counts, never a value', () => {
      for (const sample of secretSamples()) {
        const { findings } = redactor.redactText(`${sample.text}\n${sample.text}`);
        const serialized = JSON.stringify(findings);
        assert.ok(!serialized.includes(sample.secret));
        for (const [kind, count] of Object.entries(findings)) {
          assert.ok(redactor.kinds.includes(kind), `unknown kind ${kind}`);
          assert.ok(Number.isInteger(count) && count > 0);
          assert.ok(kind.length < 32 && /^[a-z0-9-]+$/.test(kind), `kind ${kind} looks like a value`);
        }
        assert.ok((findings[sample.kind] ?? 0) >= 2, `${sample.label}: expected two findings`);
      }
    });

    it('add up across a whole result', () => {
      const [a, b] = secretSamples().filter((s) => s.kind === 'github-token');
      const { findings } = redactor.redactResult('tools/call', {
        content: [
          { type: 'text', text: a!.text },
          { type: 'text', text: b!.text },
        ],
        structuredContent: { token: a!.secret },
      });
      assert.deepEqual(findings, { 'github-token': 3 });
    });

    it('name every rule kind in kebab case, and every rule cites its basis', () => {
      for (const rule of SECRET_RULES) {
        assert.match(rule.kind, /^[a-z0-9]+(?:-[a-z0-9]+)*$/);
        assert.ok(rule.basis.length > 5, rule.kind);
        assert.ok(rule.triggers.length > 0, rule.kind);
      }
    });
  });
});
