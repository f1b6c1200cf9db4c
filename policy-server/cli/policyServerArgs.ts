/**
 * policy-server/cli/ is the policy server's command line: `gatehouse policy-server` and
 * its `rotate-key` (this file), and the commands that talk to a policy server or its store:
 * `gatehouse policy` (policyCommands.ts, over policyServerClient.ts) and `gatehouse secret`.
 *
 * Command-line arguments of `gatehouse policy-server` and `gatehouse policy-server
 * rotate-key`. Nothing secret is accepted here (argv and env are visible to other local
 * users): signing keys live in the data directory, callers bring IdP tokens.
 */
import { resolve } from 'node:path';
import { parseCommandLine, UsageError } from '../../common/cli/commandLine';
import { parseLogLevel, type LogLevel } from '../../common/log/logger';
import { isSecureOrLoopback } from '../../common/net/loopback';

export const DEFAULT_DATA_DIR = '.gatehouse/policy-server';
export const DEFAULT_LISTEN = '127.0.0.1:7430';

export const POLICY_SERVER_USAGE = `Usage: gatehouse policy-server [options]
       gatehouse policy-server rotate-key [--data-dir <dir>] [--store postgres://... [--store-password-file <path>]]

Serves the org policy: publish, history, per-user signed bundles, revocation, push.

Options:
  --data-dir <dir>           private folder (0700) for the policy store and signing keys
                             (default ${DEFAULT_DATA_DIR})
  --listen <host>:<port>     address to serve on (default ${DEFAULT_LISTEN}; port 0 picks one)
  --issuer-url <url>         public base URL of this server, the "iss" of every bundle
                             (default http://<listen address>)
  --oidc-issuer <url>        accept access tokens from this OIDC issuer...
  --oidc-audience <aud>      ...issued for this audience (both required together)
  --sign-in-client-id <id>   this server's own client at the --oidc-issuer IdP; turns on the
                             MCP authorization server (/oauth) so any MCP client reaches the
                             relay with the org's SSO. Redirect URI to register at the IdP:
                             <issuer-url>/oauth/sign-in/callback
  --sign-in-client-secret-file <path>  0600 file with that client's secret
  --sign-in-scope <scopes>   scopes asked of the IdP at sign-in (default "openid email profile";
                             add the scope that puts groups in the ID token if yours needs one)
  --relay-requires-dpop      the relay takes only relay tokens bound to a key (DPoP) from
                             /oauth, no IdP token and no unbound token (needs
                             --sign-in-client-id, not with --github-api; Gatehouse gateways
                             get such tokens themselves)
  --github-api <url>         accept GitHub tokens, checked against this API
                             (e.g. https://api.github.com)...
  --github-client-id <id>    ...issued to this Gatehouse GitHub OAuth app only...
  --github-client-secret-file <path>  ...whose secret is in this 0600 file
  --bootstrap-policy <file>  publish this policy as version 1 if nothing was published yet
  --secrets-key-file <path>  0600 file with the key of the shared-key secret store; turns
                             on the relay (/relay/<server>/mcp). Keep it outside the data dir
  --store postgres://<user>@<host>:<port>/<db>
                             keep policy versions, revocations and the central audit in
                             PostgreSQL (migrated on start), for several replicas; default:
                             lowdb and files in the data dir
  --store-password-file <path>  0600 file with the database password (never in the URL)
  --registry-anonymous       let /v0.1/servers (the catalog as an MCP Registry) answer callers
                             without a token (VS Code's gallery sends none) with the servers
                             the policy gives to everyone ("*"); off: a token is required
  --audit-syslog <url>       also send each audit event as RFC 5424 syslog to
                             udp://<host>:<port> or tcp://<host>:<port> (off by default)
  --audit-otlp <url>         also send each audit event as an OpenTelemetry log record to
                             this OTLP/HTTP endpoint, e.g. https://collector:4318/v1/logs
                             (https; http only on loopback; off by default)
  --log-level <level>        debug | info | warn | error (default info); logs go to stderr

rotate-key makes a new signing key current. The running server picks it up at once; the
old public key stays in the JWKS until every bundle it signed has expired.
`;

/** A PostgreSQL database: its URL (never with a password) and the 0600 file holding the password, if one is needed. */
export interface StoreOption {
  url: string;
  passwordFile?: string;
}

