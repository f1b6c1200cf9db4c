/**
 * Composition root of the gateway process (`gatehouse gateway`). Everything the gateway
 * runs on is built here and passed down: settings -> policy (managed mode) or local
 * catalog (unmanaged) -> upstream pool -> HTTP front. Gives the ready line
 * (common/gatewayReady.ts) once every upstream is ready or failed: on stdout, or with
 * --control stdio over the control channel.
 */
import { dirname, join } from 'node:path';
import { GATEWAY_USAGE, parseGatewayArgs, type GatewayArgs } from './cli/gatewayArgs';
import { parseOrExplain, USAGE_EXIT_CODE } from '../common/cli/commandLine';
import { ConfigError, GatewaySettingsSchema, loadGatewayConfig, type GatewayConfig } from './config/gatewayConfig';
import { ensureDirectory, ensurePrivateDirectory, writeSecretFile } from '../common/fs/privateFiles';
import { GatewayHttpServer } from './http/gatewayHttpServer';
import { LaunchSecret, readSecretLine } from './http/launchSecret';
import { createLogger, describeError, type Logger } from '../common/log/logger';
import { OPEN_GATE, PolicyGate, type CallGate } from './policy/callGate';
import { catalogServers, createPolicySource, readUserToken } from './policy/managedPolicy';
import { RelayTokens, type RelayAccess } from './policy/relayTokens';
import { CallConfirmations } from './confirmation/callConfirmations';
import { ReviewQueueConfirmer } from './confirmation/reviewQueueConfirmer';
import { ControlChannel } from './control/controlChannel';
import { readyLine, type ReadyFacts } from './control/readyLine';
import type { ToolSummary } from '../common/control/controlProtocol';
import type { PolicySource } from './policy/policySource';
import { UpstreamPool } from './upstream/upstreamPool';
import { AuditSpool } from './audit/auditSpool';
import { CallAuditor } from './audit/callAuditor';
import { IntentJournal } from './audit/intentJournal';
import { createAuditShipper } from './audit/auditShipper';
import { SecretRedactor } from './guardrails/redaction/secretRedactor';
import { ToolPinRegistry } from './guardrails/pinning/toolPinRegistry';
import { ToolArgumentValidator } from './guardrails/arguments/toolArgumentValidator';
import { ToolGuard } from './guardrails/toolGuard';
import type { Pin } from '../common/policy/toolPins';
import type { EffectivePolicy } from '../common/policy/effectivePolicy';
import type { ServerConfig } from './config/gatewayConfig';
import { HeadlessOpener, type AuthorizationOpener } from './upstreamAuth/authorizationOpener';
import { MemoryCredentialStore } from './upstreamAuth/credentialStore';
import { UserOAuthServers } from './upstreamAuth/userOAuthServers';

