/**
 * The secret redactor on MCP results: structured content (credential-named keys too),
 * content[] text and embedded resources, resources/prompts/completions and lists; binary
 * payloads left alone, clean results returned as the same object, too-deep results refused.
 */
import assert from 'node:assert/strict';
import { SecretRedactor } from '../../../gateway/guardrails/redaction/secretRedactor';
import { cleanSamples } from '../../fixtures/cleanCorpus';
import { secretSamples } from '../../fixtures/secretCorpus';
import { assertRedacted, decode, onePerKind, redactor } from '../../support/secretRedactionChecks';

describe('SecretRedactor', () => {
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
});
