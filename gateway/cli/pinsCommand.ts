/**
 * `gatehouse pins <policy.yaml> <serverId>`: starts one catalog server the way a gateway
 * would, lists its tools, and prints their pins as a `tools:` block to paste into the
 * policy, so admins approve exactly the definitions they reviewed.
 */
import { resolve } from 'node:path';
import { stringify } from 'yaml';
import { isJSONRPCResultResponse, ListToolsResultSchema, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { parseCommandLine, parseOrExplain, USAGE_EXIT_CODE, UsageError } from '../../common/cli/commandLine';
import { createLogger, describeError } from '../../common/log/logger';
import { loadPolicyDocument, PolicyError } from '../../common/policy/policyDocument';
import { pinOfInstructions, pinOfTool } from '../../common/policy/toolPins';
import { catalogServer } from '../policy/managedPolicy';
import { LAUNCH_INITIALIZE_PARAMS, UpstreamPool } from '../upstream/upstreamPool';

const USAGE = 'Usage: gatehouse pins <policy.yaml> <serverId> [--workdir <dir>]\n';

export async function runPinsCommand(argv: string[]): Promise<number> {
  const parsed = parseOrExplain('pins', USAGE, () => {
    const line = parseCommandLine(argv, { strings: ['workdir'], positionals: true });
    const [file, serverId, ...extra] = line.positionals;
    if (!file || !serverId || extra.length > 0) throw new UsageError('name one policy file and one server id');
    return { file, serverId, workdir: line.values.workdir };
  });
  if (!parsed) return USAGE_EXIT_CODE;
  const { file, serverId } = parsed;
  let policy;
  try {
    policy = loadPolicyDocument(file);
  } catch (error) {
    if (error instanceof PolicyError) {
      process.stderr.write(`${error.problems.join('\n')}\n`);
      return 1;
    }
    throw error;
  }
  const entry = policy.servers.find((server) => server.id === serverId);
  if (!entry) {
    process.stderr.write(`gatehouse pins: no server "${serverId}" in ${file} (servers: ${policy.servers.map((s) => s.id).join(', ')})\n`);
    return 1;
  }
  const log = createLogger(undefined, 'warn');
  const pool = new UpstreamPool([catalogServer(entry, resolve(parsed.workdir ?? '.'))], 30_000, log);
  try {
    const connection = await pool.acquire(serverId, LAUNCH_INITIALIZE_PARAMS);
    const tools: Tool[] = [];
    let cursor: string | undefined;
    do {
      const answer = await connection.request({ method: 'tools/list', ...(cursor ? { params: { cursor } } : {}) }).reply;
      if (!isJSONRPCResultResponse(answer)) throw new Error(`tools/list failed: ${JSON.stringify(answer).slice(0, 200)}`);
      const page = ListToolsResultSchema.parse(answer.result);
      tools.push(...page.tools);
      cursor = page.nextCursor;
    } while (cursor);
    const block = Object.fromEntries(tools.map((tool) => [tool.name, { ...(entry.tools[tool.name] ?? {}), pin: pinOfTool(tool) }]));
    process.stdout.write(`# ${serverId}: ${tools.length} tools, pinned ${new Date().toISOString()}\n`);
    process.stdout.write(`# instructions pin: ${pinOfInstructions(connection.initialized?.instructions)}\n`);
    process.stdout.write(stringify({ tools: block }));
    return 0;
  } catch (error) {
    process.stderr.write(`gatehouse pins: ${describeError(error)}\n`);
    return 1;
  } finally {
    await pool.closeAll();
  }
}
