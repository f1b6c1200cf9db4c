/**
 * Command-line arguments of `gatehouse gateway`. Nothing secret is ever accepted here:
 * argv is visible to every local user, so the launch secret travels by file or stdin.
 */
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ListenAddress } from '../http/originGuard';
import { parseLogLevel, type LogLevel } from '../log/logger';

export interface GatewayArgs {
  configPath: string;
  listen: ListenAddress;
  runtimeDir: string;
  secretSource: { type: 'file'; path: string } | { type: 'stdin' };
  logLevel: LogLevel;
}

export const GATEWAY_USAGE = `Usage: gatehouse gateway --config <file.yaml> [options]

Options:
  --config <file>              gateway configuration (YAML)
  --listen unix[:<path>]       serve on a unix socket, mode 0600 (default, in the runtime dir)
  --listen 127.0.0.1:<port>    serve on loopback TCP (port 0 picks a free one)
  --runtime-dir <dir>          private folder (0700) for the socket and secret file
  --launch-secret-file <path>  write the generated launch secret to this file (mode 0600)
                               (default: <runtime-dir>/launch-secret)
  --launch-secret-stdin        read the launch secret from the first line of stdin instead
  --log-level <level>          debug | info | warn | error (default info); logs go to stderr
`;

export class UsageError extends Error {}

export function parseGatewayArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): GatewayArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        config: { type: 'string' },
        listen: { type: 'string' },
        'runtime-dir': { type: 'string' },
        'launch-secret-file': { type: 'string' },
        'launch-secret-stdin': { type: 'boolean' },
        'log-level': { type: 'string' },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (!values.config) throw new UsageError('--config <file.yaml> is required');
  if (values['launch-secret-file'] && values['launch-secret-stdin']) {
    throw new UsageError('choose one of --launch-secret-file and --launch-secret-stdin');
  }
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'user';
  const runtimeDir = resolve(values['runtime-dir'] ?? (env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'gatehouse') : join(tmpdir(), `gatehouse-${uid}`)));
  return {
    configPath: resolve(values.config),
    listen: parseListen(values.listen ?? 'unix', runtimeDir),
    runtimeDir,
    secretSource: values['launch-secret-stdin']
      ? { type: 'stdin' }
      : { type: 'file', path: resolve(values['launch-secret-file'] ?? join(runtimeDir, 'launch-secret')) },
    logLevel: parseLogLevel(values['log-level']),
  };
}

function parseListen(value: string, runtimeDir: string): ListenAddress {
  if (value === 'unix') return { type: 'unix', path: join(runtimeDir, `gateway-${process.pid}.sock`) };
  if (value.startsWith('unix:')) {
    const path = value.slice('unix:'.length);
    if (!path) throw new UsageError('--listen unix:<path> needs a path');
    return { type: 'unix', path: isAbsolute(path) ? path : resolve(path) };
  }
  const match = /^(127\.0\.0\.1|\[::1\]):(\d{1,5})$/.exec(value);
  if (!match || Number(match[2]) > 65535) {
    throw new UsageError(`--listen must be unix[:<path>], 127.0.0.1:<port> or [::1]:<port> (loopback only), got "${value}"`);
  }
  return { type: 'tcp', host: match[1] === '[::1]' ? '::1' : match[1]!, port: Number(match[2]) };
}
