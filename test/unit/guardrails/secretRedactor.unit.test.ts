import assert from 'node:assert/strict';
import { luhnValid, ibanValid } from '../../../gateway/guardrails/redaction/piiRules';
import { SecretRedactor, redactionMarker, type RedactionFindings } from '../../../gateway/guardrails/redaction/secretRedactor';
import { SECRET_KINDS, SECRET_RULES } from '../../../gateway/guardrails/redaction/secretRules';
import { cleanSamples } from '../../fixtures/cleanCorpus';
import { tokenChecksumValid } from '../../fixtures/fakeCredentialFormats';
import { piiLookalikes, piiSamples } from '../../fixtures/piiCorpus';
import { secretSamples, type SecretSample } from '../../fixtures/secretCorpus';

const redactor = new SecretRedactor();

/** One sample per kind (the first), for the per-container tests. */
function onePerKind(): SecretSample[] {
  const seen = new Map<string, SecretSample>();
  for (const s of secretSamples()) if (!seen.has(s.kind)) seen.set(s.kind, s);
  return [...seen.values()];
}

function assertRedacted(output: string, sample: SecretSample, findings: RedactionFindings, where: string): void {
  assert.ok(!output.includes(sample.secret), `${sample.label} (${where}): the secret survived:\n${output.slice(0, 400)}`);
  assert.ok((findings[sample.kind] ?? 0) >= 1, `${sample.label} (${where}): expected kind ${sample.kind}, got ${JSON.stringify(findings)}`);
}