export interface PolicyServerArgs {
  command: 'serve';
  dataDir: string;
  listen: { host: string; port: number };
  issuerUrl: string | undefined;
  oidc: { issuer: string; audience: string } | undefined;
  github: { apiBaseUrl: string; clientId: string; clientSecretFile: string } | undefined;
  /** The MCP authorization server's sign-in at the OIDC issuer (off unless given). */
  signIn: { clientId: string; clientSecretFile: string; scope: string } | undefined;
  bootstrapPolicy: string | undefined;
  secretsKeyFile: string | undefined;
  /** PostgreSQL instead of the data dir's files. */
  store: StoreOption | undefined;
  registryAnonymous: boolean;
  /** `--relay-requires-dpop`: the relay takes only key-bound tokens of the authorization server. */
  relayRequiresDpop: boolean;
  /** Audit export (off unless given). */
  auditSyslog: URL | undefined;
  auditOtlp: URL | undefined;
  logLevel: LogLevel;
}

export interface RotateKeyArgs {
  command: 'rotate-key';
  dataDir: string;
  /** Where the policy versions are (their bundle lifetimes set the overlap). */
  store: StoreOption | undefined;
}

export function parsePolicyServerArgs(argv: string[]): PolicyServerArgs | RotateKeyArgs {
  if (argv[0] === 'rotate-key') {
    const { values } = parseCommandLine(argv.slice(1), { strings: ['data-dir', 'store', 'store-password-file'] });
    return { command: 'rotate-key', dataDir: resolve(values['data-dir'] ?? DEFAULT_DATA_DIR), store: storeOption(values) };
  }
  const { values } = parseCommandLine(argv, {
    strings: [
      'data-dir',
      'listen',
      'issuer-url',
      'oidc-issuer',
      'oidc-audience',
      'github-api',
      'github-client-id',
      'github-client-secret-file',
      'sign-in-client-id',
      'sign-in-client-secret-file',
      'sign-in-scope',
      'bootstrap-policy',
      'secrets-key-file',
      'audit-syslog',
      'audit-otlp',
      'store',
      'store-password-file',
      'log-level',
    ],
    flags: ['registry-anonymous', 'relay-requires-dpop'],
  });
  const store = storeOption(values);
  if (Boolean(values['oidc-issuer']) !== Boolean(values['oidc-audience'])) {
    throw new UsageError('--oidc-issuer and --oidc-audience go together: give both or neither');
  }
  if (!values['oidc-issuer'] && !values['github-api']) {
    throw new UsageError(
      'give --oidc-issuer with --oidc-audience, --github-api, or both: the server needs an identity provider to know its callers',
    );
  }
  if (values['github-api'] && (!values['github-client-id'] || !values['github-client-secret-file'])) {
    throw new UsageError(
      '--github-api needs --github-client-id and --github-client-secret-file: only tokens issued to the Gatehouse GitHub app are accepted',
    );
  }
  const signInClientId = values['sign-in-client-id'];
  const signInSecretFile = values['sign-in-client-secret-file'];
  if ((signInClientId || signInSecretFile || values['sign-in-scope']) && !(signInClientId && signInSecretFile)) {
    throw new UsageError('--sign-in-client-id and --sign-in-client-secret-file go together (--sign-in-scope needs them)');
  }
  if (values['relay-requires-dpop'] && !signInClientId) {
    throw new UsageError(
      '--relay-requires-dpop needs --sign-in-client-id: key-bound relay tokens come from the authorization server it turns on',
    );
  }
  if (values['relay-requires-dpop'] && values['github-api']) {
    throw new UsageError(
      '--relay-requires-dpop cannot go with --github-api: GitHub tokens are not exchanged for key-bound relay tokens, so GitHub users could not reach the relay',
    );
  }
  if (signInClientId && !values['oidc-issuer']) throw new UsageError('--sign-in-client-id needs --oidc-issuer: people sign in at that IdP');
  const issuerUrl = values['issuer-url'] === undefined ? undefined : parseIssuerUrl(values['issuer-url']);
  if (signInClientId && issuerUrl && new URL(issuerUrl).pathname !== '/') {
    throw new UsageError('with --sign-in-client-id, --issuer-url must have no path: the authorization server lives at <issuer-url>/oauth');
  }
  const signInScope = values['sign-in-scope'] ?? 'openid email profile';
  if (!signInScope.split(' ').includes('openid')) throw new UsageError('--sign-in-scope must include openid');
  return {
    command: 'serve',
    dataDir: resolve(values['data-dir'] ?? DEFAULT_DATA_DIR),
    listen: parseListen(values.listen ?? DEFAULT_LISTEN),
    issuerUrl,
    oidc:
      values['oidc-issuer'] && values['oidc-audience'] ? { issuer: values['oidc-issuer'], audience: values['oidc-audience'] } : undefined,
    github:
      values['github-api'] && values['github-client-id'] && values['github-client-secret-file']
        ? {
            apiBaseUrl: values['github-api'],
            clientId: values['github-client-id'],
            clientSecretFile: resolve(values['github-client-secret-file']),
          }
        : undefined,
    signIn:
      signInClientId && signInSecretFile
        ? { clientId: signInClientId, clientSecretFile: resolve(signInSecretFile), scope: signInScope }
        : undefined,
    bootstrapPolicy: values['bootstrap-policy'] === undefined ? undefined : resolve(values['bootstrap-policy']),
    secretsKeyFile: values['secrets-key-file'] === undefined ? undefined : resolve(values['secrets-key-file']),
    store,
    registryAnonymous: values['registry-anonymous'] === true,
    relayRequiresDpop: values['relay-requires-dpop'] === true,
    auditSyslog: values['audit-syslog'] === undefined ? undefined : parseSyslogTarget(values['audit-syslog']),
    auditOtlp: values['audit-otlp'] === undefined ? undefined : parseOtlpEndpoint(values['audit-otlp']),
    logLevel: parseLogLevel(values['log-level']),
  };
}

