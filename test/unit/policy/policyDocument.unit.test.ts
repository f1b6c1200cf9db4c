import assert from 'node:assert/strict';
import { loadPolicyDocument, parsePolicyDocument, PolicyError } from '../../../common/policy/policyDocument';

const FILE = '/org/policy.yaml';

/**
 * A valid policy (lines 1-13) to which each test appends a `rules:` section, so the line
 * numbers in the assertions below can be read straight off the text.
 */
const HEAD = [
  'version: 1', //                                  1
  'org: acme', //                                   2
  'admins: [admins]', //                            3
  'servers:', //                                    4
  '  - id: files', //                               5
  '    title: Files', //                            6
  '    transport: { type: stdio, command: /bin/files }', // 7
  '  - id: memory', //                              8
  '    title: Memory', //                           9
  '    transport: { type: streamable-http, url: "https://memory.example.com/mcp" }', // 10
  'groups:', //                                     11
  '  - id: admins', //                              12
  '    match: [{ user: alice@example.com }]', //    13
];

function policyText(...lines: string[]): string {
  return [...HEAD, ...lines].join('\n') + '\n';
}

function problemsOf(text: string): string[] {
  try {
    parsePolicyDocument(text, FILE);
  } catch (error) {
    assert.ok(error instanceof PolicyError, `expected a PolicyError, got ${String(error)}`);
    assert.equal(error.file, FILE);
    return error.problems;
  }
  assert.fail('expected a PolicyError');
}

function onlyProblem(text: string): string {
  const problems = problemsOf(text);
  assert.equal(problems.length, 1, `expected one problem, got:\n${problems.join('\n')}`);
  return problems[0]!;
}

