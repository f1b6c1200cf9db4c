/**
 * Composition root of the policy server (`gatehouse policy-server`). Everything it runs on
 * is built here and passed down: data dir -> store, signing keys -> policy service, event
 * hub, revocations, bundles -> authenticator -> HTTP front. Prints one JSON ready line on
 * stdout (PolicyServerReadyLine); logs go to stderr. `rotate-key` rotates the signing key
 * in the data dir and exits; a running server picks the new key up by itself.
 */
import { join } from 'node:path';
import { claimsMatchedOn } from '../common/policy/effectivePolicy';
import { PolicyError } from '../common/policy/policyDocument';
import { FileAuditStore } from './audit/fileAuditStore';
import type { AuditStore } from './audit/auditStore';
import { PostgresAuditStore } from './audit/postgresAuditStore';
import { PostgresEventFanout, type EventFanout } from './events/clusterEvents';
import type { PolicyStore } from './store/policyStore';
import { openStoreDatabase } from './store/postgresDatabase';
import { PostgresPolicyStore } from './store/postgresPolicyStore';
import { CachedPolicyStore } from './store/cachedPolicyStore';
import { MemoryReviewStore, PostgresReviewStore } from './reviews/reviewStore';
import { PostgresRelaySessions } from './relay/relaySessions';
import pg from 'pg';
import { ExportingAuditStore, type AuditSink } from './audit/export/auditExport';
import { OtlpSink } from './audit/export/otlpSink';
import { SyslogSink } from './audit/export/syslogSink';
import { BearerAuthenticator } from './auth/bearerAuthenticator';
import { EffectivePolicyBundles } from './bundles/effectivePolicyBundles';
import { parsePolicyServerArgs, POLICY_SERVER_USAGE, type PolicyServerArgs, type RotateKeyArgs } from './cli/policyServerArgs';
import { parseOrExplain, USAGE_EXIT_CODE } from '../common/cli/commandLine';
import { PolicyEventHub } from './events/policyEventHub';
import { createPolicyServerApp, PolicyServerHttp, type PolicyServerAppDeps } from './http/policyServerApp';
import { AuthorizationServer, SIGN_IN_CALLBACK_PATH } from './authorization/authorizationServer';
import { openAuthorizationKeys } from './authorization/authorizationKeys';
import { FederatedSignIn } from './authorization/federatedSignIn';
import { registerIdentityAssertionGrant } from './authorization/identityAssertionGrant';
import { GATEWAY_CLIENT, registerGatewayTokenExchange } from './authorization/gatewayTokenExchange';
import { MemoryStore } from './authorization/oidcProvider';
import { PostgresAuthorizationState } from './authorization/postgresAuthorizationState';
import { SubjectTokens } from './tokenExchange/subjectTokens';
import { FileUpstreamTokenRows, PostgresUpstreamTokenRows } from './tokenExchange/upstreamTokenRows';
import { UpstreamTokens } from './tokenExchange/upstreamTokens';
import { ID_JAG_JWT_TYPE } from '../common/oauth/identityAssertion';
import { OidcVerifier } from './auth/oidcVerifier';
import { RelayAccess } from './authorization/relayAccess';
import type { PolicyServerReadyLine } from '../common/policy/policyServerApi';
import { rotateSigningKey } from './keys/keyRoutes';
import { SigningKeyRing } from './keys/signingKeyRing';
import { createLogger, describeError, type Logger } from '../common/log/logger';
import { PolicyService } from './policies/policyService';
import { RevocationList } from './revocations/revocationList';
import { ReviewQueue } from './reviews/reviewQueue';
import { SecretStore } from './secrets/secretStore';
import { LowdbPolicyStore } from './store/lowdbPolicyStore';
import { ensurePrivateDirectory, readSecretFile } from '../common/fs/privateFiles';

const MAX_POLICY_BYTES = 1024 * 1024;
const HEARTBEAT_MS = 15_000;

export async function runPolicyServer(argv: string[]): Promise<number> {
  if (argv.includes('--help')) {
    process.stdout.write(POLICY_SERVER_USAGE);
    return 0;
  }
  const args = parseOrExplain('policy-server', POLICY_SERVER_USAGE, () => parsePolicyServerArgs(argv));
  if (!args) return USAGE_EXIT_CODE;
  // Every file this process creates (store, keys, their temp files) is private to it.
  process.umask(0o077);
  ensurePrivateDirectory(args.dataDir, "the policy server's signing keys");
  return args.command === 'rotate-key' ? rotateKey(args) : serve(args);
}

async function rotateKey(args: RotateKeyArgs): Promise<number> {
  const log = createLogger(undefined, 'info', { component: 'policy-server' });
  const database = args.store ? (await openStoreDatabase(args.store, 2)).pool : undefined;
  const store: PolicyStore = database ? new PostgresPolicyStore(database) : await LowdbPolicyStore.open(args.dataDir);
  try {
    const keys = await SigningKeyRing.openOrCreate(args.dataDir);
    const rotation = await rotateSigningKey(keys, new PolicyService(store, log));
    process.stdout.write(JSON.stringify({ event: 'rotated', ...rotation }) + '\n');
    return 0;
  } finally {
    await store.close();
    await database?.end();
  }
}

