/**
 * The redaction corpus is realistic: checksummed tokens carry valid checksums, and
 * secretlint's own preset flags every sample it covers.
 */
import assert from 'node:assert/strict';
import { tokenChecksumValid } from '../../fixtures/fakeCredentialFormats';
import { secretSamples } from '../../fixtures/secretCorpus';

describe('SecretRedactor', () => {
  describe('corpus realism', () => {
    it('GitHub and npm tokens carry a valid CRC32 checksum', () => {
      const checksummed = secretSamples().filter((s) => /^(?:gh[pousr]|npm)_[A-Za-z0-9]{36}$/.test(s.secret));
      assert.ok(checksummed.length >= 8);
      for (const s of checksummed) assert.ok(tokenChecksumValid(s.secret), s.label);
    });

    it("secretlint's recommended preset flags every sample it covers (the formats are real)", async function () {
      this.timeout(60_000);
      const { lintSource } = await import('@secretlint/core');
      const { creator } = await import('@secretlint/secretlint-rule-preset-recommend');
      const config = {
        rules: [
          { id: creator.meta.id, rule: creator, rules: [{ id: '@secretlint/secretlint-rule-aws', options: { enableIDScanRule: true } }] },
        ],
      };
      const covered = secretSamples().filter((s) => s.secretlint);
      assert.ok(covered.length >= 80, `only ${covered.length} samples are covered by secretlint`);
      for (const sample of covered) {
        const json = sample.kind === 'gcp-service-account';
        const result = await lintSource({
          source: {
            content: sample.text,
            filePath: json ? '/virtual/key.json' : '/virtual/result.txt',
            ext: json ? '.json' : '.txt',
            contentType: 'text',
          },
          options: { config, maskSecrets: true },
        });
        const start = sample.text.indexOf(sample.secret);
        const end = start + sample.secret.length;
        assert.ok(
          result.messages.some((m) => m.range[0] < end && start < m.range[1]),
          `secretlint does not flag ${sample.label}`,
        );
      }
    });
  });
});
