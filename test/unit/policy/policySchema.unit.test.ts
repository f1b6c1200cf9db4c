import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
// ajv comes with @modelcontextprotocol/sdk; it stands in for the editor's validator here.
import Ajv2020 from 'ajv/dist/2020';
import { parse } from 'yaml';
import { parsePolicyDocument } from '../../../common/policy/policyDocument';
import { buildPolicySchema, POLICY_SCHEMA_FILE, POLICY_SCHEMA_ID, renderPolicySchema } from '../../../scripts/policySchema';

const EXAMPLE = join(__dirname, '../../../examples/org-policy.yaml');

describe('org policy JSON Schema', () => {
  it('is committed exactly as `npm run schema` generates it', () => {
    const committed = readFileSync(POLICY_SCHEMA_FILE, 'utf8');
    assert.ok(
      committed === renderPolicySchema(),
      'schemas/org-policy.schema.json is out of date: run `npm run schema` and commit the result',
    );
  });

  it('has an id, a title, and says what only `gatehouse policy validate` checks', () => {
    const schema = buildPolicySchema();
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
    assert.equal(schema.$id, POLICY_SCHEMA_ID);
    assert.equal(schema.title, 'Gatehouse org policy');
    assert.match(String(schema.description), /CEL/);
    assert.deepEqual(schema.required, ['version', 'org', 'admins']);
  });

  describe('agrees with the policy parser', () => {
    const validate = new Ajv2020({ strict: false, allErrors: true, validateFormats: false }).compile(buildPolicySchema());
    const valid = (doc: unknown) => {
      const ok = validate(doc);
      return { ok, errors: JSON.stringify(validate.errors) };
    };

    it('accepts the example policy', () => {
      const { ok, errors } = valid(parse(readFileSync(EXAMPLE, 'utf8')));
      assert.ok(ok, errors);
    });

    it('leaves defaults optional and accepts what the parser accepts', () => {
      const text = [
        'version: 1',
        'org: acme',
        'admins: [admins]',
        'servers: [{ id: jira, title: Jira, transport: { type: streamable-http, url: "https://jira.example.com/mcp" }, credential: { mode: shared-key, secretRef: jira.key } }]',
        'groups: [{ id: admins, match: [{ githubTeam: acme/ops }, { emailDomain: example.com }] }]',
        'rules: [{ id: r, effect: confirm, principals: ["*"], servers: ["*"], tools: [get_*], when: "true" }]',
        'guardrails: { reviewers: admins }',
      ].join('\n');
      parsePolicyDocument(text, '/org/policy.yaml');
      const { ok, errors } = valid(parse(text));
      assert.ok(ok, errors);
    });

    it('rejects unknown keys, bad principals, bad tool patterns, bad effects and missing fields', () => {
      const base = { version: 1, org: 'acme', admins: ['admins'], groups: [{ id: 'admins', match: [{ user: 'a' }] }] };
      const rule = { id: 'r', effect: 'allow', principals: ['*'], servers: ['*'] };
      for (const [name, doc] of Object.entries({
        'unknown top-level key': { ...base, extra: 1 },
        'unknown rule key': { ...base, rules: [{ ...rule, tool: ['x'] }] },
        'bad principal': { ...base, rules: [{ ...rule, principals: ['bob'] }] },
        'bad tool pattern': { ...base, rules: [{ ...rule, tools: ['get_*_all'] }] },
        'bad effect': { ...base, rules: [{ ...rule, effect: 'permit' }] },
        'missing servers': { ...base, rules: [{ id: 'r', effect: 'allow', principals: ['*'] }] },
        'empty principals': { ...base, rules: [{ ...rule, principals: [] }] },
        'wrong version': { ...base, version: 2 },
        'bad group match': { ...base, groups: [{ id: 'admins', match: [{ claims: 'groups', equals: 'x' }] }] },
        'bad timeout': { ...base, guardrails: { confirmationTimeoutSeconds: 1 } },
        'missing admins': { version: 1, org: 'acme' },
      })) {
        assert.equal(validate(doc), false, name);
      }
    });
  });
});