/** The MCP authorization server (`--sign-in-client-id`): its keys in the data dir, sign-in at the org's IdP. */
async function startAuthorizationServer(
  args: PolicyServerArgs & { signIn: NonNullable<PolicyServerArgs['signIn']>; oidc: NonNullable<PolicyServerArgs['oidc']> },
  publicUrl: string,
  deps: {
    policies: PolicyService;
    authenticator: BearerAuthenticator;
    revocations: RevocationList;
    database: pg.Pool | undefined;
    log: Logger;
  },
): Promise<NonNullable<PolicyServerAppDeps['authorization']>> {
  const { signIn, dataDir } = args;
  const idpIssuer = args.oidc.issuer;
  const { policies, authenticator, revocations, log } = deps;
  const keys = await openAuthorizationKeys(dataDir);
  // Replicas on one database serve one sign-in between them and refuse a once-used id on all of them.
  const state = deps.database ? new PostgresAuthorizationState(deps.database) : new MemoryStore();
  const server = new AuthorizationServer({
    publicUrl,
    keys,
    state,
    signIn: new FederatedSignIn(
      {
        issuer: idpIssuer,
        clientId: signIn.clientId,
        clientSecret: readSecretFile(signIn.clientSecretFile),
        scope: signIn.scope,
        redirectUri: `${publicUrl}${SIGN_IN_CALLBACK_PATH}`,
      },
      state,
    ),
    clients: [GATEWAY_CLIENT],
    log: log.child({ component: 'authorization-server' }),
  });
  // Identity assertions (ID-JAG) are trusted from the org's IdP alone, and only for this authorization server.
  registerIdentityAssertionGrant(
    server,
    new OidcVerifier({ issuer: idpIssuer, audience: server.issuer, typ: ID_JAG_JWT_TYPE }),
    async () => {
      const current = await policies.current();
      return current ? claimsMatchedOn(current.document) : [];
    },
  );
  registerGatewayTokenExchange(server, authenticator, revocations);
  log.info('MCP authorization server on', { issuer: server.issuer });
  return { server, relayAccess: new RelayAccess(server, keys, publicUrl, args.relayRequiresDpop) };
}

