/**
 * gateway/cli/ is the gateway's command line: `gatehouse gateway` (this file), and the
 * `gatehouse pins` and `gatehouse audit verify` commands, which run without a gateway.
 *
 * Command-line arguments of `gatehouse gateway`. Nothing secret is ever accepted here:
 * argv is visible to every local user, so the launch secret is either made by the gateway
 * and written to a 0600 file, or made by the launcher and handed over on stdin.
 */
import { homedir, tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { parseCommandLine, UsageError } from '../../common/cli/commandLine';
import type { ListenAddress } from '../http/originGuard';
import { parseLogLevel, type LogLevel } from '../../common/log/logger';
import { isSecureOrLoopback } from '../../common/net/loopback';

export interface PolicyServerArgs {
  url: URL;
  issuer: string;
  keysPath: string;
  /** Where the user's IdP token comes from: a 0600 file (re-read on every use) or the extension's sign-in. */
  token: { type: 'file'; path: string } | { type: 'control' };
  sub?: string;
  workDir: string;
}

export interface GatewayArgs {
  /** Local catalog and settings; optional when a policy server provides the catalog. */
  configPath?: string;
  policy?: PolicyServerArgs;
  listen: ListenAddress;
  runtimeDir: string;
  /** Lasting state (first-use tool pins): survives reboots, unlike the runtime dir. */
  stateDir: string;
  secretSource: { type: 'file'; path: string } | { type: 'stdin' };
  /** `stdio`: speak the control channel (common/control/controlProtocol.ts) on stdin/stdout. */
  control?: 'stdio';
  logLevel: LogLevel;
  /** Tests only: upstream OAuth follows the authorization server's redirects itself (no person, no browser). */
  testHeadlessOAuth?: true;
}

export const GATEWAY_USAGE = `Usage: gatehouse gateway (--config <file.yaml> | --policy-server <url> ...) [options]

Options:
  --config <file>              gateway configuration (YAML): settings, and the catalog when
                               no policy server manages this gateway (unmanaged mode)
  --policy-server <url>        the org policy server: the catalog and every decision come
                               from this user's signed policy bundle (managed mode)
  --policy-keys <jwks.json>    pinned public keys the bundles must be signed with
  --policy-token-file <path>   file holding the user's IdP token (re-read on every request)
  --policy-token control       ask the launching extension for it (gatehouse/token; needs --control stdio)
  --policy-issuer <url>        the bundles' issuer (default: the policy server URL's origin)
  --policy-sub <sub>           the signed-in user (default: the token's own sub claim)
  --workdir <dir>              where relative commands in the policy's catalog resolve (default: cwd)
  --listen unix[:<path>]       serve on a unix socket, mode 0600 (default, in the runtime dir)
  --listen 127.0.0.1:<port>    serve on loopback TCP (port 0 picks a free one)
  --runtime-dir <dir>          private folder (0700) for the socket and secret file
  --state-dir <dir>            private folder (0700) for lasting state such as tool pins
                               (default: $XDG_STATE_HOME/gatehouse or ~/.local/state/gatehouse)
  --launch-secret-file <path>  write the generated launch secret to this file (mode 0600)
                               (default: <runtime-dir>/launch-secret)
  --launch-secret-stdin        the launcher makes the launch secret and hands it over: the
                               first line of stdin, or with --control stdio its
                               gatehouse/start request; no secret file is written, and the
                               gateway stops when stdin closes
  --control stdio              talk to the launching extension over JSON-RPC on stdin/stdout
                               (confirmations, ready); stdout then carries nothing else
  --log-level <level>          debug | info | warn | error (default info); logs go to stderr
  --test-headless-oauth        TESTS ONLY: user-oauth servers are signed in to without a
                               browser, by following the authorization server's redirects
                               (needs --config, refused with --policy-server)
`;

export function parseGatewayArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): GatewayArgs {
  const { values } = parseCommandLine(argv, {
    strings: [
      'config',
      'policy-server',
      'policy-keys',
      'policy-token-file',
      'policy-token',
      'policy-issuer',
      'policy-sub',
      'workdir',
      'listen',
      'runtime-dir',
      'state-dir',
      'launch-secret-file',
      'control',
      'log-level',
    ],
    flags: ['launch-secret-stdin', 'test-headless-oauth'],
  });
  if (!values.config && !values['policy-server']) throw new UsageError('--config <file.yaml> or --policy-server <url> is required');
  let policy: PolicyServerArgs | undefined;
  if (values['policy-server']) {
    let url: URL;
    try {
      url = new URL(values['policy-server']);
    } catch {
      throw new UsageError('--policy-server must be a URL');
    }
    if (!isSecureOrLoopback(url)) throw new UsageError('--policy-server must be https (http only on loopback)');
    if (values['policy-token'] !== undefined && values['policy-token'] !== 'control')
      throw new UsageError('--policy-token takes one value: control');
    if (values['policy-token'] === 'control' && values.control !== 'stdio')
      throw new UsageError('--policy-token control needs --control stdio');
    if (!values['policy-keys'] || Boolean(values['policy-token-file']) === Boolean(values['policy-token'])) {
      throw new UsageError('--policy-server needs --policy-keys and one of --policy-token-file and --policy-token control');
    }
    policy = {
      url,
      issuer: values['policy-issuer'] ?? url.origin,
      keysPath: resolve(values['policy-keys']),
      token: values['policy-token-file'] ? { type: 'file', path: resolve(values['policy-token-file']) } : { type: 'control' },
      ...(values['policy-sub'] ? { sub: values['policy-sub'] } : {}),
      workDir: resolve(values.workdir ?? '.'),
    };
  }
  if (values['launch-secret-file'] && values['launch-secret-stdin']) {
    throw new UsageError('choose one of --launch-secret-file and --launch-secret-stdin');
  }
  if (values.control !== undefined && values.control !== 'stdio') throw new UsageError('--control takes one value: stdio');
  // A gateway that signs in without a person would consent on the user's behalf to whatever
  // a server asks: never with a real org's policy.
  if (values['test-headless-oauth'] && policy) throw new UsageError('--test-headless-oauth is for tests and refused with --policy-server');
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'user';
  const runtimeDir = resolve(
    values['runtime-dir'] ?? (env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'gatehouse') : join(tmpdir(), `gatehouse-${uid}`)),
  );
  return {
    ...(values.config ? { configPath: resolve(values.config) } : {}),
    ...(policy ? { policy } : {}),
    listen: parseListen(values.listen ?? 'unix', runtimeDir),
    runtimeDir,
    stateDir: resolve(values['state-dir'] ?? join(env.XDG_STATE_HOME ?? join(env.HOME ?? homedir(), '.local/state'), 'gatehouse')),
    secretSource: values['launch-secret-stdin']
      ? { type: 'stdin' }
      : { type: 'file', path: resolve(values['launch-secret-file'] ?? join(runtimeDir, 'launch-secret')) },
    ...(values.control === 'stdio' ? { control: 'stdio' as const } : {}),
    logLevel: parseLogLevel(values['log-level']),
    ...(values['test-headless-oauth'] ? { testHeadlessOAuth: true as const } : {}),
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
