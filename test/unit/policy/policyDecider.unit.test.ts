import assert from 'node:assert/strict';
import { compileEffectivePolicy, type EffectivePolicy } from '../../../common/policy/effectivePolicy';
import type { CallerIdentity } from '../../../common/policy/identity';
import { PolicyDecider } from '../../../common/policy/policyDecider';
import { parsePolicyDocument } from '../../../common/policy/policyDocument';

/** Tests for reported bugs fail until fixed; they are skipped unless this is set. */

const CATALOG = `
version: 1
org: acme
admins: [admins]
servers:
  - { id: files, title: Files, transport: { type: stdio, command: /bin/files } }
  - { id: memory, title: Memory, transport: { type: stdio, command: /bin/memory } }
  - { id: jira, title: Jira, transport: { type: stdio, command: /bin/jira } }
  - { id: github, title: GitHub, transport: { type: stdio, command: /bin/github } }
groups:
  - { id: engineers, match: [{ claim: groups, equals: engineers }] }
  - { id: oncall, match: [{ claim: groups, equals: oncall }] }
  - { id: admins, match: [{ user: alice@example.com }] }
`;

const ENGINEER: CallerIdentity = {
  sub: 'u-1',
  issuer: 'https://login.example.com',
  email: 'eve@example.com',
  claims: { groups: ['engineers', 'oncall'], email_verified: true },
};

/** The decider for ENGINEER (or `who`) under the catalog above plus these rules. */
function deciderFor(rules: string, who: CallerIdentity = ENGINEER): PolicyDecider {
  const policy = parsePolicyDocument(`${CATALOG}rules:\n${rules}`, '/org/policy.yaml');
  return new PolicyDecider(compileEffectivePolicy(policy, 1, who));
}

