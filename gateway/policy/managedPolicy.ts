/**
 * Managed mode: builds the gateway's policy source from the command line (policy server,
 * pinned keys) and the user's token source and turns the verified policy's catalog into the server list
 * the upstream pool runs.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { decodeJwt, type JSONWebKeySet } from 'jose';
import type { EffectivePolicy } from '../../common/policy/effectivePolicy';
import { isRelayed, type CatalogServerEntry } from '../../common/policy/policyDocument';
import type { PolicyServerArgs } from '../cli/gatewayArgs';
import type { ServerConfig } from '../config/gatewayConfig';
import { describeError, type Logger } from '../../common/log/logger';
import { PolicySource } from './policySource';
import type { RelayAccess } from './relayTokens';

export async function createPolicySource(
  args: PolicyServerArgs,
  token: (options?: { refused?: boolean }) => Promise<string>,
  runtimeDir: string,
  log: Logger,
): Promise<PolicySource> {
  const keys = readKeys(args.keysPath);
  const initialToken = await token();
  const sub = args.sub ?? subjectOfToken(initialToken);
  const sessionId = claimOfToken(initialToken, 'sid');
  // One cache file per user and server, so a shared machine never mixes bundles.
  const cacheKey = createHash('sha256').update(`${args.url.href}\n${sub}`).digest('hex').slice(0, 16);
  return new PolicySource({
    serverUrl: args.url,
    issuer: args.issuer,
    keys,
    expectedSub: sub,
    ...(sessionId ? { sessionId } : {}),
    token,
    cachePath: join(runtimeDir, `policy-${cacheKey}.jws`),
    log,
  });
}

/** The verified catalog as upstream configs; relative commands resolve against `workDir`. */
export function catalogServers(policy: EffectivePolicy, workDir: string, relay: RelayAccess): ServerConfig[] {
  return policy.servers.map((entry) => catalogServer(entry, workDir, relay));
}

export function catalogServer(entry: CatalogServerEntry, workDir: string, relay?: RelayAccess): ServerConfig {
  {
    // A shared service key never reaches this machine: such a server is reached through the
    // policy server's relay, which adds the key there (policy-server/relay/).
    const viaRelay = isRelayed(entry.credential) && relay !== undefined;
    const relayUrl = viaRelay ? new URL(`relay/${entry.id}/mcp`, withSlash(relay.policyServerUrl)).href : undefined;
    const transport: ServerConfig['transport'] = relayUrl ? { type: 'streamable-http', url: relayUrl } : structuredClone(entry.transport);
    if (transport.type === 'stdio') {
      if (!isAbsolute(transport.command) && (transport.command.includes('/') || transport.command.startsWith('.'))) {
        transport.command = resolve(workDir, transport.command);
      }
      transport.cwd = transport.cwd ? resolve(workDir, transport.cwd) : workDir;
    }
    return {
      id: entry.id,
      title: entry.title,
      ...(entry.description !== undefined ? { description: entry.description } : {}),
      enabled: true,
      transport,
      redaction: entry.redaction,
      trusted: entry.trusted,
      tools: Object.fromEntries(
        Object.entries(entry.tools).map(([name, settings]) => [name, settings.risk ? { risk: settings.risk } : {}]),
      ),
      // user-oauth servers get the user's own sign-in (gateway/upstreamAuth/); a relayed server's key is the relay's business
      credential: entry.credential.mode === 'user-oauth' ? structuredClone(entry.credential) : { mode: 'none' },
      ...(relayUrl ? { authorization: relay!.authorizationFor(entry.id, relayUrl), viaRelay: true as const } : {}),
    };
  }
}

/** A base URL that keeps its path when a relative path is resolved against it. */
function withSlash(url: URL): URL {
  return url.pathname.endsWith('/') ? url : new URL(`${url.href}/`);
}

function readKeys(path: string): JSONWebKeySet {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`cannot read pinned policy keys ${path}: ${describeError(error)}`, { cause: error });
  }
  const keys = (parsed as { keys?: unknown }).keys;
  if (!Array.isArray(keys) || keys.length === 0) throw new Error(`${path} is not a JWKS with at least one key`);
  if (keys.some((key) => typeof key !== 'object' || key === null || 'd' in key)) {
    throw new Error(`${path} must hold public keys only`);
  }
  return { keys } as JSONWebKeySet;
}

/** The user's IdP token, read from its file on every use so a refreshed token is picked up. */
export function readUserToken(path: string): string {
  let token: string;
  try {
    token = readFileSync(path, 'utf8').trim();
  } catch (error) {
    throw new Error(`cannot read the IdP token file ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, { cause: error });
  }
  if (!token) throw new Error(`the IdP token file ${path} is empty`);
  return token;
}

function claimOfToken(token: string, claim: string): string | undefined {
  try {
    const value = decodeJwt(token)[claim];
    return typeof value === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The subject the token names; the policy server verifies the token, this only sets the expectation. */
function subjectOfToken(token: string): string {
  try {
    const sub = decodeJwt(token).sub;
    if (sub) return sub;
  } catch {
    // not a JWT (e.g. a GitHub token): the launcher must say who the user is
  }
  throw new Error('cannot tell the signed-in user from the token; pass --policy-sub');
}
