/**
 * Scale benchmark group (`npm run bench -- scale`): the policy server on PostgreSQL with 1
 * and then 3 replicas behind the test's round-robin balancer (test/support/), on this one
 * machine (2 cores shared by PostgreSQL, the replicas and the load generator, so the step
 * from 1 to 3 replicas shows contention as much as scaling; say so when reading it).
 *
 *  - audit_ingest_events_s: autocannon posting batches of 100 fresh events (`POST /v1/audit`,
 *    as gateways' shippers do) for 8 s, 32 connections; counted from 200 answers only.
 *  - policy_fetch_rps: `GET /v1/effective-policy` with the bundle's ETag in If-None-Match
 *    (what gateways send), 32 connections, 8 s; 304 answers only.
 *  - revocation_p99_ms: 40 times, a user's event stream open on one replica, the revocation
 *    posted to another (the same one with 1 replica), time until the stream says `revoked`.
 *
 * Targets (issue #7): ingest >= 10,000 events/s, fetch >= 5,000 rps. Prints a table and one
 * JSON line starting `{"bench":"scale"`.
 */
import { auditEventOf } from '../support/auditEvents';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalIdp, type LocalIdp } from '../support/localIdp';
import { startPolicyServer, type RunningPolicyServer } from '../support/policyHarness';
import { startPostgres } from '../support/postgres';
import { startRoundRobinBalancer } from '../support/roundRobinBalancer';
import { autocannon } from './benchLoad';
import { markdownTable, percentile, round } from './benchStats';

const TARGETS = { audit_ingest_events_s: 10_000, policy_fetch_rps: 5_000 };
const SECONDS = 8;
const CONNECTIONS = 32;
const BATCH = 100;
const REVOCATIONS = 40;
const POLICY = `version: 1
org: bench
admins: [admins]
servers:
  - { id: notes, title: Notes, transport: { type: streamable-http, url: "https://notes.example.com/mcp" } }
groups:
  - { id: engineers, match: [{ claim: groups, equals: engineers }] }
  - { id: admins, match: [{ user: carol@example.com }] }
rules:
  - { id: engineers-notes, effect: allow, principals: [group:engineers], servers: [notes], tools: ["*"] }
`;

interface Figures {
  replicas: number;
  audit_ingest_events_s: number;
  policy_fetch_rps: number;
  revocation_p50_ms: number;
  revocation_p99_ms: number;
}

function run(
  options: Record<string, unknown>,
): Promise<{ requests: number; seconds: number; non2xx: number; errors: number; statuses: Record<string, number> }> {
  return new Promise((resolve, reject) => {
    const statuses: Record<string, number> = {};
    let requests = 0;
    const started = performance.now();
    const tracker = autocannon({ connections: CONNECTIONS, duration: SECONDS, ...options }, (error, result) => {
      if (error) return reject(error);
      resolve({ requests, seconds: (performance.now() - started) / 1000, non2xx: result.non2xx, errors: result.errors, statuses });
    });
    tracker.on('response', (_client, status) => {
      statuses[status] = (statuses[status] ?? 0) + 1;
      requests++;
    });
  });
}

async function revocationLatencies(replicas: RunningPolicyServer[], tokens: Record<string, string>): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = 0; i < REVOCATIONS; i++) {
    const streamOn = replicas[i % replicas.length]!;
    const revokeOn = replicas[(i + 1) % replicas.length]!;
    const aborter = new AbortController();
    const stream = await fetch(`${streamOn.url}/v1/events`, {
      headers: { Authorization: `Bearer ${tokens.alice}`, Accept: 'text/event-stream' },
      signal: aborter.signal,
    });
    if (stream.status !== 200 || !stream.body) throw new Error(`event stream refused: HTTP ${stream.status}`);
    const reader = stream.body.getReader();
    const decoder = new TextDecoder();
    let seen = '';
    // Wait for the first `policy` event: the stream is registered before anything is revoked.
    while (!seen.includes('event: policy')) seen += decoder.decode((await reader.read()).value ?? new Uint8Array());
    const started = performance.now();
    const revoked = await fetch(`${revokeOn.url}/v1/revocations`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${tokens.carol}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ sub: 'alice' }),
    });
    if (revoked.status !== 201) throw new Error(`revoke failed: HTTP ${revoked.status} ${await revoked.text()}`);
    while (!seen.includes('event: revoked')) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += decoder.decode(value);
    }
    if (!seen.includes('event: revoked')) throw new Error('the stream ended without the revocation');
    latencies.push(performance.now() - started);
    aborter.abort();
    const lifted = await fetch(`${revokeOn.url}/v1/revocations`, {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${tokens.carol}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ sub: 'alice' }),
    });
    if (lifted.status !== 204) throw new Error(`lifting failed: HTTP ${lifted.status}`);
  }
  return latencies.sort((a, b) => a - b);
}

