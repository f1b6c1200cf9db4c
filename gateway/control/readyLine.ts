/**
 * The gateway's ready line (common/gatewayReady.ts) from what is running now: where it
 * listens, how the launch secret was delivered, the policy's version, and each server's
 * state, catalog title and credential mode (never a credential). Built once at start and
 * again after each policy update, which the extension hears as a new `gatehouse/ready`.
 */
import type { GatewayReadyLine, GatewayReadyServer } from '../../common/gatewayReady';
import type { GatewayArgs } from '../cli/gatewayArgs';
import type { ServerConfig } from '../config/gatewayConfig';
import type { ListenAddress } from '../http/originGuard';
import type { PolicySource } from '../policy/policySource';
import type { UpstreamStatus } from '../upstream/upstreamPool';
import { GATEHOUSE_VERSION } from '../../common/version';

export interface ReadyFacts {
  args: GatewayArgs;
  address: ListenAddress;
  policy: PolicySource | undefined;
  /** The local config's servers (unmanaged mode), for their titles. */
  localServers: readonly ServerConfig[];
  startupMs: number;
}

export function readyLine(facts: ReadyFacts, statuses: readonly UpstreamStatus[]): GatewayReadyLine {
  const { args, address, policy } = facts;
  return {
    event: 'ready',
    version: GATEHOUSE_VERSION,
    pid: process.pid,
    listen: address.type === 'unix' ? { type: 'unix', socketPath: address.path } : { type: 'tcp', host: address.host, port: address.port },
    launchSecret: args.secretSource.type === 'stdin' ? { delivery: 'stdin' } : { delivery: 'file', path: args.secretSource.path },
    policy: policy
      ? {
          mode: 'managed',
          ...(policy.state.version !== undefined ? { version: policy.state.version } : {}),
          ...(policy.state.denial ? { denial: policy.state.denial } : {}),
        }
      : { mode: 'unmanaged' },
    servers: statuses.map((status) => readyServer(facts, status)),
    ...(policy?.state.decider?.policy.blocked?.length ? { blocked: policy.state.decider.policy.blocked } : {}),
    startupMs: facts.startupMs,
  };
}

function readyServer({ address, policy, localServers }: ReadyFacts, status: UpstreamStatus): GatewayReadyServer {
  const path = `/mcp/${status.id}`;
  const entry = policy?.state.decider?.policy.servers.find((server) => server.id === status.id);
  const title = entry?.title ?? localServers.find((server) => server.id === status.id)?.title;
  const host = address.type === 'tcp' ? (address.host.includes(':') ? `[${address.host}]` : address.host) : undefined;
  return {
    id: status.id,
    state: status.state,
    path,
    ...(address.type === 'tcp' ? { url: `http://${host}:${address.port}${path}` } : {}),
    ...(status.error ? { error: status.error } : {}),
    ...(status.startupMs !== undefined ? { startupMs: status.startupMs } : {}),
    ...(status.protocolVersion !== undefined ? { protocolVersion: status.protocolVersion } : {}),
    ...(title ? { title } : {}),
    credential:
      entry?.credential.mode === 'user-oauth'
        ? { mode: 'user-oauth', ...(entry.credential.scopes ? { scopes: entry.credential.scopes } : {}) }
        : { mode: entry?.credential.mode ?? 'none' },
  };
}
