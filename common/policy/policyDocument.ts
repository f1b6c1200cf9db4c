/**
 * The org policy: one YAML document kept in Git. `servers` is the approved catalog,
 * `groups` maps IdP facts to policy groups, `rules` allow / deny / confirm calls for
 * principals x servers x tools (optionally under a CEL condition), `admins` names the
 * groups that may publish and revoke, `guardrails` holds org-wide settings.
 * Validation reports every problem as `file:line:col: path: message`.
 */
import { z } from 'zod';
import { isSecureOrLoopback } from '../net/loopback';
import {
  ServerIdSchema,
  ServerRedactionSchema,
  ServerTransportSchema,
  UserOAuthSettingsSchema,
  userOAuthTransportProblem,
} from '../serverTransport';
import { DocumentError, loadYamlFile, parseYamlDocument, type DocumentKind } from '../yamlDocument';
import { compileCondition } from './conditions';

/** The form of every id in a policy: servers, groups, rules. */
export const ID_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const Id = z.string().regex(ID_PATTERN, 'must be lowercase letters, digits, dots, dashes or underscores (max 63)');

/** `*` (everyone), `group:<id>` or `user:<sub or email>`. */
const Principal = z.string().regex(/^(\*|group:[a-z0-9][a-z0-9._-]{0,62}|user:\S+)$/, 'must be "*", "group:<id>" or "user:<sub or email>"');
/** A tool name, `*`, or a prefix ending in `*` such as `get_*`. */
const ToolPattern = z.string().regex(/^(\*|[A-Za-z0-9_./:-]+\*?)$/, 'must be a tool name, "*" or a prefix ending in "*"');

const Credential = z.discriminatedUnion('mode', [
  z.strictObject({ mode: z.literal('none') }),
  UserOAuthSettingsSchema,
  z.strictObject({
    mode: z.literal('shared-key'),
    /** Name of the key in the policy server's secret store; the key itself never appears here. */
    secretRef: z.string().regex(/^[A-Za-z0-9_.-]+$/),
  }),
  z.strictObject({
    /**
     * Per-user upstream tokens held at the policy server: its relay exchanges a subject token
     * it signs for the caller at the server's authorization server (RFC 8693) and keeps the
     * result encrypted; the token never reaches a laptop (policy-server/tokenExchange/).
     */
    mode: z.literal('relay-oauth'),
    /** The server's authorization server (its issuer), which trusts the policy server's subject tokens. */
    authorizationServer: z.url({ protocol: /^https?$/ }),
    /** The policy server's client there. */
    clientId: z.string().min(1).max(256),
    /** Name of that client's secret in the policy server's secret store. */
    clientSecretRef: z.string().regex(/^[A-Za-z0-9_.-]+$/),
    /** Scopes asked for (the server's own default when absent). */
    scopes: z
      .array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'must be one scope token'))
      .min(1)
      .optional(),
  }),
]);

/** Whether servers with this credential are reached through the policy server's relay (their credential stays there). */
export function isRelayed(credential: { mode: string }): boolean {
  return credential.mode === 'shared-key' || credential.mode === 'relay-oauth';
}

const ToolSettings = z.strictObject({
  risk: z.enum(['read', 'write', 'destructive']).optional(),
  /** SHA-256 of the canonical tool definition the org approved. */
  pin: z
    .string()
    .regex(/^sha256:[0-9a-f]{64}$/, 'must be sha256:<64 hex digits>')
    .optional(),
});

const CatalogServer = z.strictObject({
  id: ServerIdSchema,
  title: z.string().min(1),
  description: z.string().optional(),
  transport: ServerTransportSchema,
  redaction: ServerRedactionSchema.default({ pii: false }),
  credential: Credential.default({ mode: 'none' }),
  /** Whether the server's own tool annotations (readOnlyHint...) are believed. */
  trusted: z.boolean().default(false),
  tools: z.record(z.string().min(1), ToolSettings).default({}),
});

/** One fact about the caller; a group matches when any of its `match` entries does. */
const GroupMatch = z.union([
  z.strictObject({ claim: z.string().min(1), equals: z.string() }),
  z.strictObject({ emailDomain: z.string().regex(/^[a-z0-9.-]+\.[a-z]{2,}$/i, 'must be a domain such as example.com') }),
  z.strictObject({ githubOrg: z.string().min(1) }),
  z.strictObject({ githubTeam: z.string().regex(/^[^/\s]+\/[^/\s]+$/, 'must be "<org>/<team slug>"') }),
  z.strictObject({ user: z.string().min(1) }),
]);

const Group = z.strictObject({
  id: Id,
  description: z.string().optional(),
  match: z.array(GroupMatch).min(1),
});

const Rule = z.strictObject({
  id: Id,
  effect: z.enum(['allow', 'deny', 'confirm']),
  principals: z.array(Principal).min(1),
  servers: z.array(z.union([ServerIdSchema, z.literal('*')])).min(1),
  tools: z.array(ToolPattern).min(1).default(['*']),
  /** CEL over `args`, `user` {sub, email, groups}, `server`, `tool`. */
  when: z.string().min(1).optional(),
  /** Shown to the user when this rule denies or asks for confirmation. */
  reason: z.string().optional(),
  /** Confirm rules: the group whose members review these calls (a second person); overrides `guardrails.reviewers`. */
  reviewers: Id.optional(),
});

const Guardrails = z.strictObject({
  confirmationTimeoutSeconds: z.number().int().min(5).max(3600).default(120),
  /** How long a signed bundle stays valid; gateways fail closed after that. */
  bundleTtlSeconds: z.number().int().min(10).max(86_400).default(3600),
  /** Group whose members confirm calls of every confirm rule instead of the caller (a rule's own `reviewers` wins). */
  reviewers: Id.optional(),
  /** Injection and poisoning flags: recorded (advisory) or also enforced (block: flagged tools hidden, flagged results withheld). */
  injection: z.enum(['advisory', 'block']).default('advisory'),
});

