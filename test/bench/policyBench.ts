/**
 * Policy benchmark group (`npm run bench -- policy`): how long a policy decision takes.
 *
 * A synthetic org policy: 10,000 catalog servers with 50 tools each, and 100 / 1,000 /
 * 10,000 rules (the headline figures are at 1,000). Rules mix exact tool names, prefixes
 * (`get_*`) and `*`; allow / deny / confirm; about 15 % carry a CEL condition on `args`;
 * principals are spread over 20 groups, `*` and single users. Ten org-wide rules name server
 * `*` at every size (orgs add rules per server, not org-wide ones); the rest name 1-3 servers.
 *
 * For one user (3 of the 20 groups) it times compileEffectivePolicy and the PolicyDecider
 * build, then decisions:
 *  - warm: a session-like stream (Zipf-skewed draws from 2,000 (server, tool, args) calls,
 *    hits and misses, most pairs repeated), after a pass that warms the JIT and the memo;
 *  - cold: a fresh decider (empty memo) and 20,000 distinct pairs, each decided once.
 *
 * Timing method: each decision is timed on its own with process.hrtime.bigint() before and
 * after, because batch means hide the tail that p99 is about. A back-to-back hrtime pair
 * costs tens of ns, which is not small next to a sub-µs decision, so the median cost of an
 * empty pair (measured here, "timer overhead") is subtracted from every sample (floored at 0).
 * The batch mean over the whole stream (one hrtime pair around it) is printed as a check.
 *
 * Prints a markdown table and one JSON line starting `{"bench":"policy"`. The synthetic
 * policy and call stream are built in policyBenchWorkload.ts; this file times them.
 */
import { compileEffectivePolicy } from '../../common/policy/effectivePolicy';
import { PolicyDecider } from '../../common/policy/policyDecider';
import { PolicyDocumentSchema, type PolicyDocument } from '../../common/policy/policyDocument';
import { markdownTable, median, percentile, round } from './benchStats';
import { SERVERS, GROUPS, serverId, syntheticPolicy, USER, type Call, sessionCalls, zipfStream } from './policyBenchWorkload';

const TOOLS_PER_SERVER = 50;
const RULE_COUNTS = [100, 1_000, 10_000] as const;
const HEADLINE_RULES = 1_000;
const WARM_DISTINCT_CALLS = 2_000;
const WARM_DECISIONS = 500_000;
const COLD_DECISIONS = 50_000;
const BUILD_REPEATS = 5;

const TARGETS = { decision_p50_us: 5, flat_ratio: 2 };

/** Median cost in ns of a back-to-back hrtime pair, subtracted from every sample. */
function timerOverheadNs(): number {
  const samples = new Float64Array(50_000);
  for (let i = 0; i < samples.length; i += 1) {
    const t0 = process.hrtime.bigint();
    const t1 = process.hrtime.bigint();
    samples[i] = Number(t1 - t0);
  }
  return percentile(samples.sort(), 0.5);
}

interface Timed {
  p50: number;
  p99: number;
  meanUs: number;
  effects: Record<string, number>;
}

let sink = 0;

/** Times `decide` per call (µs, timer overhead removed) over `order` indexes into `calls`. */
function timeDecisions(decider: PolicyDecider, calls: Call[], order: ArrayLike<number>, overheadNs: number): Timed {
  const samples = new Float64Array(order.length);
  const effects: Record<string, number> = { allow: 0, confirm: 0, deny: 0 };
  const began = process.hrtime.bigint();
  for (let i = 0; i < order.length; i += 1) {
    const call = calls[order[i]!]!;
    const t0 = process.hrtime.bigint();
    const decision = decider.decide(call.server, call.tool, call.args);
    const t1 = process.hrtime.bigint();
    samples[i] = Math.max(0, Number(t1 - t0) - overheadNs) / 1000;
    effects[decision.effect]! += 1;
  }
  const totalNs = Number(process.hrtime.bigint() - began);
  sink += effects.allow!;
  samples.sort();
  // The batch mean includes two hrtime calls per decision; take their cost off it too.
  return {
    p50: percentile(samples, 0.5),
    p99: percentile(samples, 0.99),
    meanUs: (totalNs / order.length - 2 * overheadNs) / 1000,
    effects,
  };
}