export async function runGateway(argv: string[]): Promise<number> {
  const startedAt = performance.now();
  if (argv.includes('--help')) {
    process.stdout.write(GATEWAY_USAGE);
    return 0;
  }
  const args = parseOrExplain('gateway', GATEWAY_USAGE, () => parseGatewayArgs(argv));
  if (!args) return USAGE_EXIT_CODE;
  const log = createLogger(undefined, args.logLevel, { component: 'gateway' });

  let config: GatewayConfig;
  try {
    // Managed gateways may run without a config file: the policy brings the catalog.
    config = args.configPath ? loadGatewayConfig(args.configPath) : { servers: [], gateway: GatewaySettingsSchema.parse({}) };
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      return 2;
    }
    throw error;
  }

  ensurePrivateDirectory(args.runtimeDir, 'the gateway socket and launch secret');
  ensurePrivateDirectory(args.stateDir, 'audit keys, tool pins and the policy cache');
  if (args.listen.type === 'unix') ensureDirectory(dirname(args.listen.path));
  let policy: PolicySource | undefined;
  // With --control stdio, stdin/stdout carry the extension's JSON-RPC and nothing else.
  const control =
    args.control === 'stdio'
      ? new ControlChannel(process.stdin, process.stdout, () => policy?.subject ?? 'local', log.child({ component: 'control' }))
      : undefined;
  const secret = await launchSecret(args, control);

  let gate: CallGate = OPEN_GATE;
  let servers = config.servers;
  // user-oauth servers: the user's own sign-in at each server's authorization server
  const userOAuth = new UserOAuthServers({
    user: () => policy?.subject ?? 'local',
    store: control ? control.credentialStore() : new MemoryCredentialStore(),
    opener: upstreamOpener(args, control),
    log: log.child({ component: 'upstream-oauth' }),
  });
  // The user's IdP token, wherever it comes from, read fresh for each use (policy, audit shipping, reviews, relay).
  const userToken = args.policy ? userTokenSource(args.policy, control) : undefined;
  // Relayed servers are reached through the policy server's relay, with a key-bound relay token for the same person.
  const relay: RelayAccess | undefined =
    args.policy && userToken ? new RelayTokens(args.policy.url, userToken, log.child({ component: 'relay-tokens' })) : undefined;
  if (args.policy && userToken) {
    try {
      policy = await createPolicySource(args.policy, userToken, args.runtimeDir, log.child({ component: 'policy' }));
    } catch (error) {
      process.stderr.write(`gatehouse gateway: ${describeError(error)}\n`);
      return 3;
    }
    await policy.start();
    gate = new PolicyGate(policy);
    const decider = policy.state.decider;
    servers = decider && relay ? catalogServers(decider.policy, args.policy.workDir, relay) : [];
  } else {
    if (args.testHeadlessOAuth) log.warn('TEST MODE: user-oauth sign-ins follow redirects without a browser (--test-headless-oauth)');
    log.warn('unmanaged mode: no policy server, every server in the local config may be used');
  }

  // Audit lives with lasting state: it must outlive reboots until it has been shipped.
  const spoolDir = join(args.stateDir, 'audit');
  const spool = await AuditSpool.open({ dir: spoolDir, logger: log.child({ component: 'audit' }) });
  // Records calls a gateway that died had answered without their outcome, before anything ships.
  const intents = await IntentJournal.open(spoolDir, spool, log.child({ component: 'audit' }));
  // --- audit shipping (managed mode): spool -> policy server, woken by each append ---
  const shipper =
    policy && args.policy && userToken
      ? createAuditShipper(args.policy, userToken, spool, spoolDir, policy.subject, log.child({ component: 'audit-shipper' }))
      : undefined;
  shipper?.start();
  // --- end audit shipping ---
  const auditor = new CallAuditor(
    spool,
    () => policy?.subject ?? 'local',
    log.child({ component: 'audit' }),
    (event) => {
      shipper?.notify();
      control?.auditAppended(event);
    },
    intents,
  );
  control?.serveAuditHistory((limit) => spool.recentEvents(limit));
  control?.serveSignIns({ status: () => userOAuth.status(), signOut: (serverId) => userOAuth.forget(serverId) });
  const tools = new ToolGuard(
    new ToolPinRegistry(args.stateDir, (serverId, tool) => orgPin(policy, serverId, tool), log.child({ component: 'pins' })),
    new ToolArgumentValidator(log.child({ component: 'arguments' })),
    log.child({ component: 'tools' }),
  );
  const redactors = { secrets: new SecretRedactor(), withPii: new SecretRedactor({ pii: true }) };
  // Confirm rules: a named reviewer group goes to the policy server's queue; the developer's own prompt needs the extension.
  const confirmations = new CallConfirmations(
    args.policy && userToken
      ? new ReviewQueueConfirmer({ serverUrl: args.policy.url, token: userToken, log: log.child({ component: 'reviews' }) })
      : undefined,
    () => (control?.isOpen ? control : undefined),
    log.child({ component: 'confirmations' }),
  );
  try {
    servers = userOAuth.attach(servers);
  } catch (error) {
    process.stderr.write(`gatehouse gateway: ${describeError(error)}\n`);
    return 2;
  }
  const pool = new UpstreamPool(
    servers,
    config.gateway.upstreamInitializeTimeoutMs,
    log.child({ component: 'upstream' }),
    config.gateway.upstreamStart,
  );
  const http = new GatewayHttpServer({
    listen: args.listen,
    maxBodyBytes: config.gateway.maxBodyBytes,
    secret,
    sessions: {
      pool,
      gate,
      tools,
      auditor,
      confirmations,
      redactorFor: (server) => (server.redaction.pii ? redactors.withPii : redactors.secrets),
      ...(control ? { toolsListed: (serverId: string, listed: ToolSummary[]) => control.toolsListed(serverId, listed) } : {}),
    },
    log: log.child({ component: 'http' }),
  });
  // After a policy update, the extension hears the new catalog as a new ready notification.
  let announce: () => void = () => undefined;
  if (policy && args.policy && relay) {
    const catalog = (next: EffectivePolicy) => userOAuth.attach(catalogServers(next, args.policy!.workDir, relay));
    // Credentials an admin revoked are deleted as soon as a bundle lists them (pushed, or at the next fetch).
    const applyRevocations = (next: EffectivePolicy | undefined) =>
      void userOAuth
        .applyRevocations(next?.credentialRevocations ?? [])
        .then((servers) => {
          if (servers.length) log.warn('stored upstream credentials revoked by an admin were deleted', { servers });
        })
        .catch((error: unknown) => log.warn('deleting revoked upstream credentials failed', { error: describeError(error) }));
    applyRevocations(policy.state.decider?.policy);
    policy.onChange((state) => applyRevocations(state.decider?.policy));
    followPolicy(
      policy,
      catalog,
      pool,
      http,
      gate,
      log,
      () => announce(),
      (message) => {
        void userOAuth
          .forget()
          .catch((error: unknown) => log.warn('forgetting upstream credentials failed', { error: describeError(error) }));
        control?.revoked(message);
      },
    );
  }

  let shuttingDown = false;
  const shutdown = async (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info('shutting down', { signal });
    policy?.close();
    await http.close().catch((error: unknown) => log.warn('http close failed', { error: describeError(error) }));
    await pool.closeAll();
    await shipper?.stop(); // audit shipping: before the spool closes; unshipped events go on the next start
    await intents.close();
    await spool.close().catch((error: unknown) => log.warn('audit close failed', { error: describeError(error) }));
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  // The launcher (the extension) holding our stdin pipe closing it means it is gone.
  if (control) control.onClose(() => void shutdown('control channel closed'));
  else if (args.secretSource.type === 'stdin') process.stdin.on('end', () => void shutdown('stdin closed'));

  const address = await http.listen();
  const statuses = await pool.startAll();

  const facts: ReadyFacts = { args, address, policy, localServers: config.servers, startupMs: Math.round(performance.now() - startedAt) };
  const ready = readyLine(facts, statuses);
  if (control) {
    control.ready(ready);
    announce = () => control.ready(readyLine(facts, pool.statuses()));
    // A lazy server starting, ready or failed is news for the sidebar.
    pool.onStatusChange = () => announce();
  } else {
    process.stdout.write(JSON.stringify(ready) + '\n');
  }
  return new Promise<number>(() => {
    /* runs until a signal ends the process */
  });
}

