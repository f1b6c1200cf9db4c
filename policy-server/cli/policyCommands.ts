/**
 * `gatehouse policy ...`: what an org admin (or a CI job) runs against the org policy.
 * `validate` works offline; the rest talk to the policy server with the admin's IdP token,
 * read from `--token-file` (never argv or env, which other local users can see).
 * Exit codes: 0 done, 1 failed (invalid policy, refused, unreachable), 2 usage.
 */
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { AUDIT_DECISIONS } from '../../common/audit/auditEvent';
import { parseCommandLine, UsageError } from '../../common/cli/commandLine';
import { loadPolicyDocument, PolicyError } from '../../common/policy/policyDocument';
import type {
  AuditExportFormat,
  PolicyHistoryResponse,
  PublishResponse,
  ReviewListResponse,
  ReviewResponse,
  RevocationsResponse,
  RollbackResponse,
} from '../../common/policy/policyServerApi';
import { AUDIT_EXPORT_FORMATS, POLICY_SERVER_PATHS as PATHS } from '../../common/policy/policyServerApi';
import { PolicyServerClient, PolicyServerRequestError } from './policyServerClient';

export const POLICY_USAGE = `Usage: gatehouse policy <command> [options]

Commands:
  validate <file>              check a policy file offline; prints file:line:col per problem
  publish <file>               validate, then publish as the next version
  history                      list published versions
  diff <from> <to>             unified diff between two versions
  rollback <version>           republish an old version as the next version
  revoke <sub>                 revoke a user (--session <id>: only that session; --credential
                               <server id>: only their stored credential for that server,
                               which their gateway deletes; --reason <text>)
  unrevoke <sub>               lift a revocation (--session / --credential as it was made)
  revocations                  list revocations
  reviews                      calls waiting for your review (you are in their reviewer group)
  approve <review id>          approve a call waiting for review (--note <text> for the requester)
  deny <review id>             deny it (--note <text>)
  audit                        export the central audit trail (admins), oldest first:
                                 --user <sub> --server <id> --tool <name> --decision <d>
                                 --from <time> --to <time> (ISO 8601; from inclusive, to exclusive)
                                 --format jsonl|csv (default jsonl)
                               here --server is the MCP server filter: give the policy server
                               with --server-url (or GATEHOUSE_POLICY_SERVER)

Options for every command but validate:
  --server <url>               the policy server (or GATEHOUSE_POLICY_SERVER); --server-url also works
  --token-file <path>          file holding your IdP access token (keep it 0600)
`;

interface Output {
  out(line: string): void;
  err(line: string): void;
  /** Text as is, without adding a newline (exports); resolves once it is flushed. Falls back to `out`. */
  write?(text: string): Promise<void>;
}

const STDIO: Output = {
  out: (line) => process.stdout.write(line + '\n'),
  err: (line) => process.stderr.write(line + '\n'),
  // Resolves when the text reached the OS: the CLI exits right after, and a pipe's writes are asynchronous.
  write: (text) =>
    new Promise<void>((resolve, reject) => {
      process.stdout.write(text, (error) => (error ? reject(error) : resolve()));
    }),
};

export async function runPolicyCommand(argv: string[], io: Output = STDIO, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === 'help') {
    process.stdout.write(POLICY_USAGE);
    return argv.length === 0 ? 2 : 0;
  }
  const [command, ...rest] = argv;
  try {
    const { values, positionals } = parseOptions(rest);
    switch (command) {
      case 'validate':
        return validate(one(positionals, '<file>'), io);
      case 'publish':
        return await publish(one(positionals, '<file>'), client(values, env), io);
      case 'history':
        none(positionals);
        return await history(client(values, env), io);
      case 'diff': {
        const [from, to] = two(positionals, '<from> <to>');
        return await diff(versionNumber(from), versionNumber(to), client(values, env), io);
      }
      case 'rollback':
        return await rollback(versionNumber(one(positionals, '<version>')), client(values, env), io);
      case 'revoke':
        return await revoke(
          one(positionals, '<sub>'),
          { sessionId: values.session, serverId: values.credential },
          values.reason,
          client(values, env),
          io,
        );
      case 'unrevoke':
        return await unrevoke(
          one(positionals, '<sub>'),
          { sessionId: values.session, serverId: values.credential },
          client(values, env),
          io,
        );
      case 'revocations':
        none(positionals);
        return await listRevocations(client(values, env), io);
      case 'reviews':
        none(positionals);
        return await listReviews(client(values, env), io);
      case 'approve':
      case 'deny':
        return await decideReview(one(positionals, '<review id>'), command, values.note, client(values, env), io);
      case 'audit': {
        none(positionals);
        // In this command --server filters by MCP server; the policy server is --server-url.
        const { server: mcpServer, ...rest } = values;
        if (mcpServer !== undefined && mcpServer.includes('://')) {
          throw new UsageError(
            `in "policy audit", --server filters by MCP server id; give the policy server with --server-url ${mcpServer}`,
          );
        }
        return await exportAudit(auditParams(values), client(rest, env), io);
      }
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`gatehouse policy: ${error.message}\n\n${POLICY_USAGE}`);
      return 2;
    }
    if (error instanceof PolicyServerRequestError) {
      io.err(
        `gatehouse policy ${command}: ${error.message}${error.status ? ` (HTTP ${error.status}${error.body ? ` ${error.body.error}` : ''})` : ''}`,
      );
      for (const problem of error.body?.problems ?? []) io.err(`  ${problem}`);
      return 1;
    }
    throw error;
  }
}

