/**
 * Composition root of the gateway process (`gatehouse gateway`). Everything the gateway
 * runs on is built here and passed down: config -> upstream pool -> HTTP front. Prints the
 * ready line (common/gatewayReady.ts) on stdout once every upstream is ready or failed.
 */
import { dirname } from 'node:path';
import type { GatewayReadyLine } from '../common/gatewayReady';
import { GATEWAY_USAGE, parseGatewayArgs, UsageError } from './cli/gatewayArgs';
import { ConfigError, loadGatewayConfig } from './config/gatewayConfig';
import { ensureDirectory, ensurePrivateDirectory, GatewayHttpServer } from './http/gatewayHttpServer';
import { LaunchSecret, readSecretLine, writeSecretFile } from './http/launchSecret';
import { createLogger, describeError } from './log/logger';
import { UpstreamPool } from './upstream/upstreamPool';
import { GATEWAY_VERSION } from './version';

export async function runGateway(argv: string[]): Promise<number> {
  const startedAt = performance.now();
  let args;
  try {
    args = parseGatewayArgs(argv);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`gatehouse gateway: ${error.message}\n\n${GATEWAY_USAGE}`);
      return 2;
    }
    throw error;
  }
  const log = createLogger(undefined, args.logLevel, { component: 'gateway' });

  let config;
  try {
    config = loadGatewayConfig(args.configPath);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      return 2;
    }
    throw error;
  }

  ensurePrivateDirectory(args.runtimeDir);
  if (args.listen.type === 'unix') ensureDirectory(dirname(args.listen.path));
  let secret: LaunchSecret;
  if (args.secretSource.type === 'stdin') {
    secret = new LaunchSecret(await readSecretLine(process.stdin));
  } else {
    ensureDirectory(dirname(args.secretSource.path));
    const generated = LaunchSecret.generate();
    writeSecretFile(args.secretSource.path, generated.value);
    secret = generated.secret;
  }

  const pool = new UpstreamPool(config.servers, config.gateway.upstreamInitializeTimeoutMs, log.child({ component: 'upstream' }));
  const http = new GatewayHttpServer({
    listen: args.listen,
    maxBodyBytes: config.gateway.maxBodyBytes,
    secret,
    servers: config.servers,
    pool,
    log: log.child({ component: 'http' }),
  });

  let shuttingDown = false;
  const shutdown = async (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info('shutting down', { signal });
    await http.close().catch((error: unknown) => log.warn('http close failed', { error: describeError(error) }));
    await pool.closeAll();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  // The launcher (the extension) holding our stdin pipe closing it means it is gone.
  if (args.secretSource.type === 'stdin') process.stdin.on('end', () => void shutdown('stdin closed'));

  const address = await http.listen();
  const statuses = await pool.startAll();

  const ready: GatewayReadyLine = {
    event: 'ready',
    version: GATEWAY_VERSION,
    pid: process.pid,
    listen: address.type === 'unix' ? { type: 'unix', socketPath: address.path } : { type: 'tcp', host: address.host, port: address.port },
    launchSecret: args.secretSource.type === 'stdin' ? { delivery: 'stdin' } : { delivery: 'file', path: args.secretSource.path },
    servers: config.servers.filter((s) => s.enabled).map((server) => {
      const status = statuses.find((s) => s.id === server.id)!;
      const path = `/mcp/${server.id}`;
      const host = address.type === 'tcp' ? (address.host.includes(':') ? `[${address.host}]` : address.host) : undefined;
      return {
        id: server.id,
        state: status.state,
        path,
        ...(address.type === 'tcp' ? { url: `http://${host}:${address.port}${path}` } : {}),
        ...(status.error ? { error: status.error } : {}),
        ...(status.startupMs !== undefined ? { startupMs: status.startupMs } : {}),
      };
    }),
    startupMs: Math.round(performance.now() - startedAt),
  };
  process.stdout.write(JSON.stringify(ready) + '\n');
  return new Promise<number>(() => { /* runs until a signal ends the process */ });
}