async function serve(args: PolicyServerArgs): Promise<number> {
  const log = createLogger(undefined, args.logLevel, { component: 'policy-server' });
  let authenticator: BearerAuthenticator;
  try {
    authenticator = new BearerAuthenticator({
      ...(args.oidc ? { oidc: args.oidc } : {}),
      ...(args.github
        ? {
            github: {
              apiBaseUrl: args.github.apiBaseUrl,
              clientId: args.github.clientId,
              clientSecret: readSecretFile(args.github.clientSecretFile),
            },
          }
        : {}),
    });
  } catch (error) {
    process.stderr.write(`gatehouse policy-server: ${describeError(error)}\n`);
    return 2;
  }

  // --- storage: PostgreSQL shared by replicas, or the data dir's files for one server ---
  let database: pg.Pool | undefined;
  let databaseClient: (() => pg.Client) | undefined;
  if (args.store) {
    try {
      ({ pool: database, newClient: databaseClient } = await openStoreDatabase(args.store));
    } catch (error) {
      process.stderr.write(`gatehouse policy-server: ${describeError(error)}\n`);
      return 2;
    }
  }
  // Other replicas write the database too: reads are cached briefly and dropped on every event (store/cachedPolicyStore.ts).
  const cachedStore = database ? new CachedPolicyStore(new PostgresPolicyStore(database)) : undefined;
  const store: PolicyStore = cachedStore ?? (await LowdbPolicyStore.open(args.dataDir));
  // Signing keys stay in the data dir: replicas share them by sharing that folder's key file.
  const keys = await SigningKeyRing.openOrCreate(args.dataDir);
  const hub = new PolicyEventHub({
    heartbeatMs: HEARTBEAT_MS,
    maxStreamsPerUser: 20,
    maxStreams: 10_000,
    log: log.child({ component: 'events' }),
  });
  // Publishes and revocations reach the gateways on every replica (NOTIFY), or this one's alone.
  const clusterEvents =
    database && databaseClient
      ? await PostgresEventFanout.start(hub, database, databaseClient, log.child({ component: 'cluster-events' }), () =>
          cachedStore?.invalidate(),
        )
      : undefined;
  const events: EventFanout = clusterEvents ?? hub;
  const policies = new PolicyService(store, log.child({ component: 'policies' }), (version) => events.publishedVersion(version));
  if (args.bootstrapPolicy) {
    try {
      const record = await policies.bootstrap(args.bootstrapPolicy);
      if (record) log.info('bootstrap policy published', { version: record.version, file: args.bootstrapPolicy });
      else log.info('bootstrap policy ignored: the store already has a policy', { file: args.bootstrapPolicy });
    } catch (error) {
      process.stderr.write(`gatehouse policy-server: ${describeError(error)}\n`);
      return error instanceof PolicyError ? 2 : 1;
    }
  }
  // Per-user upstream tokens (relay-oauth) are made below, with the secret store; a revocation deletes them.
  let upstreamTokens: UpstreamTokens | undefined;
  const revocations = new RevocationList(store, events, log.child({ component: 'revocations' }), async (sub, serverId) =>
    upstreamTokens?.forget(sub, serverId),
  );
  // Central audit: append-only files in the data dir, or the shared database.
  const stored: AuditStore = database
    ? new PostgresAuditStore(database)
    : await FileAuditStore.open(join(args.dataDir, 'audit'), { log: log.child({ component: 'audit' }) });
  // Audit export for security teams, when asked for: what the store accepts also goes to syslog and/or OTLP.
  const sinks: AuditSink[] = [
    ...(args.auditSyslog ? [new SyslogSink(args.auditSyslog)] : []),
    ...(args.auditOtlp ? [new OtlpSink(args.auditOtlp)] : []),
  ];
  const audit = sinks.length > 0 ? new ExportingAuditStore(stored, sinks, log.child({ component: 'audit-export' })) : stored;
  for (const sink of sinks) log.info('audit export on', { sink: sink.name });
  // Reviews in the database are seen and decided through any replica; a decision wakes long-polls on all of them.
  const reviews = new ReviewQueue(
    policies,
    log.child({ component: 'reviews' }),
    {},
    database ? new PostgresReviewStore(database) : new MemoryReviewStore(),
    (id) => clusterEvents?.reviewDecided(id),
  );
  clusterEvents?.onReviewDecided((id) => reviews.decidedElsewhere(id));
  let secrets: SecretStore | undefined;
  try {
    secrets = args.secretsKeyFile ? SecretStore.open(args.dataDir, args.secretsKeyFile, database ? { database } : {}) : undefined;
  } catch (error) {
    process.stderr.write(`gatehouse policy-server: ${describeError(error)}\n`);
    return 2;
  }

  const http = new PolicyServerHttp();
  let address;
  try {
    address = await http.listen(args.listen.host, args.listen.port);
  } catch (error) {
    process.stderr.write(`gatehouse policy-server: cannot listen on ${args.listen.host}:${args.listen.port}: ${describeError(error)}\n`);
    return 1;
  }
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  const issuer = args.issuerUrl ?? url;
  let tokenExchange: PolicyServerAppDeps['tokenExchange'];
  if (secrets) {
    const subjects = await SubjectTokens.open(args.dataDir, issuer);
    upstreamTokens = new UpstreamTokens({
      rows: database ? new PostgresUpstreamTokenRows(database) : new FileUpstreamTokenRows(args.dataDir),
      secrets,
      subjects,
      revokedAt: async (sub, serverId) => {
        const revoked = (await revocations.credentialsOf(sub)).filter((entry) => entry.serverId === serverId);
        return revoked.length ? Math.max(...revoked.map((entry) => Date.parse(entry.revokedAt))) : undefined;
      },
      log: log.child({ component: 'token-exchange' }),
    });
    tokenExchange = { subjects, upstreamTokens };
  }
  let authorization: PolicyServerAppDeps['authorization'];
  if (args.signIn && args.oidc) {
    try {
      authorization = await startAuthorizationServer({ ...args, signIn: args.signIn, oidc: args.oidc }, issuer, {
        policies,
        authenticator,
        revocations,
        database,
        log,
      });
    } catch (error) {
      process.stderr.write(`gatehouse policy-server: ${describeError(error)}\n`);
      await http.close();
      return 2;
    }
  }
  http.serve(
    createPolicyServerApp({
      authenticator,
      policies,
      revocations,
      events: hub,
      keys,
      audit,
      reviews,
      secrets,
      bundles: new EffectivePolicyBundles(policies, keys, issuer, (sub) => revocations.credentialsOf(sub)),
      maxPolicyBytes: MAX_POLICY_BYTES,
      publicUrl: issuer,
      registryAnonymous: args.registryAnonymous,
      ...(authorization ? { authorization } : {}),
      ...(tokenExchange ? { tokenExchange } : {}),
      ...(database ? { relaySessions: new PostgresRelaySessions(database) } : {}),
      log: log.child({ component: 'http' }),
    }),
  );

  let shuttingDown = false;
  const shutdown = async (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info('shutting down', { signal });
    hub.close();
    reviews.close();
    await http.close().catch((error: unknown) => log.warn('http close failed', { error: describeError(error) }));
    await audit.close().catch((error: unknown) => log.warn('audit store close failed', { error: describeError(error) }));
    await store.close();
    await clusterEvents?.close();
    await database?.end().catch(() => undefined);
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  const current = await policies.current();
  const ready: PolicyServerReadyLine = {
    event: 'ready',
    url,
    issuer,
    kid: keys.current().kid,
    version: current?.version ?? null,
    pid: process.pid,
  };
  log.info('policy server ready', { url, issuer, kid: ready.kid, version: ready.version, dataDir: args.dataDir });
  process.stdout.write(JSON.stringify(ready) + '\n');
  return new Promise<number>(() => {
    /* runs until a signal ends the process */
  });
}
