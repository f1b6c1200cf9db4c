/**
 * Gateway startup, part of the gateway group: for 1 and 20 stdio upstreams (the fixture),
 * the ready line's `startupMs` with lazy start (the default: the gateway serves at once,
 * each upstream starts on first use) and with eager start (every upstream running before
 * the ready line); what the first client of an idle server waits for its session (the lazy
 * start's cost, paid once per server); and the gateway's RSS with 20 upstreams, each with
 * an open client session. Medians of three runs.
 */
import { performance } from 'node:perf_hooks';
import { rssMb } from './benchProcesses';
import { gatewaySession, startGateway, stdioFixture } from './benchTargets';
import { median } from './benchStats';
import type { UpstreamStart } from '../../gateway/upstream/upstreamPool';

const REPEATS = 3;
export const MANY_UPSTREAMS = 20;

export interface StartupFigures {
  /** Ready line `startupMs` per run, by start mode and upstream count. */
  runs: Record<UpstreamStart, { one: number[]; many: number[] }>;
  /** Opening the first session on an idle server (spawn + initialize through the gateway), per run. */
  firstUseRuns: number[];
  lazyOneMs: number;
  lazyManyMs: number;
  eagerOneMs: number;
  eagerManyMs: number;
  firstUseMs: number;
  rssMb: number;
}

export async function measureStartup(): Promise<StartupFigures> {
  const runs: StartupFigures['runs'] = { lazy: { one: [], many: [] }, eager: { one: [], many: [] } };
  const firstUseRuns: number[] = [];
  let rss = NaN;
  for (let run = 0; run < REPEATS; run++) {
    for (const start of ['lazy', 'eager'] as const) {
      for (const n of [1, MANY_UPSTREAMS]) {
        process.stderr.write(`[bench gateway] ${start} startup with ${n} stdio upstream(s), run ${run + 1}/${REPEATS}\n`);
        const ids = Array.from({ length: n }, (_, i) => `fixture-${String(i + 1).padStart(2, '0')}`);
        const gateway = await startGateway(ids.map(stdioFixture), { start });
        try {
          (n === 1 ? runs[start].one : runs[start].many).push(gateway.ready.startupMs);
          if (start === 'lazy' && n === 1) {
            const began = performance.now();
            await gatewaySession(gateway);
            firstUseRuns.push(Math.round(performance.now() - began));
          }
          if (start === 'lazy' && n === MANY_UPSTREAMS && run === REPEATS - 1) {
            // One open session per server (each starts its upstream and is checked with a tools/call), then read RSS.
            for (const server of gateway.ready.servers) await gatewaySession(gateway, server.url);
            await new Promise((r) => setTimeout(r, 500));
            rss = rssMb(gateway.pid);
          }
        } finally {
          await gateway.stop();
        }
      }
    }
  }
  return {
    runs,
    firstUseRuns,
    lazyOneMs: median(runs.lazy.one),
    lazyManyMs: median(runs.lazy.many),
    eagerOneMs: median(runs.eager.one),
    eagerManyMs: median(runs.eager.many),
    firstUseMs: median(firstUseRuns),
    rssMb: rss,
  };
}