function parseOptions(argv: string[]) {
  return parseCommandLine(argv, {
    strings: [
      'server',
      'token-file',
      'server-url',
      'session',
      'credential',
      'reason',
      'user',
      'tool',
      'decision',
      'from',
      'to',
      'format',
      'note',
    ],
    positionals: true,
  });
}

function one(positionals: string[], what: string): string {
  if (positionals.length !== 1) throw new UsageError(`expected ${what}`);
  return positionals[0]!;
}

function two(positionals: string[], what: string): [string, string] {
  if (positionals.length !== 2) throw new UsageError(`expected ${what}`);
  return [positionals[0]!, positionals[1]!];
}

function none(positionals: string[]): void {
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
}

function versionNumber(value: string): number {
  if (!/^[1-9][0-9]{0,8}$/.test(value)) throw new UsageError(`"${value}" is not a policy version number`);
  return Number(value);
}

function client(values: { server?: string; 'server-url'?: string; 'token-file'?: string }, env: NodeJS.ProcessEnv): PolicyServerClient {
  if (values.server !== undefined && values['server-url'] !== undefined)
    throw new UsageError('give the policy server once: --server or --server-url');
  const server = values['server-url'] ?? values.server ?? env.GATEHOUSE_POLICY_SERVER;
  if (!server)
    throw new UsageError(
      'the policy server is required: --server <url> (--server-url <url> for "policy audit"), or set GATEHOUSE_POLICY_SERVER',
    );
  if (!values['token-file']) throw new UsageError('--token-file <path> is required: a file holding your IdP access token');
  return new PolicyServerClient(server, readToken(resolve(values['token-file'])));
}

