/**
 * Relay benchmark group (`npm run bench -- relay`): what a call to a relayed (shared-key)
 * server costs through a managed gateway and the policy server's relay, with the person's
 * IdP token as a Bearer token (a policy server without `/oauth`) and with a relay token
 * bound to the gateway's key (one with `/oauth`: a DPoP proof signed by the gateway and
 * checked by the relay on every request, its id claimed once). Both policy servers keep
 * their state in files and memory; the upstream is the keyed test server on loopback.
 * For scale, the same calls straight to the upstream and straight to the relay (fetch, one
 * session). Sequential calls (one client, one at a time), after a warm-up: p50 and p95.
 * No target: the figure is what key-bound tokens add. Prints a table and one JSON line
 * starting `{"bench":"relay"`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAuthorizingPolicyServer, VAULT_POLICY } from '../support/authorizingPolicyServer';
import { startGateway, textOf } from '../support/gatewayHarness';
import { managedArgs, secretStoreWith, startPolicyServer, tokenFile, type RunningPolicyServer } from '../support/policyHarness';
import { markdownTable, percentile, round } from './benchStats';

const SERVICE_KEY = `sk-live-${'be4c4be4'.repeat(4)}`;
const WARMUP = 100;
const CALLS = 1_000;

interface Figures {
  path: string;
  p50_ms: number;
  p95_ms: number;
  calls_s: number;
}

/** Sequential echo calls straight to an MCP endpoint (no gateway), on one session, with `authorization`. */
async function measureDirect(path: string, url: string, authorization: string): Promise<Figures> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    authorization,
  };
  const post = async (message: Record<string, unknown>) => {
    const answer = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', ...message }) });
    const text = await answer.text();
    if (answer.status >= 300) throw new Error(`${path}: HTTP ${answer.status} ${text}`);
    return { answer, text };
  };
  const { answer } = await post({
    id: 0,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } },
  });
  const sessionId = answer.headers.get('mcp-session-id');
  if (sessionId) Object.assign(headers, { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' });
  await post({ method: 'notifications/initialized' });
  const call = async (i: number) => {
    const { text } = await post({ id: i + 1, method: 'tools/call', params: { name: 'echo', arguments: { text: `call ${i}` } } });
    if (!text.includes(`call ${i}`)) throw new Error(`${path}: unexpected answer ${text}`);
  };
  return timeCalls(path, call);
}

/** WARMUP calls, then CALLS timed one after the other. */
async function timeCalls(path: string, call: (i: number) => Promise<void>): Promise<Figures> {
  for (let i = 0; i < WARMUP; i++) await call(i);
  const times: number[] = [];
  const started = performance.now();
  for (let i = 0; i < CALLS; i++) {
    const t = performance.now();
    await call(i);
    times.push(performance.now() - t);
  }
  const seconds = (performance.now() - started) / 1000;
  times.sort((a, b) => a - b);
  return { path, p50_ms: round(percentile(times, 0.5), 2), p95_ms: round(percentile(times, 0.95), 2), calls_s: round(CALLS / seconds, 0) };
}

/** Sequential echo calls through a gateway managed by `server`, for `token`'s person. */
async function measure(path: string, server: RunningPolicyServer, token: string, scratch: string, keyBound: boolean): Promise<Figures> {
  const gateway = await startGateway(null, { extraArgs: managedArgs(server, tokenFile(scratch, path.replace(/\W+/g, '-'), token)) });
  try {
    const client = await gateway.connect('vault');
    const call = async (i: number) => {
      const answer = await client.callTool({ name: 'echo', arguments: { text: `call ${i}` } });
      if (textOf(answer) !== `call ${i}`) throw new Error(`${path}: unexpected answer ${JSON.stringify(answer)}`);
    };
    const figures = await timeCalls(path, call);
    await client.close();
    // The row measures what it says: the gateway logs which kind of relay token it uses.
    if (/relay tokens are bound to a key/.test(gateway.stderr()) !== keyBound)
      throw new Error(`${path}: the gateway did not use the relay tokens this row is about`);
    return figures;
  } finally {
    await gateway.stop();
  }
}

export async function runRelayBench(): Promise<void> {
  const keyBound = await startAuthorizingPolicyServer(SERVICE_KEY, { accessTokenTtlSeconds: 3_600 });
  const scratch = mkdtempSync(join(tmpdir(), 'gatehouse-relay-bench-'));
  let bearer: RunningPolicyServer | undefined;
  try {
    const keyFile = await secretStoreWith(scratch, 'vault-key', SERVICE_KEY);
    bearer = await startPolicyServer(keyBound.idp, {
      dataDir: scratch,
      policyYaml: VAULT_POLICY(keyBound.upstream.url),
      extraArgs: ['--secrets-key-file', keyFile],
    });
    const token = await keyBound.idp.tokenFor('alice');
    const results = [
      await measureDirect('upstream directly, service key', keyBound.upstream.url, `Bearer ${SERVICE_KEY}`),
      await measureDirect('relay directly, IdP token (Bearer)', `${bearer.url}/relay/vault/mcp`, `Bearer ${token}`),
      await measure('gateway -> relay, IdP token (Bearer)', bearer, token, scratch, false),
      await measure('gateway -> relay, key-bound relay token (DPoP)', keyBound.server, token, scratch, true),
    ];
    process.stdout.write(`\n### Relay (${CALLS} sequential tools/call after ${WARMUP} warm-up, shared-key upstream on loopback)\n\n`);
    process.stdout.write(
      markdownTable(
        ['path', 'p50 ms', 'p95 ms', 'calls/s'],
        results.map((r) => [r.path, r.p50_ms, r.p95_ms, r.calls_s]),
      ) + '\n\n',
    );
    const [, , plain, bound] = results as [Figures, Figures, Figures, Figures];
    process.stdout.write(
      `${JSON.stringify({ bench: 'relay', bearer: plain, dpop: bound, dpop_added_p50_ms: round(bound.p50_ms - plain.p50_ms, 2) })}\n`,
    );
  } finally {
    await bearer?.stop();
    await keyBound.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}