async function measure(count: number, idp: LocalIdp, tokens: Record<string, string>): Promise<Figures> {
  const postgres = await startPostgres();
  const scratch = mkdtempSync(join(tmpdir(), 'gatehouse-scale-bench-'));
  const replicas: RunningPolicyServer[] = [];
  try {
    const policyFile = join(scratch, 'org-policy.yaml');
    writeFileSync(policyFile, POLICY);
    const shared = {
      dataDir: scratch,
      extraArgs: ['--store', postgres.url, '--issuer-url', 'https://policy.gatehouse.test', '--log-level', 'warn'],
    };
    replicas.push(await startPolicyServer(idp, { ...shared, bootstrapPolicy: policyFile }));
    for (let i = 1; i < count; i++) replicas.push(await startPolicyServer(idp, shared));
    const balancer = await startRoundRobinBalancer(replicas.map((r) => r.url));
    try {
      const auth = { Authorization: `Bearer ${tokens.alice}` };
      const ingest = await run({
        url: `${balancer.url}/v1/audit`,
        requests: [
          {
            method: 'POST',
            setupRequest: (request: Record<string, unknown>) => ({
              ...request,
              headers: { ...auth, 'content-type': 'application/json' },
              body: JSON.stringify({
                events: Array.from({ length: BATCH }, () =>
                  auditEventOf({ client: { name: 'bench', version: '1' }, server: 'notes', tool: 'read_note' }),
                ),
              }),
            }),
          },
        ],
      });
      const stored = Number((await postgres.query<{ n: string }>('select count(*) as n from audit_events')).rows[0]!.n);
      const first = await fetch(`${balancer.url}/v1/effective-policy`, { headers: auth });
      const etag = first.headers.get('etag');
      await first.arrayBuffer();
      if (!etag) throw new Error('no ETag on the effective policy');
      const fetches = await run({ url: `${balancer.url}/v1/effective-policy`, headers: { ...auth, 'if-none-match': etag } });
      const revocations = await revocationLatencies(replicas, tokens);
      return {
        replicas: count,
        audit_ingest_events_s: round(((ingest.statuses['200'] ?? 0) * BATCH) / ingest.seconds, 0),
        policy_fetch_rps: round((fetches.statuses['304'] ?? 0) / fetches.seconds, 0),
        revocation_p50_ms: round(percentile(revocations, 0.5), 1),
        revocation_p99_ms: round(percentile(revocations, 0.99), 1),
        ...(stored < (ingest.statuses['200'] ?? 0) * BATCH ? { lost: (ingest.statuses['200'] ?? 0) * BATCH - stored } : {}),
      };
    } finally {
      await balancer.stop();
    }
  } finally {
    await Promise.all(replicas.map((r) => r.stop()));
    await postgres.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

export async function runScaleBench(): Promise<void> {
  const idp = await startLocalIdp({ accessTokenTtlSeconds: 3_600 });
  try {
    const tokens: Record<string, string> = { alice: await idp.tokenFor('alice'), carol: await idp.tokenFor('carol') };
    const results: Figures[] = [];
    for (const count of [1, 3]) results.push(await measure(count, idp, tokens));
    process.stdout.write(
      `\n### Scale (policy server on PostgreSQL, ${SECONDS} s per load, ${CONNECTIONS} connections, 2 cores shared by everything)\n\n`,
    );
    process.stdout.write(
      markdownTable(
        ['replicas', 'audit ingest events/s (>= 10,000)', 'policy fetch rps, 304 (>= 5,000)', 'revocation p50 ms', 'revocation p99 ms'],
        results.map((r) => [r.replicas, r.audit_ingest_events_s, r.policy_fetch_rps, r.revocation_p50_ms, r.revocation_p99_ms]),
      ) + '\n\n',
    );
    const three = results.find((r) => r.replicas === 3)!;
    process.stdout.write(
      `${JSON.stringify({
        bench: 'scale',
        replicas: 3,
        audit_ingest_events_s: three.audit_ingest_events_s,
        policy_fetch_rps: three.policy_fetch_rps,
        revocation_p99_ms: three.revocation_p99_ms,
        one_replica: results.find((r) => r.replicas === 1),
        targets: TARGETS,
        met: {
          audit_ingest_events_s: three.audit_ingest_events_s >= TARGETS.audit_ingest_events_s,
          policy_fetch_rps: three.policy_fetch_rps >= TARGETS.policy_fetch_rps,
        },
      })}\n`,
    );
  } finally {
    await idp.stop();
  }
}