function decode(blob: string): string {
  return Buffer.from(blob, 'base64').toString('utf8');
}

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

  describe('results', () => {
    it('redacts structuredContent at any depth, keys included, and shares clean branches', () => {
      for (const sample of onePerKind()) {
        const clean = { summary: 'ok', rows: [{ id: 1, name: 'alpha' }] };
        const result = {
          content: [{ type: 'text', text: 'see structured content' }],
          structuredContent: { clean, deep: { level1: [{ level2: { level3: [null, 7, { note: sample.text }] } }] } },
        };
        const out = redactor.redactResult('tools/call', result);
        const json = JSON.stringify(out.result);
        assert.ok(!json.includes(JSON.stringify(sample.secret).slice(1, -1)), sample.label);
        assert.ok((out.findings[sample.kind] ?? 0) >= 1, `${sample.label}: ${JSON.stringify(out.findings)}`);
        const redacted = out.result as typeof result;
        assert.notEqual(redacted, result);
        assert.equal(redacted.content, result.content, 'clean content array is shared');
        assert.equal(redacted.structuredContent.clean, clean, 'clean branch is shared');
        assert.equal(
          (result.structuredContent.deep.level1[0]!.level2.level3[2] as { note: string }).note,
          sample.text,
          'the input is not modified',
        );
      }
      const keyed = redactor.redactResult('tools/call', {
        structuredContent: { byToken: { [secretSamples()[0]!.secret]: { scopes: ['repo'] } } },
      });
      assert.ok(!JSON.stringify(keyed.result).includes(secretSamples()[0]!.secret), 'a secret used as a key is redacted');
    });

    it('redacts the values of credential-named keys in structured content', () => {
      const result = {
        structuredContent: {
          db: {
            user: 'svc-report',
            password: 'o1Xu$NjQSKGNw',
            passwordPolicy: 'min 12 chars',
            passwordHash: '$2b$12$abcdefghijklmnopqrstuv',
          },
          apiKey: 'k-12345678abcd',
          'x-api-key': 'Zq81_LmN04xx7',
          client_secret: 'GOCSPX-4rT1aQ9zLm2pW8vX',
          nextPageToken: 'CiAKGjBpNDd2Nmp2Zml2cXRwYjBp',
          secretName: 'prod/db/password',
          token: 'Hello',
          placeholder: { password: '********', api_key: '${API_KEY}' },
          auth: { accessToken: secretSamples().find((s) => s.kind === 'jwt')!.secret },
        },
      };
      const out = redactor.redactResult('tools/call', result);
      const sc = (out.result as typeof result).structuredContent;
      assert.equal(sc.db.password, '[REDACTED:credential-assignment]');
      assert.equal(sc.apiKey, '[REDACTED:credential-assignment]');
      assert.equal(sc['x-api-key'], '[REDACTED:credential-assignment]');
      assert.equal(sc.client_secret, '[REDACTED:credential-assignment]');
      assert.equal(sc.auth.accessToken, '[REDACTED:jwt]');
      assert.deepEqual(out.findings, { 'credential-assignment': 4, jwt: 1 });
      for (const key of ['passwordPolicy', 'passwordHash'] as const) assert.equal(sc.db[key], result.structuredContent.db[key]);
      assert.equal(sc.nextPageToken, result.structuredContent.nextPageToken);
      assert.equal(sc.placeholder, result.structuredContent.placeholder);
    });

    it('redacts tool content[] text and embedded resources (text and text blobs)', () => {
      for (const sample of onePerKind()) {
        const result = {
          content: [
            { type: 'text', text: sample.text },
            { type: 'resource', resource: { uri: 'file:///srv/app/.env', mimeType: 'text/plain', text: sample.text } },
            {
              type: 'resource',
              resource: {
                uri: 'file:///srv/app/config.json',
                mimeType: 'application/json',
                blob: Buffer.from(sample.text).toString('base64'),
              },
            },
            { type: 'resource', resource: { uri: 'file:///srv/app/notes', blob: Buffer.from(sample.text).toString('base64') } },
          ],
          isError: false,
        };
        const out = redactor.redactResult('tools/call', result);
        const content = (out.result as typeof result).content as Array<{ text?: string; resource?: { text?: string; blob?: string } }>;
        assertRedacted(content[0]!.text!, sample, out.findings, 'content text');
        assert.ok(!content[1]!.resource!.text!.includes(sample.secret), `${sample.label}: embedded resource text`);
        assert.ok(!decode(content[2]!.resource!.blob!).includes(sample.secret), `${sample.label}: json blob`);
        assert.ok(!decode(content[3]!.resource!.blob!).includes(sample.secret), `${sample.label}: untyped utf-8 blob`);
        assert.equal(out.findings[sample.kind], 4, `${sample.label}: ${JSON.stringify(out.findings)}`);
      }
    });

    it('leaves binary payloads alone: image/audio data, binary blobs, oversized blobs', () => {
      const token = secretSamples().find((s) => s.kind === 'github-token')!.secret;
      const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0xff, 0xfe]), Buffer.from(token)]).toString(
        'base64',
      );
      const result = {
        content: [
          { type: 'image', mimeType: 'image/png', data: Buffer.from(token).toString('base64') },
          { type: 'audio', mimeType: 'audio/wav', data: Buffer.from(token).toString('base64') },
          { type: 'resource', resource: { uri: 'file:///x.png', mimeType: 'image/png', blob: Buffer.from(token).toString('base64') } },
          { type: 'resource', resource: { uri: 'file:///x.bin', blob: png } },
        ],
      };
      assert.equal(redactor.redactResult('tools/call', result).result, result);
      // ...but a `blob` or media `data` that is not base64 is text, and scanned as such.
      const notBase64 = {
        structuredContent: { blob: `token=${token}` },
        content: [{ type: 'image', mimeType: 'image/png', data: `oops ${token}` }],
      };
      assert.deepEqual(redactor.redactResult('tools/call', notBase64).findings, { 'github-token': 2 });
      // Line-wrapped base64 (MIME style) is still base64.
      const wrapped = Buffer.from(`config\napi: ${token}\n`.repeat(4)).toString('base64').replace(/.{76}/g, '$&\r\n');
      const w = redactor.redactResult('resources/read', { contents: [{ uri: 'file:///c.txt', mimeType: 'text/plain', blob: wrapped }] });
      assert.deepEqual(w.findings, { 'github-token': 4 });
      const small = new SecretRedactor({ maxBlobBytes: 16 });
      const big = {
        contents: [{ uri: 'file:///big.txt', mimeType: 'text/plain', blob: Buffer.from(`token ${token}`).toString('base64') }],
      };
      assert.equal(small.redactResult('resources/read', big).result, big);
      assert.notEqual(redactor.redactResult('resources/read', big).result, big);
    });

    it('redacts resources/read contents, prompts/get messages and completion values', () => {
      for (const sample of onePerKind()) {
        const read = {
          contents: [
            { uri: 'file:///etc/app.conf', mimeType: 'text/plain', text: sample.text },
            { uri: 'file:///etc/app.b64', mimeType: 'text/plain', blob: Buffer.from(sample.text).toString('base64') },
          ],
        };
        const r = redactor.redactResult('resources/read', read);
        const contents = (r.result as typeof read).contents as Array<{ text?: string; blob?: string }>;
        assertRedacted(contents[0]!.text!, sample, r.findings, 'resources/read');
        assert.ok(!decode(contents[1]!.blob!).includes(sample.secret));

        const prompt = {
          description: 'Review the deployment log',
          messages: [
            { role: 'user', content: { type: 'text', text: `Review this:\n${sample.text}` } },
            {
              role: 'assistant',
              content: { type: 'resource', resource: { uri: 'log://deploy/1', mimeType: 'text/plain', text: sample.text } },
            },
          ],
        };
        const p = redactor.redactResult('prompts/get', prompt);
        const messages = (p.result as typeof prompt).messages;
        assert.ok(!(messages[0]!.content as { text: string }).text.includes(sample.secret), `${sample.label}: prompt message`);
        assert.ok(!JSON.stringify(messages[1]).includes(JSON.stringify(sample.secret).slice(1, -1)), `${sample.label}: prompt resource`);
        assert.equal(p.findings[sample.kind], 2);

        const completion = { completion: { values: ['main', sample.text], total: 2, hasMore: false } };
        const c = redactor.redactResult('completion/complete', completion);
        assert.ok(!JSON.stringify(c.result).includes(JSON.stringify(sample.secret).slice(1, -1)));
        assert.equal((c.result as typeof completion).completion.values[0], 'main');
      }
    });

    it('redacts list results and initialize instructions too', () => {
      const token = secretSamples().find((s) => s.kind === 'slack-token')!.secret;
      const list = { tools: [{ name: 'post', description: `Posts as the bot (token ${token}).`, inputSchema: { type: 'object' } }] };
      const out = redactor.redactResult('tools/list', list);
      assert.deepEqual(out.findings, { 'slack-token': 1 });
      assert.equal((out.result as typeof list).tools[0]!.inputSchema, list.tools[0]!.inputSchema);
      const init = {
        protocolVersion: '2025-11-25',
        capabilities: {},
        serverInfo: { name: 'x', version: '1' },
        instructions: `Use ${token}`,
      };
      assert.deepEqual(redactor.redactResult('initialize', init).findings, { 'slack-token': 1 });
    });

    it('returns a clean result as the very same object (fast path)', () => {
      const clean = cleanSamples();
      const result = {
        content: clean
          .map((s) => ({ type: 'text', text: s.text }))
          .concat([{ type: 'resource', resource: { uri: 'file:///a.txt', mimeType: 'text/plain', text: clean[0]!.text } }] as never[]),
        structuredContent: { samples: clean.map((s) => ({ label: s.label, text: s.text, size: s.text.length, tags: ['a', 'b'] })) },
        _meta: { 'io.example/trace': 'abc' },
      };
      const before = JSON.stringify(result);
      const out = redactor.redactResult('tools/call', result);
      assert.equal(out.result, result);
      assert.deepEqual(out.findings, {});
      assert.equal(JSON.stringify(result), before);
      for (const [method, value] of [
        ['resources/read', { contents: [{ uri: 'file:///a', text: clean[1]!.text }] }],
        ['prompts/get', { messages: [{ role: 'user', content: { type: 'text', text: clean[2]!.text } }] }],
        ['completion/complete', { completion: { values: ['main', 'develop'] } }],
        ['tools/list', { tools: [] }],
      ] as const) {
        assert.equal(redactor.redactResult(method, value).result, value, method);
      }
      const ping = {};
      assert.equal(redactor.redactResult('ping', ping).result, ping);
      assert.equal(redactor.redactResult('tools/call', null).result, null);
    });

    it('keeps a `__proto__` key as data when it copies an object', () => {
      const token = secretSamples().find((s) => s.kind === 'npm-token')!.secret;
      const result = JSON.parse(`{"structuredContent":{"__proto__":{"polluted":true},"token":"${token}"}}`) as Record<string, unknown>;
      const out = redactor.redactResult('tools/call', result).result as { structuredContent: Record<string, unknown> };
      assert.ok(Object.hasOwn(out.structuredContent, '__proto__'));
      assert.equal(Object.getPrototypeOf(out.structuredContent), Object.prototype);
      assert.equal(out.structuredContent['token'], '[REDACTED:npm-token]');
      assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    });

    it('refuses a result nested too deep to scan, instead of relaying it unscanned', () => {
      let deep: unknown = 'leaf';
      for (let i = 0; i < 1000; i++) deep = [deep];
      assert.throws(() => redactor.redactResult('tools/call', { structuredContent: { deep } }), /nested deeper/);
    });
  });

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
