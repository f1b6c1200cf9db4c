/** The example policy (examples/org-policy.yaml) as the demo and the docs use it. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadPolicyDocument } from '../../../common/policy/policyDocument';

const EXAMPLE = join(__dirname, '../../../examples/org-policy.yaml');

describe('example policy', () => {
  it('parses the example policy and applies defaults', () => {
    const policy = loadPolicyDocument(EXAMPLE);
    assert.equal(policy.version, 1);
    assert.equal(policy.org, 'example');
    assert.deepEqual(policy.admins, ['policy-admins']);
    assert.deepEqual(
      policy.servers.map((s) => s.id),
      ['everything', 'memory', 'files'],
    );
    assert.deepEqual(
      policy.groups.map((g) => g.id),
      ['engineers', 'contractors', 'policy-admins'],
    );
    assert.equal(policy.rules.length, 5);
    const everything = policy.servers[0]!;
    assert.deepEqual(everything.credential, { mode: 'none' });
    assert.equal(everything.trusted, false);
    assert.deepEqual(everything.tools, {
      echo: { risk: 'read' },
      'get-annotated-message': { risk: 'read' },
      'get-env': { risk: 'read' },
      'get-resource-links': { risk: 'read' },
      'get-resource-reference': { risk: 'read' },
      'get-structured-content': { risk: 'read' },
      'get-sum': { risk: 'read' },
      'get-tiny-image': { risk: 'read' },
      'gzip-file-as-resource': { risk: 'write' },
      'simulate-research-query': { risk: 'write' },
      'toggle-simulated-logging': { risk: 'write' },
      'toggle-subscriber-updates': { risk: 'write' },
      'trigger-long-running-operation': { risk: 'write' },
    });
    const memory = policy.servers[1]!;
    assert.deepEqual(memory.tools, {
      read_graph: { risk: 'read' },
      search_nodes: { risk: 'read' },
      open_nodes: { risk: 'read' },
      create_entities: { risk: 'write' },
      create_relations: { risk: 'write' },
      add_observations: { risk: 'write' },
      delete_entities: { risk: 'destructive' },
      delete_observations: { risk: 'destructive' },
      delete_relations: { risk: 'destructive' },
    });
    // A rule without `tools` covers every tool.
    assert.deepEqual(policy.rules[0]!.tools, ['*']);
    assert.equal(policy.rules[3]!.when, 'size(args.message) <= 40');
    assert.equal(policy.guardrails.confirmationTimeoutSeconds, 120);
  });
});
