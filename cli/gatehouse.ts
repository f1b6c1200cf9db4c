/**
 * The `gatehouse` command: dispatches to the process a subcommand names, and nothing else.
 * Each process parses its own options in its own `cli/` folder (gateway/cli/,
 * policy-server/cli/) and starts from its composition root (gateway/main.ts,
 * policy-server/main.ts). The gateway is imported eagerly, being what VS Code launches;
 * everything else only when asked for.
 */
import { runGateway } from '../gateway/main';

const USAGE = `Usage: gatehouse <command> [options]

Commands:
  gateway          run the local MCP gateway (gatehouse gateway --help)
  policy-server    run the org policy server (gatehouse policy-server --help)
  policy           validate, publish, history, diff, rollback, revoke (gatehouse policy --help)
  secret           the relay's shared service keys: init-key, set (value on stdin), list
  pins             print the tool pins of a catalog server, to approve them in the policy
  audit verify     check a gateway's audit spool; names the first bad record
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'gateway':
      return runGateway(rest);
    case 'policy-server':
      return (await import('../policy-server/main')).runPolicyServer(rest);
    case 'policy':
      return (await import('../policy-server/cli/policyCommands')).runPolicyCommand(rest);
    case 'secret':
      return (await import('../policy-server/cli/secretCommand')).runSecretCommand(rest);
    case 'audit':
      return (await import('../gateway/cli/auditCommand')).runAuditCommand(rest);
    case 'pins':
      return (await import('../gateway/cli/pinsCommand')).runPinsCommand(rest);
    case undefined:
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`gatehouse: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`gatehouse: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
