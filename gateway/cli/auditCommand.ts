/**
 * `gatehouse audit verify <dir>`: checks a spool (every segment, record and checkpoint) and
 * prints a summary (exit 0), or names the first bad record (exit 1). Reads only; it does
 * not need the spool lock, so it can run beside a live gateway.
 */
import { resolve } from 'node:path';
import {
  explainUsage,
  parseOrExplain,
  parseCommandLine,
  processOutput,
  USAGE_EXIT_CODE,
  UsageError,
  type CommandOutput,
} from '../../common/cli/commandLine';
import { describeError } from '../../common/log/logger';
import { verifyAuditSpool, type AuditVerifySummary } from '../audit/auditVerifier';

export const AUDIT_USAGE = `Usage: gatehouse audit verify <spool-dir> [--public-key <jwk-file>] [--json]

Checks every segment, record hash, chain link, event and signed checkpoint of a gateway
audit spool. Exits 0 when all hold, 1 at the first bad record (named by file, line and seq).

  --public-key <file>  check checkpoints with this Ed25519 public JWK (e.g. the key the
                       policy server registered) instead of the key file in the spool
  --json               print the result as one JSON object
`;

export async function runAuditCommand(argv: string[], io: CommandOutput = processOutput): Promise<number> {
  const [subcommand, ...rest] = argv;
  if (subcommand === undefined || subcommand === '--help' || subcommand === 'help') {
    io.out(AUDIT_USAGE);
    return subcommand === undefined ? 2 : 0;
  }
  if (subcommand !== 'verify') return explainUsage('audit', `unknown subcommand "${subcommand}"`, AUDIT_USAGE, io);
  if (rest.includes('--help')) {
    io.out(AUDIT_USAGE);
    return 0;
  }
  const parsed = parseOrExplain(
    'audit',
    AUDIT_USAGE,
    () => {
      const { values, positionals } = parseCommandLine(rest, { strings: ['public-key'], flags: ['json'], positionals: true });
      const [spool, ...extra] = positionals;
      if (!spool) throw new UsageError('name the spool folder to verify');
      if (extra.length > 0) throw new UsageError(`unexpected argument ${extra[0]}`);
      return { dir: resolve(spool), publicKeyFile: values['public-key'], json: values.json === true };
    },
    io,
  );
  if (!parsed) return USAGE_EXIT_CODE;
  const { dir, publicKeyFile, json } = parsed;

  let result;
  try {
    result = await verifyAuditSpool(dir, publicKeyFile ? { publicKeyFile } : {});
  } catch (error) {
    if (json) io.out(JSON.stringify({ ok: false, dir, error: describeError(error) }) + '\n');
    else io.err(`audit spool ${dir}: cannot verify: ${describeError(error)}\n`);
    return 1;
  }
  if (json) {
    io.out(JSON.stringify({ dir, ...result }) + '\n');
    return result.ok ? 0 : 1;
  }
  if (!result.ok) {
    const { bad, summary } = result;
    io.err(
      `audit spool ${dir}: FAILED\n` +
        `  first bad record  ${bad.segment} line ${bad.line} (seq ${bad.seq})\n` +
        `  problem           ${bad.problem}\n` +
        `  verified before   ${summary.records} records (${summary.events} events, ${summary.checkpoints} checkpoints)` +
        (summary.lastCheckpoint ? `, last good checkpoint seq ${summary.lastCheckpoint.seq} at ${summary.lastCheckpoint.time}` : '') +
        '\n',
    );
    return 1;
  }
  io.out(`audit spool ${dir}: OK\n${formatSummary(result.summary, Boolean(publicKeyFile))}`);
  return 0;
}

function formatSummary(summary: AuditVerifySummary, pinnedKey: boolean): string {
  const rows: Array<[string, string]> = [
    ['events', String(summary.events)],
    ['checkpoints', String(summary.checkpoints)],
    ['segments', String(summary.segments)],
    ['last seq', `${summary.lastSeq} (hash ${summary.lastHash.slice(0, 16)}…)`],
    [
      'last checkpoint',
      summary.lastCheckpoint
        ? `seq ${summary.lastCheckpoint.seq} at ${summary.lastCheckpoint.time} (${summary.lastCheckpoint.reason})`
        : 'none',
    ],
    [
      'checkpoint key',
      `${summary.keyId} (${pinnedKey ? 'the key you gave' : "the spool's own key: whoever can read it can re-sign; the policy server's copy is the anchor"})`,
    ],
  ];
  let text = rows.map(([label, value]) => `  ${label.padEnd(16)}  ${value}\n`).join('');
  if (summary.tornTailBytes > 0) {
    text += `  note: ${summary.tornTailBytes} bytes after the last record are an interrupted write (not a record); the gateway cuts them when it next opens the spool\n`;
  }
  return text;
}