describe('policy document', () => {
  it('fills in every default for a minimal document', () => {
    const policy = parsePolicyDocument('version: 1\norg: acme\nadmins: [admins]\ngroups: [{ id: admins, match: [{ user: a }] }]\n', FILE);
    assert.deepEqual(policy.servers, []);
    assert.deepEqual(policy.rules, []);
    assert.equal(policy.guardrails.confirmationTimeoutSeconds, 120);
    assert.equal(typeof policy.guardrails.bundleTtlSeconds, 'number');
  });

  it('accepts rules naming `*` principals, `user:` principals, server `*`, prefixes and a CEL condition', () => {
    const policy = parsePolicyDocument(
      policyText(
        'rules:',
        '  - id: r1',
        '    effect: confirm',
        '    principals: ["*", "user:bob@example.com", "group:admins"]',
        '    servers: ["*"]',
        '    tools: [get_*, read_file, "*"]',
        '    when: has(args.path) && args.path.startsWith("/tmp/")',
        '    reason: why not',
      ),
      FILE,
    );
    assert.equal(policy.rules[0]!.effect, 'confirm');
    assert.deepEqual(policy.rules[0]!.tools, ['get_*', 'read_file', '*']);
  });

  it('reports a rule naming an unknown group at the principal', () => {
    assert.equal(
      onlyProblem(
        policyText(
          'rules:', //                                        14
          '  - id: r1', //                                    15
          '    effect: allow', //                             16
          '    principals: [group:admins, group:ghosts]', //  17
          '    servers: [files]', //                          18
        ),
      ),
      `${FILE}:17:32: rules.0.principals.1: unknown group "ghosts"`,
    );
  });

  it('refuses a shared-key server the relay cannot serve safely: not Streamable HTTP, or a key in clear text', () => {
    const base = ['version: 1', 'org: acme', 'admins: [admins]', 'groups: [{ id: admins, match: [{ user: alice }] }]', 'servers:'];
    const problems = problemsOf(
      [
        ...base,
        '  - { id: a, title: A, transport: { type: stdio, command: /bin/a }, credential: { mode: shared-key, secretRef: k } }', // 6
        '  - { id: b, title: B, transport: { type: streamable-http, url: "http://api.example.com/mcp" }, credential: { mode: shared-key, secretRef: k } }', // 7
        '  - { id: c, title: C, transport: { type: streamable-http, url: "https://api.example.com/mcp" }, credential: { mode: shared-key, secretRef: k } }', // 8
        '  - { id: d, title: D, transport: { type: streamable-http, url: "http://127.0.0.1:9/mcp" }, credential: { mode: shared-key, secretRef: k } }', // 9
      ].join('\n') + '\n',
    );
    assert.equal(problems.length, 2, problems.join('\n'));
    assert.match(problems[0]!, /:6:.*servers\.0\.transport\.type: a shared-key server must be streamable-http/);
    assert.match(
      problems[1]!,
      /:7:.*servers\.1\.transport\.url: a shared-key server must be https \(http only on loopback\): its credential/,
    );
  });

  it('reports rule reviewers that name an unknown group or sit on a rule that is not confirm', () => {
    const problems = problemsOf(
      policyText(
        'rules:', //                                        14
        '  - { id: r1, effect: confirm, principals: ["*"], servers: [files], reviewers: ghosts }', // 15
        '  - { id: r2, effect: allow, principals: ["*"], servers: [files], reviewers: admins }', //   16
        '  - { id: r3, effect: confirm, principals: ["*"], servers: [files], reviewers: admins }', // 17
      ),
    );
    assert.deepEqual([...problems].sort(), [
      `${FILE}:15:80: rules.0.reviewers: unknown group "ghosts"`,
      `${FILE}:16:78: rules.1.reviewers: only confirm rules have reviewers`,
    ]);
  });

  it('reports a rule naming a server that is not in the catalog', () => {
    assert.equal(
      onlyProblem(
        policyText(
          'rules:',
          '  - id: r1',
          '    effect: allow',
          '    principals: ["*"]',
          '    servers: [files, nowhere]', //                 18
        ),
      ),
      `${FILE}:18:22: rules.0.servers.1: unknown server "nowhere"`,
    );
  });

  it('reports a duplicate rule id at the second occurrence', () => {
    assert.equal(
      onlyProblem(
        policyText(
          'rules:',
          '  - id: same', //                                  15
          '    effect: allow',
          '    principals: ["*"]',
          '    servers: [files]',
          '  - id: same', //                                  19
          '    effect: deny',
          '    principals: ["*"]',
          '    servers: [files]',
        ),
      ),
      `${FILE}:19:9: rules.1.id: duplicate id "same"`,
    );
  });

  it('reports duplicate server and group ids, and unknown admin and reviewer groups', () => {
    const problems = problemsOf(
      [
        'version: 1',
        'org: acme',
        'admins: [admins, root]', //                        3
        'servers:',
        '  - { id: files, title: A, transport: { type: stdio, command: /a } }',
        '  - { id: files, title: B, transport: { type: stdio, command: /b } }', // 6
        'groups:',
        '  - { id: admins, match: [{ user: a }] }',
        '  - { id: admins, match: [{ user: b }] }', //     9
        'guardrails:',
        '  reviewers: approvers', //                        11
      ].join('\n'),
    );
    assert.deepEqual([...problems].sort(), [
      `${FILE}:11:14: guardrails.reviewers: unknown group "approvers"`,
      `${FILE}:3:18: admins.1: unknown group "root"`,
      `${FILE}:6:11: servers.1.id: duplicate id "files"`,
      `${FILE}:9:11: groups.1.id: duplicate id "admins"`,
    ]);
  });

  it('reports a malformed principal', () => {
    assert.equal(
      onlyProblem(
        policyText(
          'rules:',
          '  - id: r1',
          '    effect: allow',
          '    principals: ["*", bob]', //                    17
          '    servers: [files]',
        ),
      ),
      `${FILE}:17:23: rules.0.principals.1: must be "*", "group:<id>" or "user:<sub or email>"`,
    );
    for (const bad of ['group:', 'group:Admins', 'user:', 'users:bob', 'everyone', '**']) {
      // The position is the opening quote; `group:` with a bad id may also be reported as an unknown group.
      const problems = problemsOf(
        policyText('rules:', '  - id: r1', '    effect: allow', `    principals: ["${bad}"]`, '    servers: [files]'),
      );
      assert.match(problems[0]!, /^\/org\/policy\.yaml:17:18: rules\.0\.principals\.0: must be "\*"/, bad);
    }
  });

  it('reports bad CEL syntax in `when` at the line of `when`', () => {
    assert.equal(
      onlyProblem(
        policyText(
          'rules:',
          '  - id: r1',
          '    effect: allow',
          '    principals: ["*"]',
          '    servers: [files]',
          '    when: args.path.startsWith(', //               19
        ),
      ),
      `${FILE}:19:11: rules.0.when: CEL: Unexpected token: EOF`,
    );
  });

  it('reports a condition in a block scalar at the line of `when`', () => {
    const problem = onlyProblem(
      policyText(
        'rules:',
        '  - id: r1',
        '    effect: allow',
        '    principals: ["*"]',
        '    servers: [files]',
        '    when: |', //                                   19
        '      args.size >',
      ),
    );
    assert.match(problem, new RegExp(`^${FILE}:19:\\d+: rules\\.0\\.when: CEL: `));
  });

  it('reports a condition that is not boolean, and one using an unknown variable', () => {
    const problems = problemsOf(
      policyText(
        'rules:',
        '  - id: r1',
        '    effect: allow',
        '    principals: ["*"]',
        '    servers: [files]',
        '    when: size(args.path) + 1', //                 19
        '  - id: r2',
        '    effect: deny',
        '    principals: ["*"]',
        '    servers: [files]',
        '    when: "\'constant\'"', //                      24
        '  - id: r3',
        '    effect: deny',
        '    principals: ["*"]',
        '    servers: [files]',
        '    when: request.ip == "10.0.0.1"', //            29
      ),
    );
    assert.deepEqual(problems, [
      `${FILE}:19:11: rules.0.when: CEL: condition must be boolean, this one is int`,
      `${FILE}:24:11: rules.1.when: CEL: condition must be boolean, this one is string`,
      `${FILE}:29:11: rules.2.when: CEL: Unknown variable: request`,
    ]);
  });

  it('reports an unknown key with its path and the key name', () => {
    const problem = onlyProblem(
      policyText(
        'rules:',
        '  - id: r1', //                                    15
        '    effect: allow',
        '    principals: ["*"]',
        '    servers: [files]',
        '    colour: red', //                               19
      ),
    );
    assert.equal(problem, `${FILE}:19:5: rules.0: Unrecognized key: "colour"`);
    assert.match(onlyProblem(policyText('rules: []', 'extra: 1')), /^\/org\/policy\.yaml:\d+:\d+: \(root\): Unrecognized key: "extra"$/);
    assert.equal(
      onlyProblem(policyText('rules:', '  - { id: r1, effect: allow, principals: ["*"], servers: [files], tool: [x] }')),
      `${FILE}:15:67: rules.0: Unrecognized key: "tool"`,
    );
  });

  it('reports bad enum values, tool patterns, group matches and guardrail bounds at their position', () => {
    const problems = problemsOf(
      [
        'version: 1',
        'org: acme',
        'admins: [admins]',
        'groups:',
        '  - id: admins',
        '    match:',
        '      - { emailDomain: "not a domain" }', //       7
        '      - { githubTeam: acme }', //                  8
        'rules:',
        '  - id: r1',
        '    effect: permit', //                            11
        '    principals: ["*"]',
        '    servers: ["*"]',
        '    tools: ["get_*_all"]', //                      14
        'guardrails:',
        '  confirmationTimeoutSeconds: 1', //               16
      ].join('\n'),
    ).join('\n');
    assert.match(problems, /:7:24: groups\.0\.match\.0\.emailDomain: must be a domain/);
    assert.match(problems, /:8:23: groups\.0\.match\.1\.githubTeam: must be "<org>\/<team slug>"/);
    assert.match(problems, /:11:13: rules\.0\.effect: /);
    assert.match(problems, /:14:13: rules\.0\.tools\.0: must be a tool name, "\*" or a prefix ending in "\*"/);
    assert.match(problems, /:16:31: guardrails\.confirmationTimeoutSeconds: /);
  });

  it('reports every schema problem at once', () => {
    const problems = problemsOf(
      policyText(
        'rules:',
        '  - id: r1',
        '    effect: allow',
        '    principals: [group:ghosts, bob]',
        '    servers: [nowhere]',
        '  - id: r1',
        '    effect: allow',
        '    principals: ["*"]',
        '    servers: [files]',
      ),
    );
    assert.equal(problems.length, 4, problems.join('\n'));
  });

  it('reports YAML syntax errors and duplicate keys', () => {
    // Only the shape `file:line:col: message` holds today; see the known-bug test for the position.
    assert.match(onlyProblem('version: 1\norg: [acme\n'), /^\/org\/policy\.yaml:\d+:\d+: Flow sequence/);
    assert.match(onlyProblem('version: 1\norg: a\norg: b\nadmins: [x]\n'), /^\/org\/policy\.yaml:\d+:\d+: Map keys must be unique/);
    assert.match(onlyProblem(''), /^\/org\/policy\.yaml:1:1: \(root\): /);
  });

  it('says when the file cannot be read', () => {
    assert.throws(
      () => loadPolicyDocument('/nonexistent/policy.yaml'),
      (error: unknown) => error instanceof PolicyError && /cannot read file: ENOENT/.test(error.problems[0]!),
    );
  });

  describe('regressions found in review', () => {
    it('[bug] reports a YAML syntax error at its line, not 0:0', function () {
      assert.match(onlyProblem('version: 1\norg: a\norg: b\nadmins: [x]\n'), /^\/org\/policy\.yaml:3:1: Map keys must be unique/);
      assert.match(onlyProblem('version: 1\norg: [acme\n'), /^\/org\/policy\.yaml:[1-9]\d*:[1-9]\d*: Flow sequence/);
    });

    it('[question] reports CEL problems together with schema problems, not only once the schema passes', function () {
      const problems = problemsOf(
        policyText(
          'rules:',
          '  - id: r1',
          '    effect: allow',
          '    principals: ["*"]',
          '    servers: [nowhere]', //                        18
          '    when: args.(', //                              19
        ),
      );
      assert.equal(problems.length, 2, problems.join('\n'));
    });

    it('[bug] reports an unknown key in a block map at the key, not at the start of the map', function () {
      assert.equal(
        onlyProblem(
          policyText(
            'rules:',
            '  - id: r1',
            '    effect: allow',
            '    principals: ["*"]',
            '    servers: [files]',
            '    colour: red', //                             19
          ),
        ),
        `${FILE}:19:5: rules.0: Unrecognized key: "colour"`,
      );
    });
  });
});
