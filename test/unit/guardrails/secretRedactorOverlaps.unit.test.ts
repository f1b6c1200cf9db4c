/**
 * The secret redactor where matches meet: adjacent and overlapping secrets (the specific
 * kind winning over generic ones), repeats, multi-megabyte lines and adversarial
 * near-misses in linear time.
 */
import assert from 'node:assert/strict';
import { secretSamples } from '../../fixtures/secretCorpus';
import { redactor } from '../../support/secretRedactionChecks';

describe('SecretRedactor', () => {
  describe('overlaps, neighbours, long lines', () => {
    const gh = () =>
      secretSamples()
        .filter((s) => s.kind === 'github-token')
        .map((s) => s.secret);

    it('redacts adjacent secrets separated by punctuation or whitespace', () => {
      const [a, b, c] = gh();
      for (const sep of [',', ' ', '\n', ';', '","', '|', '\t']) {
        const out = redactor.redactText(`${a}${sep}${b}${sep}${c}`);
        assert.equal(
          out.text,
          ['[REDACTED:github-token]', '[REDACTED:github-token]', '[REDACTED:github-token]'].join(sep),
          JSON.stringify(sep),
        );
        assert.deepEqual(out.findings, { 'github-token': 3 });
      }
      const id = 'AKIA' + 'Q3VZ7RSTUW2XYZ45';
      const aws = redactor.redactText(`${id}:${'a'.repeat(0)}aws_secret_access_key=Xb3kq9ZrT1mN8pW2vL6yC4hJ0sD7fG5aE3uR1oQ9`);
      assert.deepEqual(aws.findings, { 'aws-access-key': 1, 'aws-secret-key': 1 });
    });

    it('reports one finding when secrets overlap, the specific kind winning over generic ones', () => {
      const jwt = secretSamples().find((s) => s.kind === 'jwt')!.secret;
      const [token] = gh();
      // A JWT as the password of a URL: one credential, reported as the URL's.
      const url = redactor.redactText(`https://svc:${jwt}@api.example.com/v1`);
      assert.deepEqual(url.findings, { 'basic-auth-url': 1 });
      assert.ok(!url.text.includes(jwt));
      // A JWT in an Authorization header, a token under a "password" key: the specific kind.
      assert.deepEqual(redactor.redactText(`Authorization: Bearer ${jwt}`).findings, { jwt: 1 });
      assert.deepEqual(redactor.redactText(`{"password": "${token}"}`).findings, { 'github-token': 1 });
      assert.deepEqual(redactor.redactText(`GITHUB_TOKEN=${token}`).findings, { 'github-token': 1 });
      // Token-like text inside a private key body is part of the key.
      const key = secretSamples().find((s) => s.label.startsWith('RSA PKCS#1'))!.secret;
      const lines = key.split('\n');
      lines.splice(3, 0, `AKIA${'Q'.repeat(16)}eyJhbGciOiJIUzI1NiJ9`);
      assert.deepEqual(redactor.redactText(lines.join('\n')).findings, { 'private-key': 1 });
    });

    it('counts the same secret each time it appears', () => {
      const [token] = gh();
      assert.deepEqual(redactor.redactText(`${token} ${token}\n${token}`).findings, { 'github-token': 3 });
    });

    it('handles multi-megabyte single lines, with the secret at either end', () => {
      const [token] = gh();
      const filler = Buffer.alloc(3 * 1024 * 1024, 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=').toString();
      for (const text of [`${filler}${' '}${token}`, `${token} ${filler}`, `${filler} ${token} ${filler}`]) {
        const started = performance.now();
        const out = redactor.redactText(text);
        assert.deepEqual(out.findings, { 'github-token': 1 });
        assert.ok(performance.now() - started < 1_000);
      }
    });

    it('stays linear on adversarial near-misses', () => {
      const cases: Array<[string, string]> = [
        ['eyJ', 'eyJhbGciOi.'],
        ['BEGIN without END', `-----BEGIN PRIVATE KEY-----\n${'A'.repeat(60)}!`],
        ['userinfo', 'http://a:bbbb'],
        ['sk-', 'sk-proj-'],
        ['slack', 'xoxb-1-'],
        ['aws', 'AKIA'],
        ['generic', '"password": "'],
        ['header', 'Authorization: Bearer '],
        ['private key body', `-----BEGIN PRIVATE KEY-----\n${'MIIB'.repeat(20_000)}`],
        ['slack segments', `xoxb-${'a-'.repeat(100)}`],
        ['app token', `ghs_1_${'a'.repeat(500)}.`],
        ['jwt body', ` eyJ${'a'.repeat(5000)}.eyJ`],
        ['env', 'DB_PASSWORD='],
      ];
      for (const [label, unit] of cases) {
        const text = unit.repeat(Math.ceil((1024 * 1024) / unit.length));
        const started = performance.now();
        redactor.redactText(text);
        const ms = performance.now() - started;
        assert.ok(ms < 1_500, `${label}: ${ms.toFixed(0)} ms for 1 MB`);
      }
    });
  });
});
