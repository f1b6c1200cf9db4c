/**
 * Generates schemas/org-policy.schema.json, the JSON Schema editors use to complete and
 * check org policy YAML, from the zod schema the policy server validates with.
 *
 *   npm run schema            writes the file
 *   npm run schema -- --check exits 1 when the committed file is out of date
 *
 * The schema describes the input side (defaults are optional). What zod's refinements check
 * (cross references, duplicate ids, CEL conditions, URL details) cannot be expressed in JSON
 * Schema; it is listed in the descriptions so an editor shows it, and `gatehouse policy
 * validate` reports it. test/unit/policy/policySchema.unit.test.ts keeps the file in sync.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { PolicyDocumentSchema } from '../common/policy/policyDocument';

export const POLICY_SCHEMA_FILE = join(__dirname, '..', 'schemas', 'org-policy.schema.json');
export const POLICY_SCHEMA_ID = 'urn:gatehouse:schema:org-policy:v1';

const VALIDATE = 'Checked by `gatehouse policy validate`, not by this schema';

/** Checks made by refinements, keyed by the JSON pointer of the node they apply to. */
const REFINEMENTS: Record<string, string> = {
  '/properties/admins/items': `Id of a group defined under \`groups\`. ${VALIDATE}.`,
  '/properties/servers/items/properties/id': `Unique among servers. ${VALIDATE}.`,
  '/properties/servers/items/properties/transport/oneOf/1/properties/url': `An http or https URL without credentials (user:password@). ${VALIDATE}.`,
  '/properties/groups/items/properties/id': `Unique among groups. ${VALIDATE}.`,
  '/properties/rules/items/properties/id': `Unique among rules. ${VALIDATE}.`,
  '/properties/rules/items/properties/principals/items': `"*", "group:<id>" of a group defined under \`groups\`, or "user:<sub or email>". ${VALIDATE} that the group exists.`,
  '/properties/rules/items/properties/servers/items': `Id of a server in the \`servers\` catalog, or "*". ${VALIDATE} that the server exists.`,
  '/properties/rules/items/properties/tools/items': 'A tool name, "*", or a prefix ending in "*" such as "get_*".',
  '/properties/rules/items/properties/when': `CEL condition over \`args\`, \`user\` {sub, email, groups}, \`server\` and \`tool\`; must be boolean. ${VALIDATE} (syntax, variables and type).`,
  '/properties/guardrails/properties/reviewers': `Id of a group defined under \`groups\`. ${VALIDATE}.`,
  '/properties/rules/items/properties/reviewers': `Id of a group defined under \`groups\`; confirm rules only. ${VALIDATE}.`,
};

const DESCRIPTION = [
  'Gatehouse org policy: the approved server catalog, IdP-to-group mapping, allow / deny / confirm rules and guardrails.',
  "Generated from the policy server's zod schema (npm run schema); do not edit by hand.",
  'Not expressible here and checked only by `gatehouse policy validate`: unique server, group and rule ids;',
  'groups named in admins, guardrails.reviewers, rule reviewers and rule principals must exist; only confirm rules name reviewers; servers named in rules must be in the catalog;',
  'rule `when` conditions must be valid boolean CEL; transport URLs must be http(s) and carry no credentials.',
].join(' ');

/** The schema as an object: zod's input-side JSON Schema with an id, a title and the refinements described. */
export function buildPolicySchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(PolicyDocumentSchema, { io: 'input' }) as Record<string, unknown>;
  const { $schema, ...rest } = generated;
  const schema: Record<string, unknown> = {
    $schema,
    $id: POLICY_SCHEMA_ID,
    title: 'Gatehouse org policy',
    description: DESCRIPTION,
    ...rest,
  };
  for (const [pointer, description] of Object.entries(REFINEMENTS)) {
    const node = nodeAt(schema, pointer);
    node.description = typeof node.description === 'string' ? `${node.description} ${description}` : description;
  }
  return schema;
}

/** The file's exact text. */
export function renderPolicySchema(): string {
  return `${JSON.stringify(buildPolicySchema(), null, 2)}\n`;
}

/** The node at a JSON pointer; throws when the zod schema changed shape so the notes above need updating. */
function nodeAt(root: Record<string, unknown>, pointer: string): Record<string, unknown> {
  let node: unknown = root;
  for (const segment of pointer.split('/').slice(1)) {
    node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[segment] : undefined;
    if (node === undefined)
      throw new Error(`policy schema has no node at ${pointer} (the zod schema changed; update REFINEMENTS in scripts/policySchema.ts)`);
  }
  if (typeof node !== 'object' || node === null || Array.isArray(node))
    throw new Error(`policy schema node at ${pointer} is not a schema object`);
  return node as Record<string, unknown>;
}

function main(): number {
  const text = renderPolicySchema();
  if (process.argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(POLICY_SCHEMA_FILE, 'utf8');
    } catch {
      // Missing counts as out of date.
    }
    if (current === text) return 0;
    process.stderr.write(`${POLICY_SCHEMA_FILE} is out of date; run npm run schema\n`);
    return 1;
  }
  writeFileSync(POLICY_SCHEMA_FILE, text);
  process.stdout.write(`wrote ${POLICY_SCHEMA_FILE}\n`);
  return 0;
}

if (require.main === module) process.exitCode = main();