export const PolicyDocumentSchema = z
  .strictObject({
    version: z.literal(1),
    org: z.string().min(1),
    admins: z.array(Id).min(1),
    servers: z.array(CatalogServer).default([]),
    groups: z.array(Group).default([]),
    rules: z.array(Rule).default([]),
    guardrails: Guardrails.default({ confirmationTimeoutSeconds: 120, bundleTtlSeconds: 3600, injection: 'advisory' }),
  })
  .superRefine((policy, ctx) => {
    const unique = (section: 'servers' | 'groups' | 'rules') => {
      const seen = new Set<string>();
      policy[section].forEach((item, index) => {
        if (seen.has(item.id)) ctx.addIssue({ code: 'custom', path: [section, index, 'id'], message: `duplicate id "${item.id}"` });
        seen.add(item.id);
      });
    };
    unique('servers');
    unique('groups');
    unique('rules');
    // A relayed credential is added by the policy server's relay, which speaks Streamable HTTP and never sends one in clear text.
    policy.servers.forEach((server, index) => {
      const { credential } = server;
      if (credential.mode === 'user-oauth') {
        const problem = userOAuthTransportProblem(server.transport);
        if (problem) ctx.addIssue({ code: 'custom', path: ['servers', index, 'transport', problem.field], message: problem.message });
      }
      if (credential.mode === 'relay-oauth' && !isSecureOrLoopback(new URL(credential.authorizationServer))) {
        ctx.addIssue({
          code: 'custom',
          path: ['servers', index, 'credential', 'authorizationServer'],
          message: 'the authorization server must be https (http only on loopback): the client secret must not travel in clear text',
        });
      }
      if (!isRelayed(credential)) return;
      if (server.transport.type !== 'streamable-http') {
        ctx.addIssue({
          code: 'custom',
          path: ['servers', index, 'transport', 'type'],
          message: `a ${credential.mode} server must be streamable-http (the relay speaks only that)`,
        });
      } else if (!isSecureOrLoopback(new URL(server.transport.url))) {
        ctx.addIssue({
          code: 'custom',
          path: ['servers', index, 'transport', 'url'],
          message: `a ${credential.mode} server must be https (http only on loopback): its credential must not travel in clear text`,
        });
      }
    });
    const groups = new Set(policy.groups.map((g) => g.id));
    const servers = new Set(policy.servers.map((s) => s.id));
    policy.admins.forEach((group, index) => {
      if (!groups.has(group)) ctx.addIssue({ code: 'custom', path: ['admins', index], message: `unknown group "${group}"` });
    });
    if (policy.guardrails.reviewers && !groups.has(policy.guardrails.reviewers)) {
      ctx.addIssue({ code: 'custom', path: ['guardrails', 'reviewers'], message: `unknown group "${policy.guardrails.reviewers}"` });
    }
    policy.rules.forEach((rule, index) => {
      rule.principals.forEach((principal, p) => {
        if (principal.startsWith('group:') && !groups.has(principal.slice(6))) {
          ctx.addIssue({ code: 'custom', path: ['rules', index, 'principals', p], message: `unknown group "${principal.slice(6)}"` });
        }
      });
      if (rule.reviewers !== undefined) {
        if (!groups.has(rule.reviewers))
          ctx.addIssue({ code: 'custom', path: ['rules', index, 'reviewers'], message: `unknown group "${rule.reviewers}"` });
        if (rule.effect !== 'confirm')
          ctx.addIssue({ code: 'custom', path: ['rules', index, 'reviewers'], message: 'only confirm rules have reviewers' });
      }
      rule.servers.forEach((server, s) => {
        if (server !== '*' && !servers.has(server))
          ctx.addIssue({ code: 'custom', path: ['rules', index, 'servers', s], message: `unknown server "${server}"` });
      });
    });
  });

export type PolicyDocument = z.infer<typeof PolicyDocumentSchema>;
export type PolicyRule = PolicyDocument['rules'][number];
export type PolicyGroup = PolicyDocument['groups'][number];
export type CatalogServerEntry = PolicyDocument['servers'][number];

export class PolicyError extends DocumentError {}

const POLICY: DocumentKind = { name: 'policy', error: PolicyError };

/** Parses, validates and checks every CEL condition; throws PolicyError listing all problems. */
export function parsePolicyDocument(text: string, file: string): PolicyDocument {
  return parseYamlDocument(text, file, PolicyDocumentSchema, POLICY, conditionProblems).value;
}

/** Every rule's `when` must be boolean CEL; checked on the raw document so these show with schema problems. */
function conditionProblems(raw: unknown, locate: (path: readonly PropertyKey[]) => string): string[] {
  const rules = (raw as { rules?: unknown } | null)?.rules;
  if (!Array.isArray(rules)) return [];
  const problems: string[] = [];
  rules.forEach((rule: unknown, index) => {
    const when = (rule as { when?: unknown } | null)?.when;
    if (typeof when !== 'string' || when.length === 0) return;
    const compiled = compileCondition(when);
    if (!compiled.ok) problems.push(`${locate(['rules', index, 'when'])}: rules.${index}.when: ${compiled.error}`);
  });
  return problems;
}

export function loadPolicyDocument(file: string): PolicyDocument {
  return loadYamlFile(file, POLICY, parsePolicyDocument);
}
export type RelayOAuthCredential = Extract<CatalogServerEntry['credential'], { mode: 'relay-oauth' }>;
