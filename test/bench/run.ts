/**
 * `npm run bench` runs every benchmark group but `profile` (profiling slows what it
 * measures); `npm run bench -- <group> [<group>...]` runs only those. Each group prints a
 * readable table and one JSON line (`{"bench":"<group>",...}`).
 * Exits 0 when every measurement was made (missed targets are reported, not fatal), non-zero
 * when one could not be made. Every process a group started is stopped, even on failure.
 */
import { runExtensionBench } from './extensionBench';
import { runGatewayBench } from './gatewayBench';
import { runGatewayProfile } from './gatewayProfile';
import { runGuardrailsBench } from './guardrailsBench';
import { runPolicyBench } from './policyBench';
import { runRelayBench } from './relayBench';
import { runScaleBench } from './scaleBench';
import { stopAll } from './benchProcesses';

const GROUPS: Record<string, () => Promise<void>> = {
  gateway: runGatewayBench,
  policy: runPolicyBench,
  guardrails: runGuardrailsBench,
  extension: runExtensionBench,
  scale: runScaleBench,
  relay: runRelayBench,
  // Not part of a plain `npm run bench`: it profiles, which slows what it measures.
  profile: runGatewayProfile,
};

/** Hard stop, so a hung run never outlives its budget. */
const WATCHDOG_MS = 15 * 60_000; // the extension group may install code-server first

async function main(): Promise<number> {
  const requested = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const unknown = requested.filter((g) => !(g in GROUPS));
  if (unknown.length > 0) {
    process.stderr.write(`unknown bench group(s): ${unknown.join(', ')}; known: ${Object.keys(GROUPS).join(', ')}\n`);
    return 2;
  }
  const groups = requested.length > 0 ? requested : Object.keys(GROUPS).filter((group) => group !== 'profile');

  let stopping = false;
  const abort = (reason: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`bench: ${reason}; stopping child processes\n`);
    void stopAll().finally(() => process.exit(1));
  };
  process.on('SIGINT', () => abort('interrupted'));
  process.on('SIGTERM', () => abort('terminated'));
  setTimeout(() => abort(`still running after ${WATCHDOG_MS / 1000} s`), WATCHDOG_MS).unref();

  let failed = 0;
  for (const group of groups) {
    const started = performance.now();
    try {
      await GROUPS[group]!();
      process.stderr.write(`[bench ${group}] done in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
    } catch (error) {
      failed++;
      process.stderr.write(`[bench ${group}] FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    } finally {
      await stopAll();
    }
  }
  return failed > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  async (error: unknown) => {
    process.stderr.write(`bench: ${String(error)}\n`);
    await stopAll();
    process.exit(1);
  },
);