/** The user's IdP token: re-read from its 0600 file, or asked of the extension's sign-in, on every use. */
function userTokenSource(
  policyArgs: NonNullable<GatewayArgs['policy']>,
  control: ControlChannel | undefined,
): (options?: { refused?: boolean }) => Promise<string> {
  const source = policyArgs.token;
  if (source.type === 'file') return async () => readUserToken(source.path); // re-read: whoever writes the file renews it
  if (!control) throw new Error('--policy-token control needs the control channel');
  return (options) => control.userToken(options);
}

async function launchSecret(args: GatewayArgs, control: ControlChannel | undefined): Promise<LaunchSecret> {
  if (args.secretSource.type === 'stdin') return control ? control.launchSecret() : new LaunchSecret(await readSecretLine(process.stdin));
  ensureDirectory(dirname(args.secretSource.path));
  const generated = LaunchSecret.generate();
  writeSecretFile(args.secretSource.path, generated.value);
  return generated.secret;
}

/** Who takes the user to an upstream's sign-in page: the extension, or (tests only) nobody. */
function upstreamOpener(args: GatewayArgs, control: ControlChannel | undefined): AuthorizationOpener {
  if (args.testHeadlessOAuth) return new HeadlessOpener();
  if (control) return { open: (request) => control.authorize(request) };
  return {
    open: async (request) => {
      throw new Error(
        `${request.serverTitle} needs you to sign in, which needs the Gatehouse extension (this gateway has no control channel)`,
      );
    },
  };
}

/** The pin the org approved for a tool, from the policy in force (managed mode only). */
function orgPin(policy: PolicySource | undefined, serverId: string, tool: string): Pin | undefined {
  const entry = policy?.state.decider?.policy.servers.find((server) => server.id === serverId);
  return entry?.tools[tool]?.pin as Pin | undefined;
}

/** New policy versions change the catalog and the lists open sessions see; revocation ends them. */
function followPolicy(
  policy: PolicySource,
  catalog: (policy: EffectivePolicy) => ServerConfig[],
  pool: UpstreamPool,
  http: GatewayHttpServer,
  gate: CallGate,
  log: Logger,
  applied: () => void,
  revoked: (message: string) => void,
): void {
  let applying = Promise.resolve();
  let seen = { version: policy.state.version, denial: policy.state.denial };
  policy.onChange((state) => {
    // A renewed bundle of the same version changes nothing a client can see.
    if (state.version === seen.version && state.denial === seen.denial) return;
    seen = { version: state.version, denial: state.denial };
    applying = applying
      .then(async () => {
        if (state.decider) await pool.reconcile(catalog(state.decider.policy));
        http.policyChanged((serverId) => gate.serverRefusal(serverId));
        applied();
      })
      .catch((error: unknown) => log.error('applying the new policy failed', { error: describeError(error) }));
  });
  policy.onRevoked(() => {
    log.warn('access revoked: closing every session');
    const message = 'Your access was revoked by an admin; Gatehouse ended this session. Ask your admin to restore it.';
    http.closeAllSessions(message);
    revoked(message);
  });
}