function timeMs(fn: () => unknown): number {
  const runs: number[] = [];
  for (let i = 0; i < BUILD_REPEATS; i += 1) {
    const t0 = process.hrtime.bigint();
    sink += fn() === undefined ? 0 : 1;
    runs.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(runs);
}

interface SizeResult {
  rules: number;
  effectiveRules: number;
  effectiveServers: number;
  bundleKb: number;
  validateMs: number;
  compileMs: number;
  buildMs: number;
  warm: Timed;
  cold: Timed;
  serverAvailableUs: number;
}

function benchSize(ruleCount: number, overheadNs: number): SizeResult {
  const raw = syntheticPolicy(ruleCount);
  let policy: PolicyDocument | undefined;
  const t0 = process.hrtime.bigint();
  policy = PolicyDocumentSchema.parse(raw);
  const validateMs = Number(process.hrtime.bigint() - t0) / 1e6;

  const compileMs = timeMs(() => compileEffectivePolicy(policy!, 1, USER));
  const effective = compileEffectivePolicy(policy, 1, USER);
  policy = undefined;
  const buildMs = timeMs(() => new PolicyDecider(effective));

  // Warm: 2,000 distinct calls, a warm-up pass over all of them, then a skewed stream.
  const calls = sessionCalls(effective, WARM_DISTINCT_CALLS, 7);
  const warmDecider = new PolicyDecider(effective);
  const everyCall = Uint32Array.from(calls.keys());
  timeDecisions(warmDecider, calls, everyCall, overheadNs);
  timeDecisions(warmDecider, calls, zipfStream(calls.length, WARM_DECISIONS / 4, 11), overheadNs);
  const warm = timeDecisions(warmDecider, calls, zipfStream(calls.length, WARM_DECISIONS, 13), overheadNs);

  // Cold: a fresh decider, and pairs it has never seen (each (server, tool) once).
  const coldCalls: Call[] = [];
  const seen = new Set<string>();
  for (const call of sessionCalls(effective, COLD_DECISIONS * 3, 17)) {
    const key = `${call.server}\u0000${call.tool}`;
    if (seen.has(key)) continue;
    seen.add(key);
    coldCalls.push(call);
    if (coldCalls.length === COLD_DECISIONS) break;
  }
  const cold = timeDecisions(new PolicyDecider(effective), coldCalls, Uint32Array.from(coldCalls.keys()), overheadNs);

  const probes = 2_000;
  const t1 = process.hrtime.bigint();
  for (let i = 0; i < probes; i += 1) sink += warmDecider.isServerAvailable(serverId((i * 7919) % SERVERS)) ? 1 : 0;
  const serverAvailableUs = Number(process.hrtime.bigint() - t1) / probes / 1000;

  return {
    rules: ruleCount,
    effectiveRules: effective.rules.length,
    effectiveServers: effective.servers.length,
    bundleKb: Buffer.byteLength(JSON.stringify(effective)) / 1024,
    validateMs,
    compileMs,
    buildMs,
    warm,
    cold,
    serverAvailableUs,
  };
}

export async function runPolicyBench(): Promise<void> {
  const began = performance.now();
  const overheadNs = timerOverheadNs();
  const results = RULE_COUNTS.map((count) => {
    const result = benchSize(count, overheadNs);
    process.stderr.write(`[bench policy] ${count} rules measured\n`);
    return result;
  });
  const at = (count: number) => results.find((r) => r.rules === count)!;
  const headline = at(HEADLINE_RULES);
  const smallest = at(RULE_COUNTS[0]);
  const largest = at(RULE_COUNTS[RULE_COUNTS.length - 1]!);
  const flatRatio = largest.warm.p50 / smallest.warm.p50;
  const targetsMet = {
    decision_p50_us: headline.warm.p50 <= TARGETS.decision_p50_us,
    flat_ratio: flatRatio <= TARGETS.flat_ratio,
  };

  const us = (v: number) => v.toFixed(3);
  console.log(
    `\n## Policy decision benchmark (${SERVERS.toLocaleString('en')} servers x ${TOOLS_PER_SERVER} tools; user in 3 of ${GROUPS} groups; ` +
      `timer overhead ${overheadNs} ns subtracted per sample)\n`,
  );
  console.log(
    markdownTable(
      [
        'rules',
        'user rules',
        'user servers',
        'bundle KB',
        'validate ms',
        'compile ms',
        'decider build ms',
        'warm p50 µs',
        'warm p99 µs',
        'warm mean µs',
        'cold p50 µs',
        'cold p99 µs',
        'cold mean µs',
        'isServerAvailable µs',
      ],
      results.map((r) => [
        r.rules.toLocaleString('en'),
        r.effectiveRules,
        r.effectiveServers,
        r.bundleKb.toFixed(0),
        r.validateMs.toFixed(1),
        r.compileMs.toFixed(2),
        r.buildMs.toFixed(2),
        us(r.warm.p50),
        us(r.warm.p99),
        us(r.warm.meanUs),
        us(r.cold.p50),
        us(r.cold.p99),
        us(r.cold.meanUs),
        us(r.serverAvailableUs),
      ]),
    ),
  );
  const mix = headline.warm.effects;
  console.log(
    `\nWarm stream: ${WARM_DECISIONS.toLocaleString('en')} decisions drawn (Zipf) from ${WARM_DISTINCT_CALLS.toLocaleString('en')} calls ` +
      `(at ${HEADLINE_RULES.toLocaleString('en')} rules: ${mix.allow} allow, ${mix.confirm} confirm, ${mix.deny} deny). ` +
      `Cold: ${COLD_DECISIONS.toLocaleString('en')} distinct (server, tool) pairs on a fresh decider.`,
  );
  console.log(`Build times are the median of ${BUILD_REPEATS}; "validate" is one zod parse of the whole org document.\n`);
  console.log(
    markdownTable(
      ['metric', 'value', 'target', 'met'],
      [
        [
          `decision p50 µs (warm, ${HEADLINE_RULES} rules)`,
          us(headline.warm.p50),
          `<= ${TARGETS.decision_p50_us}`,
          targetsMet.decision_p50_us ? 'yes' : 'NO',
        ],
        [
          `p50 ${largest.rules} rules / p50 ${smallest.rules} rules (warm)`,
          flatRatio.toFixed(2),
          `<= ${TARGETS.flat_ratio}`,
          targetsMet.flat_ratio ? 'yes' : 'NO',
        ],
      ],
    ),
  );
  console.log('');

  const perRules = Object.fromEntries(
    results.map((r) => [
      String(r.rules),
      {
        effective_rules: r.effectiveRules,
        effective_servers: r.effectiveServers,
        bundle_kb: round(r.bundleKb, 1),
        validate_ms: round(r.validateMs, 2),
        compile_effective_ms: round(r.compileMs),
        decider_build_ms: round(r.buildMs),
        warm_p50_us: round(r.warm.p50),
        warm_p99_us: round(r.warm.p99),
        warm_mean_us: round(r.warm.meanUs),
        cold_p50_us: round(r.cold.p50),
        cold_p99_us: round(r.cold.p99),
        cold_mean_us: round(r.cold.meanUs),
        is_server_available_us: round(r.serverAvailableUs),
      },
    ]),
  );
  console.log(
    JSON.stringify({
      bench: 'policy',
      decision_p50_us: round(headline.warm.p50),
      decision_p99_us: round(headline.warm.p99),
      cold_decision_p50_us: round(headline.cold.p50),
      cold_decision_p99_us: round(headline.cold.p99),
      compile_effective_ms: round(headline.compileMs),
      decider_build_ms: round(headline.buildMs),
      flat_ratio: round(flatRatio),
      by_rules: perRules,
      servers: SERVERS,
      tools_per_server: TOOLS_PER_SERVER,
      warm_decisions: WARM_DECISIONS,
      cold_decisions: COLD_DECISIONS,
      timer_overhead_ns: overheadNs,
      bench_seconds: round((performance.now() - began) / 1000, 1),
      targets_met: targetsMet,
    }),
  );
  if (sink === -1) console.log('');
}