/** `value` as a URL, or a UsageError with `expected` (never the value: it may hold a secret). */
function urlOption(value: string, expected: string, valid: (url: URL) => boolean): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(expected);
  }
  if (!valid(url)) throw new UsageError(expected);
  return url;
}

/** `--store` with `--store-password-file`, as every command that opens the database takes them. */
export function storeOption(values: { store?: string; 'store-password-file'?: string }): StoreOption | undefined {
  if (values['store-password-file'] && !values.store) throw new UsageError('--store-password-file goes with --store postgres://...');
  if (values.store === undefined) return undefined;
  return {
    url: parseStoreUrl(values.store),
    ...(values['store-password-file'] ? { passwordFile: resolve(values['store-password-file']) } : {}),
  };
}

function parseStoreUrl(value: string): string {
  const url = urlOption(
    value,
    '--store must be postgres://<user>@<host>:<port>/<database>',
    (u) => u.protocol === 'postgres:' || u.protocol === 'postgresql:',
  );
  // pg also reads a password from the query string (?password=, ?sslpassword=): refused like user:password@.
  const inQuery = [...url.searchParams.keys()].some((key) => /password/i.test(key));
  if (url.password || inQuery)
    throw new UsageError('--store must not carry a password (argv is visible to other local users): give it with --store-password-file');
  return value;
}

function parseSyslogTarget(value: string): URL {
  return urlOption(
    value,
    '--audit-syslog must be udp://<host>:<port> or tcp://<host>:<port>',
    (u) =>
      (u.protocol === 'udp:' || u.protocol === 'tcp:') &&
      Boolean(u.hostname) &&
      Boolean(u.port) &&
      !u.pathname.replace(/^\/$/, '') &&
      !u.username,
  );
}

function parseOtlpEndpoint(value: string): URL {
  return urlOption(
    value,
    '--audit-otlp must be https (http only on loopback), without credentials in the URL, such as https://collector:4318/v1/logs',
    (u) => isSecureOrLoopback(u) && !u.username && !u.password,
  );
}

function parseListen(value: string): { host: string; port: number } {
  const match = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value);
  if (!match || Number(match[2]) > 65535) throw new UsageError(`--listen must be <host>:<port>, e.g. 127.0.0.1:7430, got "${value}"`);
  const host = match[1]!.startsWith('[') ? match[1]!.slice(1, -1) : match[1]!;
  return { host, port: Number(match[2]) };
}

function parseIssuerUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`--issuer-url is not a URL: "${value}"`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new UsageError(`--issuer-url must be an http(s) URL, got "${value}"`);
  if (url.search || url.hash || url.username || url.password)
    throw new UsageError('--issuer-url must not have a query, fragment or credentials');
  return url.href.replace(/\/$/, '');
}