function readToken(path: string): string {
  let token: string;
  try {
    token = readFileSync(path, 'utf8').trim();
  } catch (error) {
    throw new PolicyServerRequestError(
      `cannot read the token file ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      undefined,
      undefined,
    );
  }
  if (!token || /\s/.test(token))
    throw new PolicyServerRequestError(`the token file ${path} must hold exactly one access token`, undefined, undefined);
  if ((statSync(path).mode & 0o077) !== 0)
    process.stderr.write(`gatehouse policy: warning: ${path} is readable by other users; chmod 600 it\n`);
  return token;
}

function validate(file: string, io: Output): number {
  try {
    const policy = loadPolicyDocument(file);
    io.out(
      `valid: ${file} (org ${policy.org}: ${policy.servers.length} servers, ${policy.groups.length} groups, ${policy.rules.length} rules)`,
    );
    return 0;
  } catch (error) {
    if (!(error instanceof PolicyError)) throw error;
    for (const problem of error.problems) io.out(problem);
    io.err(`${error.problems.length} problem(s) in ${file}`);
    return 1;
  }
}

async function publish(file: string, server: PolicyServerClient, io: Output): Promise<number> {
  // Check locally first so problems point at the admin's own file path.
  if (validate(file, { out: io.err, err: io.err }) !== 0) return 1;
  const text = readFileSync(resolve(file), 'utf8');
  const { text: body } = await server.text('POST', PATHS.policies, { type: 'application/yaml; charset=utf-8', text });
  const result = JSON.parse(body) as PublishResponse;
  io.out(
    result.unchanged
      ? `unchanged: version ${result.version} already has this text (sha256 ${result.sha256.slice(0, 12)})`
      : `published version ${result.version} (sha256 ${result.sha256.slice(0, 12)}); gateways are being notified`,
  );
  return 0;
}

async function history(server: PolicyServerClient, io: Output): Promise<number> {
  const { body } = await server.json<PolicyHistoryResponse>('GET', PATHS.policies);
  if (body.versions.length === 0) {
    io.out('no policy has been published yet');
    return 0;
  }
  io.out(['VERSION', 'PUBLISHED AT'.padEnd(24), 'BY'.padEnd(24), 'SHA256', 'NOTE'].join('  '));
  for (const v of body.versions) {
    const note = [v.version === body.current ? 'current' : '', v.rolledBackFrom !== undefined ? `rollback to ${v.rolledBackFrom}` : '']
      .filter(Boolean)
      .join(', ');
    io.out(
      [String(v.version).padStart(7), v.publishedAt.padEnd(24), v.publishedBy.padEnd(24), v.sha256.slice(0, 12), note].join('  ').trimEnd(),
    );
  }
  return 0;
}

async function diff(from: number, to: number, server: PolicyServerClient, io: Output): Promise<number> {
  const { text } = await server.text('GET', `${PATHS.policyDiff}?from=${from}&to=${to}`);
  io.out(text === '' ? `no differences between version ${from} and version ${to}` : text.replace(/\n$/, ''));
  return 0;
}

async function rollback(version: number, server: PolicyServerClient, io: Output): Promise<number> {
  const { body } = await server.json<RollbackResponse>('POST', PATHS.rollback, { version });
  io.out(`rolled back: version ${version} republished as version ${body.version}; gateways are being notified`);
  return 0;
}

interface RevocationTarget {
  sessionId: string | undefined;
  serverId: string | undefined;
}

function describeTarget(sub: string, { sessionId, serverId }: RevocationTarget): string {
  return `${sessionId ? `session ${sessionId} of ` : ''}${serverId ? `the stored ${serverId} credential of ` : ''}${sub}`;
}

function targetFields({ sessionId, serverId }: RevocationTarget): Record<string, string> {
  return { ...(sessionId ? { sessionId } : {}), ...(serverId ? { serverId } : {}) };
}

async function revoke(
  sub: string,
  target: RevocationTarget,
  reason: string | undefined,
  server: PolicyServerClient,
  io: Output,
): Promise<number> {
  const { body } = await server.json<{ streamsTold: number }>('POST', PATHS.revocations, {
    sub,
    ...targetFields(target),
    ...(reason ? { reason } : {}),
  });
  io.out(`revoked ${describeTarget(sub, target)}; ${body.streamsTold} open gateway stream(s) told`);
  return 0;
}

async function unrevoke(sub: string, target: RevocationTarget, server: PolicyServerClient, io: Output): Promise<number> {
  await server.text('DELETE', PATHS.revocations, { type: 'application/json', text: JSON.stringify({ sub, ...targetFields(target) }) });
  io.out(`restored ${describeTarget(sub, target)}`);
  return 0;
}

async function listRevocations(server: PolicyServerClient, io: Output): Promise<number> {
  const { body } = await server.json<RevocationsResponse>('GET', PATHS.revocations);
  return printEach(io, body.revocations, 'no revocations', (r) => [
    `${r.sub}${r.sessionId ? ` session ${r.sessionId}` : ''}${r.serverId ? ` credential for ${r.serverId}` : ''}  revoked ${r.revokedAt} by ${r.revokedBy}${r.reason ? `: ${r.reason}` : ''}`,
  ]);
}

/** The lines of each item, or `none` when there is none. */
function printEach<T>(io: Output, items: readonly T[], none: string, lines: (item: T) => string[]): number {
  if (items.length === 0) io.out(none);
  for (const item of items) for (const line of lines(item)) io.out(line);
  return 0;
}

interface AuditOptions {
  user?: string;
  server?: string;
  tool?: string;
  decision?: string;
  from?: string;
  to?: string;
  format?: string;
}

/** The export's query string; values the server would refuse anyway are caught here with a usage message. */
function auditParams(values: AuditOptions): URLSearchParams {
  const format = values.format ?? 'jsonl';
  if (!(AUDIT_EXPORT_FORMATS as readonly string[]).includes(format))
    throw new UsageError(`--format must be ${AUDIT_EXPORT_FORMATS.join(' or ')}, got "${format}"`);
  if (values.decision !== undefined && !(AUDIT_DECISIONS as readonly string[]).includes(values.decision)) {
    throw new UsageError(`--decision must be one of ${AUDIT_DECISIONS.join(', ')}, got "${values.decision}"`);
  }
  const params = new URLSearchParams({ format: format as AuditExportFormat });
  for (const name of ['user', 'server', 'tool', 'decision', 'from', 'to'] as const) {
    const value = values[name];
    if (value !== undefined) params.set(name, value);
  }
  return params;
}

async function exportAudit(params: URLSearchParams, server: PolicyServerClient, io: Output): Promise<number> {
  const { text } = await server.text('GET', `${PATHS.auditExport}?${params.toString()}`);
  if (io.write) await io.write(text);
  else if (text.length > 0) io.out(text.replace(/\r?\n$/, ''));
  return 0;
}

async function listReviews(server: PolicyServerClient, io: Output): Promise<number> {
  const { body } = await server.json<ReviewListResponse>('GET', PATHS.reviews);
  return printEach(io, body.reviews, 'no calls are waiting for your review', (review) => [
    `${review.id}  ${review.requester.email ?? review.requester.sub} wants ${review.tool} on ${review.server} (rule ${review.rule}${review.reason ? `: ${review.reason}` : ''}); expires ${review.expiresAt}`,
    `  arguments: ${JSON.stringify(review.arguments)}`,
  ]);
}

async function decideReview(
  id: string,
  decision: 'approve' | 'deny',
  note: string | undefined,
  server: PolicyServerClient,
  io: Output,
): Promise<number> {
  const { body } = await server.json<ReviewResponse>('POST', `${PATHS.reviews}/${encodeURIComponent(id)}/decision`, {
    decision,
    ...(note !== undefined ? { note } : {}),
  });
  io.out(
    `${body.review.state}: ${body.review.tool} on ${body.review.server} for ${body.review.requester.email ?? body.review.requester.sub}`,
  );
  return 0;
}