describe('policy decider', () => {
  it("denies by default, naming the user's groups", () => {
    const decider = deciderFor('  - { id: r, effect: allow, principals: [group:engineers], servers: [files], tools: [read_file] }');
    const decision = decider.decide('files', 'write_file', {});
    assert.equal(decision.effect, 'deny');
    assert.equal(decision.ruleId, undefined);
    assert.equal(
      decision.message,
      'No policy rule allows "write_file" on "files" for you (groups: engineers, oncall). Ask your policy admin to allow it.',
    );
    const stranger = deciderFor('  - { id: r, effect: allow, principals: [group:engineers], servers: [files] }', {
      sub: 'x',
      issuer: 'i',
      claims: {},
    });
    assert.match(stranger.decide('files', 'read_file').message, /\(groups: none\)/);
    assert.equal(stranger.decide('files', 'read_file').effect, 'deny');
  });

  it('allows by an exact tool name and names the rule', () => {
    const decider = deciderFor(
      '  - { id: read-only, effect: allow, principals: [group:engineers], servers: [files], tools: [read_file, list_directory] }',
    );
    assert.deepEqual(decider.decide('files', 'read_file', { path: 'a' }), {
      effect: 'allow',
      ruleId: 'read-only',
      message: 'Allowed by policy rule read-only.',
    });
    assert.equal(decider.decide('files', 'list_directory').effect, 'allow');
    assert.equal(decider.decide('files', 'read_file_2').effect, 'deny');
    assert.equal(decider.decide('memory', 'read_file').effect, 'deny');
  });

  it('lets deny win over allow, whatever their order', () => {
    const decider = deciderFor(
      [
        '  - { id: all-files, effect: allow, principals: ["*"], servers: [files] }',
        '  - { id: no-writes, effect: deny, principals: [group:engineers], servers: [files], tools: [write_file], reason: read-only week }',
        '  - { id: all-files-again, effect: allow, principals: [group:oncall], servers: [files], tools: [write_file] }',
      ].join('\n'),
    );
    const decision = decider.decide('files', 'write_file', { path: 'x' });
    assert.equal(decision.effect, 'deny');
    assert.equal(decision.ruleId, 'no-writes');
    assert.equal(
      decision.message,
      'Policy denies "write_file" on "files" (rule no-writes): read-only week. Ask your policy admin if you need it.',
    );
    assert.equal(decider.decide('files', 'read_file').ruleId, 'all-files');
  });

  it('asks for confirmation over allow, and deny still wins over confirm', () => {
    const decider = deciderFor(
      [
        '  - { id: memory, effect: allow, principals: [group:engineers], servers: [memory] }',
        '  - { id: confirm-deletes, effect: confirm, principals: [group:engineers], servers: [memory], tools: [delete_*], reason: deleting is permanent }',
        '  - { id: never-delete-all, effect: deny, principals: ["*"], servers: [memory], tools: [delete_all] }',
      ].join('\n'),
    );
    assert.deepEqual(decider.decide('memory', 'delete_entities'), {
      effect: 'confirm',
      ruleId: 'confirm-deletes',
      message: 'Policy rule confirm-deletes asks for confirmation of "delete_entities" on "memory": deleting is permanent.',
    });
    assert.equal(decider.decide('memory', 'delete_all').effect, 'deny');
    assert.equal(decider.decide('memory', 'read_graph').effect, 'allow');
    // A confirm rule on its own is enough to reach the tool (after confirmation).
    const confirmOnly = deciderFor('  - { id: c, effect: confirm, principals: ["*"], servers: [github], tools: [merge_pull_request] }');
    assert.equal(confirmOnly.decide('github', 'merge_pull_request').effect, 'confirm');
    assert.equal(
      confirmOnly.decide('github', 'merge_pull_request').message,
      'Policy rule c asks for confirmation of "merge_pull_request" on "github".',
    );
  });

  it('matches prefix patterns', () => {
    const decider = deciderFor('  - { id: reads, effect: allow, principals: ["*"], servers: [jira], tools: [get_*, "search*"] }');
    for (const tool of ['get_issue', 'get_', 'get_a_b_c', 'search', 'search_issues'])
      assert.equal(decider.decide('jira', tool).effect, 'allow', tool);
    for (const tool of ['get', 'getissue', 'Get_issue', 'create_issue', 'xget_issue'])
      assert.equal(decider.decide('jira', tool).effect, 'deny', tool);
  });

  it('matches server `*` on every server, and combines it with per-server rules', () => {
    const decider = deciderFor(
      [
        '  - { id: everyone-reads, effect: allow, principals: ["*"], servers: ["*"], tools: [get_*, list_*] }',
        '  - { id: no-github-secrets, effect: deny, principals: ["*"], servers: [github], tools: [get_secret] }',
        '  - { id: nowhere-drop, effect: deny, principals: ["*"], servers: ["*"], tools: [drop_*] }',
        '  - { id: files-all, effect: allow, principals: ["*"], servers: [files] }',
      ].join('\n'),
    );
    assert.equal(decider.decide('jira', 'get_issue').ruleId, 'everyone-reads');
    assert.equal(decider.decide('github', 'list_repos').ruleId, 'everyone-reads');
    assert.equal(decider.decide('github', 'get_secret').ruleId, 'no-github-secrets');
    assert.equal(decider.decide('files', 'get_secret').effect, 'allow');
    assert.equal(decider.decide('files', 'drop_table').ruleId, 'nowhere-drop');
    assert.equal(decider.decide('files', 'write_file').ruleId, 'files-all');
    assert.equal(decider.decide('jira', 'create_issue').effect, 'deny');
  });

  describe('conditions on arguments', () => {
    const allowSmall = deciderFor(
      '  - { id: small-echo, effect: allow, principals: ["*"], servers: [files], tools: [echo], when: "size(args.message) <= 5" }',
    );
    const denyOutside = deciderFor(
      [
        '  - { id: files, effect: allow, principals: ["*"], servers: [files] }',
        '  - { id: only-tmp, effect: deny, principals: ["*"], servers: [files], tools: [write_file], when: \'!args.path.startsWith("/tmp/")\', reason: writes only under /tmp }',
      ].join('\n'),
    );

    it("allows when an allow rule's condition holds", () => {
      assert.deepEqual(allowSmall.decide('files', 'echo', { message: 'hi' }), {
        effect: 'allow',
        ruleId: 'small-echo',
        message: 'Allowed by policy rule small-echo.',
      });
    });

    it('does not allow when it does not hold, or cannot be evaluated (missing key, wrong type)', () => {
      for (const args of [{ message: 'far too long' }, {}, { message: 12 }, { msg: 'hi' }]) {
        const decision = allowSmall.decide('files', 'echo', args);
        assert.equal(decision.effect, 'deny', JSON.stringify(args));
        assert.equal(decision.ruleId, undefined);
        assert.equal(
          decision.message,
          'Policy denies "echo" on "files" with these arguments: no rule\'s condition holds for them. Ask your policy admin if you need this call.',
        );
      }
      assert.equal(allowSmall.decide('files', 'echo').effect, 'deny');
    });

    it("denies when a deny rule's condition holds, or cannot be evaluated (fail closed)", () => {
      assert.equal(denyOutside.decide('files', 'write_file', { path: '/etc/passwd' }).ruleId, 'only-tmp');
      assert.match(denyOutside.decide('files', 'write_file', { path: '/etc/passwd' }).message, /: writes only under \/tmp\./);
      for (const args of [{}, { path: 42 }, { path: null }, { file: '/tmp/x' }]) {
        const decision = denyOutside.decide('files', 'write_file', args);
        assert.equal(decision.effect, 'deny', JSON.stringify(args));
        assert.equal(decision.ruleId, 'only-tmp', JSON.stringify(args));
      }
    });

    it("does not deny when a deny rule's condition is false", () => {
      assert.equal(denyOutside.decide('files', 'write_file', { path: '/tmp/notes' }).ruleId, 'files');
      assert.equal(denyOutside.decide('files', 'read_file', {}).ruleId, 'files');
    });

    it("evaluates each call's own arguments (the memo holds candidates, not decisions)", () => {
      const sequence = ['hi', 'far too long', 'ok', undefined, 'yes'].map(
        (message) => allowSmall.decide('files', 'echo', message === undefined ? {} : { message }).effect,
      );
      assert.deepEqual(sequence, ['allow', 'deny', 'allow', 'deny', 'allow']);
    });

    it('applies a confirm rule only when its condition holds', () => {
      const decider = deciderFor(
        [
          '  - { id: issues, effect: allow, principals: ["*"], servers: [jira] }',
          '  - { id: big-batches, effect: confirm, principals: ["*"], servers: [jira], tools: [bulk_update], when: "args.count > 10" }',
        ].join('\n'),
      );
      assert.equal(decider.decide('jira', 'bulk_update', { count: 50 }).effect, 'confirm');
      assert.equal(decider.decide('jira', 'bulk_update', { count: 3 }).effect, 'allow');
    });

    it('sees the user, server and tool in conditions', () => {
      const decider = deciderFor(
        [
          '  - { id: oncall-only, effect: allow, principals: ["*"], servers: ["*"], when: \'"oncall" in user.groups && server == "github" && tool.startsWith("merge") && user.email.endsWith("@example.com")\' }',
        ].join('\n'),
      );
      assert.equal(decider.decide('github', 'merge_pull_request').effect, 'allow');
      assert.equal(decider.decide('jira', 'merge_issues').effect, 'deny');
      const other = deciderFor(
        '  - { id: oncall-only, effect: allow, principals: ["*"], servers: ["*"], when: \'"oncall" in user.groups\' }',
        { sub: 'u-2', issuer: 'i', claims: { groups: ['engineers'] } },
      );
      assert.equal(other.decide('github', 'merge_pull_request').effect, 'deny');
    });
  });

  it('names the first matching rule in document order, whichever table it came from', () => {
    const decider = deciderFor(
      [
        '  - { id: deny-any, effect: deny, principals: ["*"], servers: ["*"], tools: ["*"], when: "args.x == 1" }',
        '  - { id: deny-prefix, effect: deny, principals: ["*"], servers: [files], tools: [write_*] }',
        '  - { id: deny-exact, effect: deny, principals: ["*"], servers: [files], tools: [write_file] }',
        '  - { id: allow-prefix, effect: allow, principals: ["*"], servers: [files], tools: [read_*] }',
        '  - { id: allow-exact, effect: allow, principals: ["*"], servers: [files], tools: [read_file] }',
        '  - { id: allow-any, effect: allow, principals: ["*"], servers: ["*"] }',
      ].join('\n'),
    );
    assert.equal(decider.decide('files', 'write_file', { x: 1 }).ruleId, 'deny-any');
    assert.equal(decider.decide('files', 'write_file', { x: 2 }).ruleId, 'deny-prefix');
    assert.equal(decider.decide('files', 'read_file', { x: 2 }).ruleId, 'allow-prefix');
    assert.equal(decider.decide('files', 'list', { x: 2 }).ruleId, 'allow-any');
    const reversed = deciderFor(
      [
        '  - { id: allow-exact, effect: allow, principals: ["*"], servers: [files], tools: [read_file] }',
        '  - { id: allow-prefix, effect: allow, principals: ["*"], servers: [files], tools: [read_*] }',
      ].join('\n'),
    );
    assert.equal(reversed.decide('files', 'read_file').ruleId, 'allow-exact');
  });

  it('counts a rule once when several of its patterns match', () => {
    const decider = deciderFor('  - { id: r, effect: allow, principals: ["*"], servers: [files, "*"], tools: [read_file, read_*, "*"] }');
    assert.equal(decider.decide('files', 'read_file').ruleId, 'r');
  });

  it('ignores rules for other users', () => {
    const decider = deciderFor(
      [
        '  - { id: admins-deny, effect: deny, principals: [group:admins], servers: [files] }',
        '  - { id: carol, effect: allow, principals: ["user:carol@example.com"], servers: [jira] }',
        '  - { id: eng, effect: allow, principals: [group:engineers], servers: [files] }',
      ].join('\n'),
    );
    assert.equal(decider.decide('files', 'read_file').ruleId, 'eng');
    assert.equal(decider.decide('jira', 'get_issue').effect, 'deny');
  });

  describe('tools/list', () => {
    const decider = deciderFor(
      [
        '  - { id: files, effect: allow, principals: ["*"], servers: [files] }',
        '  - { id: no-delete, effect: deny, principals: ["*"], servers: [files], tools: [delete_file] }',
        '  - { id: tmp-writes, effect: deny, principals: ["*"], servers: [files], tools: [write_file], when: \'!args.path.startsWith("/tmp/")\' }',
        '  - { id: small-echo, effect: allow, principals: ["*"], servers: [jira], tools: [echo], when: "size(args.message) < 5" }',
        '  - { id: confirm-merge, effect: confirm, principals: ["*"], servers: [github], tools: [merge], when: "args.force == true" }',
        '  - { id: no-github, effect: deny, principals: ["*"], servers: [github], tools: [admin_*] }',
      ].join('\n'),
    );

    it('hides tools with an unconditional deny', () => {
      assert.equal(decider.isToolListed('files', 'delete_file'), false);
      assert.equal(decider.isToolListed('github', 'admin_settings'), false);
    });

    it('shows tools that some rule may allow, conditionally or not', () => {
      assert.equal(decider.isToolListed('files', 'read_file'), true);
      assert.equal(decider.isToolListed('files', 'write_file'), true);
      assert.equal(decider.isToolListed('jira', 'echo'), true);
      assert.equal(decider.isToolListed('github', 'merge'), true);
    });

    it('hides tools no rule allows', () => {
      assert.equal(decider.isToolListed('jira', 'create_issue'), false);
      assert.equal(decider.isToolListed('memory', 'read_graph'), false);
    });
  });

  it("knows which servers are in the user's catalog", () => {
    const decider = deciderFor(
      [
        '  - { id: files, effect: allow, principals: ["*"], servers: [files] }',
        '  - { id: confirm-jira, effect: confirm, principals: ["*"], servers: [jira] }',
        '  - { id: no-github, effect: deny, principals: ["*"], servers: [github] }',
      ].join('\n'),
    );
    assert.equal(decider.isServerAvailable('files'), true);
    assert.equal(decider.isServerAvailable('jira'), true);
    assert.equal(decider.isServerAvailable('github'), false);
    assert.equal(decider.isServerAvailable('memory'), false);
    assert.equal(decider.isServerAvailable('unknown'), false);
  });

  it('makes a rule whose condition no longer compiles unusable: deny applies, allow does not', () => {
    // The policy server validates conditions; a bundle carrying a broken one must still fail closed.
    const policy: EffectivePolicy = {
      org: 'acme',
      ver: 1,
      sub: 'u-1',
      groups: [],
      admin: false,
      servers: [],
      guardrails: { confirmationTimeoutSeconds: 120, bundleTtlSeconds: 3600, injection: 'advisory' },
      rules: [
        { id: 'broken-allow', effect: 'allow', servers: ['files'], tools: ['*'], when: 'args.(' },
        { id: 'broken-deny', effect: 'deny', servers: ['jira'], tools: ['*'], when: 'args.(' },
        { id: 'jira', effect: 'allow', servers: ['jira'], tools: ['*'] },
      ],
    };
    const decider = new PolicyDecider(policy);
    assert.equal(decider.decide('files', 'read').effect, 'deny');
    assert.equal(decider.decide('files', 'read').ruleId, undefined);
    assert.equal(decider.decide('jira', 'get_issue').ruleId, 'broken-deny');
  });

  it('keeps deciding correctly across many distinct tools (memo eviction)', () => {
    const decider = deciderFor(
      [
        '  - { id: reads, effect: allow, principals: ["*"], servers: ["*"], tools: [get_*] }',
        '  - { id: deny-x, effect: deny, principals: ["*"], servers: ["*"], tools: [get_x*] }',
      ].join('\n'),
    );
    for (let i = 0; i < 120_000; i += 1) {
      const tool = i % 2 === 0 ? `get_${i}` : `get_x${i}`;
      const decision = decider.decide('files', tool);
      if (decision.effect !== (i % 2 === 0 ? 'allow' : 'deny')) assert.fail(`wrong decision for ${tool}: ${decision.effect}`);
    }
  });

  describe('regressions found in review', () => {
    it('[question] a confirm rule whose condition cannot be evaluated should not turn into a silent allow', function () {
      const decider = deciderFor(
        [
          '  - { id: repo, effect: allow, principals: ["*"], servers: [github] }',
          '  - { id: confirm-prod, effect: confirm, principals: ["*"], servers: [github], tools: [push], when: \'args.branch.startsWith("prod")\' }',
        ].join('\n'),
      );
      assert.equal(decider.decide('github', 'push', { branch: 'prod-eu' }).effect, 'confirm');
      // An agent passing a list instead of a string skips the confirmation entirely.
      assert.equal(decider.decide('github', 'push', { branch: ['prod-eu'] }).effect, 'confirm');
    });
  });
});
