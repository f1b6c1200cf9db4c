/**
 * The policy benchmark's workload (policyBench.ts): the synthetic org policy (10,000
 * servers x 50 tools, rules mixing exact names, prefixes and `*`, some with CEL conditions),
 * the benchmarked user, and the session-like call stream with Zipf-skewed repeats. Seeded,
 * so every run measures the same policy and stream.
 */
import type { EffectivePolicy } from '../../common/policy/effectivePolicy';
import type { CallerIdentity } from '../../common/policy/identity';
import { mulberry32 } from '../support/seededRandom';

export const SERVERS = 10_000;
export const GROUPS = 20;
const ORG_WIDE_RULES = 10;

const VERBS = ['get', 'list', 'search', 'create', 'update', 'delete', 'read', 'write', 'run', 'export'] as const;
const NOUNS = ['issue', 'file', 'user', 'repo', 'page'] as const;
/** 10 verbs x 5 nouns = the 50 tools every server has. */
const TOOLS = VERBS.flatMap((verb) => NOUNS.map((noun) => `${verb}_${noun}`));
const CONDITIONS = [
  'size(args.query) < 64',
  'args.limit <= 100',
  '!args.path.startsWith("/etc/")',
  'has(args.force) && args.force == true',
  '"oncall" in user.groups || args.limit < 10',
] as const;

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

export const serverId = (i: number) => `srv-${String(i).padStart(5, '0')}`;
const groupId = (i: number) => `g${String(i).padStart(2, '0')}`;

function toolPatterns(random: () => number): string[] {
  const roll = random();
  if (roll < 0.4) return Array.from({ length: 1 + Math.floor(random() * 3) }, () => pick(random, TOOLS));
  if (roll < 0.75) return [`${pick(random, VERBS)}_*`];
  return ['*'];
}

function effectOf(random: () => number): 'allow' | 'deny' | 'confirm' {
  const roll = random();
  return roll < 0.7 ? 'allow' : roll < 0.9 ? 'deny' : 'confirm';
}

function principalsOf(random: () => number): string[] {
  const roll = random();
  if (roll < 0.1) return ['*'];
  if (roll < 0.15) return [`user:user${Math.floor(random() * 500)}@example.com`];
  return Array.from({ length: 1 + Math.floor(random() * 2) }, () => `group:${groupId(Math.floor(random() * GROUPS))}`);
}

/** The raw (pre-validation) synthetic org policy with `ruleCount` rules. */
export function syntheticPolicy(ruleCount: number): unknown {
  const random = mulberry32(ruleCount);
  const servers = Array.from({ length: SERVERS }, (_, i) => ({
    id: serverId(i),
    title: `Server ${i}`,
    transport:
      i % 2 === 0
        ? { type: 'stdio', command: `/opt/mcp/server-${i}` }
        : { type: 'streamable-http', url: `https://mcp${i}.example.com/mcp` },
    tools: { [`delete_${pick(random, NOUNS)}`]: { risk: 'destructive' } },
  }));
  const groups = Array.from({ length: GROUPS }, (_, i) => ({ id: groupId(i), match: [{ claim: 'groups', equals: groupId(i) }] }));
  const orgWide = [
    { id: 'org-read-everywhere', effect: 'allow', principals: ['*'], servers: ['*'], tools: ['get_*', 'list_*', 'search_*'] },
    { id: 'org-no-export', effect: 'deny', principals: ['*'], servers: ['*'], tools: ['export_*'], reason: 'no bulk export' },
    { id: 'org-confirm-deletes', effect: 'confirm', principals: ['*'], servers: ['*'], tools: ['delete_*'] },
    {
      id: 'org-no-etc-writes',
      effect: 'deny',
      principals: ['*'],
      servers: ['*'],
      tools: ['write_file'],
      when: 'args.path.startsWith("/etc/")',
    },
    { id: 'org-search-bounded', effect: 'deny', principals: ['*'], servers: ['*'], tools: ['search_*'], when: 'size(args.query) > 500' },
    { id: 'org-admin-run', effect: 'allow', principals: [`group:${groupId(0)}`], servers: ['*'], tools: ['run_*'] },
    {
      id: 'org-no-run-force',
      effect: 'deny',
      principals: ['*'],
      servers: ['*'],
      tools: ['run_*'],
      when: 'has(args.force) && args.force == true',
    },
    {
      id: 'org-oncall-update',
      effect: 'allow',
      principals: [`group:${groupId(7)}`],
      servers: ['*'],
      tools: ['update_*'],
      when: 'args.limit <= 100',
    },
    { id: 'org-confirm-write-page', effect: 'confirm', principals: ['*'], servers: ['*'], tools: ['write_page'] },
    { id: 'org-no-delete-user', effect: 'deny', principals: ['*'], servers: ['*'], tools: ['delete_user'] },
  ].slice(0, ORG_WIDE_RULES);
  const rules: Array<Record<string, unknown>> = [...orgWide];
  for (let i = rules.length; i < ruleCount; i += 1) {
    const rule: Record<string, unknown> = {
      id: `r${i}`,
      effect: effectOf(random),
      principals: principalsOf(random),
      servers: Array.from({ length: 1 + Math.floor(random() * 3) }, () => serverId(Math.floor(random() * SERVERS))),
      tools: toolPatterns(random),
    };
    if (random() < 0.15) rule.when = pick(random, CONDITIONS);
    rules.push(rule);
  }
  return { version: 1, org: 'bench', admins: [groupId(0)], servers, groups, rules };
}

/** The benchmarked user: three of the twenty groups. */
export const USER: CallerIdentity = {
  sub: 'bench-user',
  issuer: 'https://login.example.com',
  email: 'bench@example.com',
  claims: { groups: [groupId(3), groupId(7), groupId(11)] },
};

export interface Call {
  server: string;
  tool: string;
  args: Record<string, unknown>;
}

function argsFor(random: () => number): Record<string, unknown> {
  const roll = random();
  if (roll < 0.1) return {};
  const args: Record<string, unknown> = {
    query: 'status:open assignee:me',
    limit: roll < 0.5 ? 20 : 250,
    path: roll < 0.3 ? '/etc/hosts' : '/srv/app/readme.md',
  };
  if (roll > 0.9) args.force = true;
  return args;
}

/**
 * A session's calls: mostly servers the user's rules name (hits, some not for that tool),
 * the rest catalog servers outside them (misses).
 */
export function sessionCalls(effective: EffectivePolicy, count: number, seed: number): Call[] {
  const random = mulberry32(seed);
  const named = [...new Set(effective.rules.flatMap((r) => r.servers).filter((s) => s !== '*'))];
  return Array.from({ length: count }, () => {
    const server = named.length > 0 && random() < 0.8 ? pick(random, named) : serverId(Math.floor(random() * SERVERS));
    return { server, tool: pick(random, TOOLS), args: argsFor(random) };
  });
}

/** Zipf-like (s ~ 1) draws of indexes into `n` items, so a few calls dominate as in a real session. */
export function zipfStream(n: number, length: number, seed: number): Uint32Array {
  const random = mulberry32(seed);
  const cumulative = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i += 1) cumulative[i] = total += 1 / (i + 1);
  const out = new Uint32Array(length);
  for (let k = 0; k < length; k += 1) {
    const target = random() * total;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cumulative[mid]! < target) lo = mid + 1;
      else hi = mid;
    }
    out[k] = lo;
  }
  return out;
}
