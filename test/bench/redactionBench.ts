/**
 * Redaction benchmark: what secret redaction adds to every relayed result, and how much it
 * catches.
 *
 *  - redact_clean_1kb_us: median time of `redactResult('tools/call', ...)` on a clean
 *    result whose text is 1 KB (20 different 1 KB slices of the clean corpus: code, logs,
 *    JSON, hashes, base64, ...). Target <= 50 µs. `redact_clean_1kb_text_us` is
 *    `redactText` alone; `pii_clean_1kb_us` the same result with `pii: true`.
 *  - redact_dirty_1kb_us: the same slices with two secrets inserted (found and replaced).
 *  - redact_mb_s: throughput of `redactText` on 10 MB of clean text (ASCII), the
 *    median of 5 runs. Target >= 100 MB/s. `redact_mb_s_unicode`: the same text with a
 *    few non-Latin-1 characters (V8 then stores it two bytes per character);
 *    `redact_structured_mb_s`: a ~10 MB `structuredContent` of 40,000 records, in bytes
 *    of its JSON.
 *  - recall: share of the corpus secrets (test/fixtures/secretCorpus.ts) whose value is
 *    gone and whose kind is reported; false_positives: findings on the clean corpus;
 *    corpus_kinds / corpus_secrets: its size.
 *  - secretlint_1kb_us / secretlint_mb_s / secretlint_recall / secretlint_false_positives:
 *    secretlint's own engine (`lintSource`, recommended preset, AWS id scan on) on the same
 *    inputs, for comparison (its throughput on 1 MB, not 10).
 *
 * Per-call timing: process.hrtime.bigint() around each call, minus the median cost of an
 * empty pair. Runs in ~3 s. `node --import tsx test/bench/redactionBench.ts` prints a
 * table and one JSON line (`{"bench":"redaction",...}`).
 */
import { SecretRedactor } from '../../gateway/guardrails/redaction/secretRedactor';
import { cleanSamples } from '../fixtures/cleanCorpus';
import { secretSamples, type SecretSample } from '../fixtures/secretCorpus';
import { markdownTable, median, round } from './benchStats';

export const REDACTION_TARGETS = { redact_clean_1kb_us: 50, redact_mb_s: 100 };

const KB = 1024;
const LARGE_BYTES = 10 * 1024 * 1024;
const CALLS_1KB = 20_000;
const SECRETLINT_CALLS_1KB = 400;

function timerOverheadNs(): number {
  const samples: number[] = [];
  for (let i = 0; i < 10_000; i++) {
    const t0 = process.hrtime.bigint();
    samples.push(Number(process.hrtime.bigint() - t0));
  }
  return median(samples);
}

/** Median µs per call of `fn` over `calls` calls cycling through `inputs`. */
function perCallUs<T>(inputs: readonly T[], calls: number, fn: (input: T) => unknown, overheadNs: number): number {
  for (let i = 0; i < Math.min(calls, 2_000); i++) fn(inputs[i % inputs.length]!); // JIT warm-up
  const samples = new Array<number>(calls);
  for (let i = 0; i < calls; i++) {
    const input = inputs[i % inputs.length]!;
    const t0 = process.hrtime.bigint();
    fn(input);
    samples[i] = Math.max(0, Number(process.hrtime.bigint() - t0) - overheadNs);
  }
  return median(samples) / 1000;
}

/** 1 KB slices of each clean sample (samples shorter than 1 KB are repeated). */
function cleanSlices(): string[] {
  return cleanSamples().map((s) => {
    let text = s.text;
    while (text.length < KB) text += '\n' + s.text;
    return text.slice(0, KB);
  });
}

/** Clean text of `bytes` characters built from the clean corpus. */
function largeCleanText(bytes: number): string {
  const parts: string[] = [];
  let size = 0;
  const samples = cleanSamples();
  for (let i = 0; size < bytes; i++) {
    const text = samples[i % samples.length]!.text;
    parts.push(text);
    size += text.length + 1;
  }
  return parts.join('\n').slice(0, bytes);
}

function structuredResult(targetBytes: number): { result: unknown; bytes: number } {
  const samples = cleanSamples();
  const records: unknown[] = [];
  let bytes = 0;
  for (let i = 0; bytes < targetBytes; i++) {
    const record = {
      id: `rec_${i}`,
      index: i,
      active: i % 3 !== 0,
      title: `Record ${i}: ${samples[i % samples.length]!.label}`,
      owner: { login: `user-${i % 97}`, url: `https://api.example.com/users/${i % 97}` },
      tags: ['alpha', 'beta', `t${i % 11}`],
      body: samples[i % samples.length]!.text.slice((i * 37) % 200, ((i * 37) % 200) + 120),
    };
    bytes += JSON.stringify(record).length + 1;
    records.push(record);
  }
  return { result: { content: [{ type: 'text', text: `${records.length} records` }], structuredContent: { records } }, bytes };
}

function mbPerSecond(bytes: number, runs: number, fn: () => void): number {
  fn(); // warm-up; also flattens rope strings
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  return bytes / (1024 * 1024) / (median(times) / 1000);
}

function detected(redactor: SecretRedactor, sample: SecretSample): boolean {
  const { text, findings } = redactor.redactText(sample.text);
  return !text.includes(sample.secret) && (findings[sample.kind] ?? 0) > 0;
}

interface Secretlint {
  lint(content: string): Promise<Array<{ range: readonly [number, number] }>>;
}

async function loadSecretlint(): Promise<Secretlint> {
  const { lintSource } = await import('@secretlint/core');
  const { creator } = await import('@secretlint/secretlint-rule-preset-recommend');
  const config = {
    rules: [
      { id: creator.meta.id, rule: creator, rules: [{ id: '@secretlint/secretlint-rule-aws', options: { enableIDScanRule: true } }] },
    ],
  };
  return {
    async lint(content) {
      const result = await lintSource({
        source: { content, filePath: '/virtual/result.txt', ext: '.txt', contentType: 'text' },
        options: { config, maskSecrets: true },
      });
      return result.messages;
    },
  };
}

export async function runRedactionBench(): Promise<Record<string, number>> {
  const redactor = new SecretRedactor();
  const piiRedactor = new SecretRedactor({ pii: true });
  const overhead = timerOverheadNs();
  const secrets = secretSamples();
  const slices = cleanSlices();

  // 1 KB, clean and dirty.
  const cleanResults = slices.map((text) => ({ content: [{ type: 'text', text }], isError: false }));
  for (const r of cleanResults) {
    if (redactor.redactResult('tools/call', r).result !== r)
      throw new Error('a clean 1 KB slice was redacted; the clean corpus is not clean');
  }
  const redact_clean_1kb_us = perCallUs(cleanResults, CALLS_1KB, (r) => redactor.redactResult('tools/call', r), overhead);
  const redact_clean_1kb_text_us = perCallUs(slices, CALLS_1KB, (t) => redactor.redactText(t), overhead);
  const pii_clean_1kb_us = perCallUs(cleanResults, CALLS_1KB, (r) => piiRedactor.redactResult('tools/call', r), overhead);
  const shortSecrets = secrets.filter((s) => s.text.length < 300);
  const dirtyResults = slices.map((text, i) => {
    const a = shortSecrets[i % shortSecrets.length]!;
    const b = shortSecrets[(i * 7 + 3) % shortSecrets.length]!;
    const body = `${text.slice(0, 300)}\n${a.text}\n${text.slice(300, 600)}\n${b.text}\n`;
    return { content: [{ type: 'text', text: (body + text.slice(600)).slice(0, Math.max(KB, body.length)) }], isError: false };
  });
  for (const r of dirtyResults) {
    if (redactor.redactResult('tools/call', r).result === r) throw new Error('a dirty 1 KB result came back unredacted');
  }
  const redact_dirty_1kb_us = perCallUs(dirtyResults, CALLS_1KB, (r) => redactor.redactResult('tools/call', r), overhead);

  // Throughput.
  const large = largeCleanText(LARGE_BYTES);
  let clean = true;
  const redact_mb_s = mbPerSecond(large.length, 5, () => {
    clean &&= redactor.redactText(large).text === large;
  });
  if (!clean) throw new Error('the large clean text was redacted');
  const largeUnicode = `${large.slice(0, 1000)} — café → 東京 ✓ ${large.slice(1000)}`;
  const redact_mb_s_unicode = mbPerSecond(largeUnicode.length, 5, () => {
    redactor.redactText(largeUnicode);
  });
  const structured = structuredResult(LARGE_BYTES);
  const redact_structured_mb_s = mbPerSecond(structured.bytes, 3, () => {
    if (redactor.redactResult('tools/call', structured.result).result !== structured.result)
      throw new Error('structured clean result was redacted');
  });

  // Quality.
  const hits = secrets.filter((s) => detected(redactor, s)).length;
  let false_positives = 0;
  for (const sample of cleanSamples()) {
    for (const n of Object.values(redactor.redactText(sample.text).findings)) false_positives += n;
  }

  // secretlint, for comparison.
  const secretlint = await loadSecretlint();
  for (let i = 0; i < 50; i++) await secretlint.lint(slices[i % slices.length]!);
  const slSamples: number[] = [];
  for (let i = 0; i < SECRETLINT_CALLS_1KB; i++) {
    const t0 = process.hrtime.bigint();
    await secretlint.lint(slices[i % slices.length]!);
    slSamples.push(Math.max(0, Number(process.hrtime.bigint() - t0) - overhead));
  }
  const secretlint_1kb_us = median(slSamples) / 1000;
  const oneMb = large.slice(0, 1024 * 1024);
  await secretlint.lint(oneMb);
  const slTimes: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    await secretlint.lint(oneMb);
    slTimes.push(performance.now() - t0);
  }
  const secretlint_mb_s = 1 / (median(slTimes) / 1000);
  let slHits = 0;
  for (const s of secrets) {
    const start = s.text.indexOf(s.secret);
    const end = start + s.secret.length;
    if ((await secretlint.lint(s.text)).some((m) => m.range[0] < end && start < m.range[1])) slHits++;
  }
  let secretlint_false_positives = 0;
  for (const sample of cleanSamples()) secretlint_false_positives += (await secretlint.lint(sample.text)).length;

  return {
    redact_clean_1kb_us: round(redact_clean_1kb_us, 2),
    redact_clean_1kb_text_us: round(redact_clean_1kb_text_us, 2),
    redact_dirty_1kb_us: round(redact_dirty_1kb_us, 2),
    pii_clean_1kb_us: round(pii_clean_1kb_us, 2),
    redact_mb_s: round(redact_mb_s, 1),
    redact_mb_s_unicode: round(redact_mb_s_unicode, 1),
    redact_structured_mb_s: round(redact_structured_mb_s, 1),
    recall: round(hits / secrets.length, 4),
    false_positives,
    corpus_kinds: new Set(secrets.map((s) => s.kind)).size,
    corpus_secrets: secrets.length,
    clean_corpus_samples: cleanSamples().length,
    secretlint_1kb_us: round(secretlint_1kb_us, 1),
    secretlint_mb_s: round(secretlint_mb_s, 1),
    secretlint_recall: round(slHits / secrets.length, 4),
    secretlint_false_positives,
  };
}

if (require.main === module) {
  const began = performance.now();
  runRedactionBench().then(
    (r) => {
      const met = (v: number | undefined, target: number, atMost: boolean) =>
        v === undefined ? '-' : (atMost ? v <= target : v >= target) ? 'met' : 'MISSED';
      console.log(
        markdownTable(
          ['measure', 'gatehouse', 'secretlint alone', 'target'],
          [
            [
              'clean 1 KB result, µs/call (median)',
              r.redact_clean_1kb_us!,
              r.secretlint_1kb_us!,
              `<= ${REDACTION_TARGETS.redact_clean_1kb_us} (${met(r.redact_clean_1kb_us, REDACTION_TARGETS.redact_clean_1kb_us, true)})`,
            ],
            ['clean 1 KB text, µs/call', r.redact_clean_1kb_text_us!, '-', '-'],
            ['clean 1 KB result with PII on, µs/call', r.pii_clean_1kb_us!, '-', '-'],
            ['dirty 1 KB result (2 secrets), µs/call', r.redact_dirty_1kb_us!, '-', '-'],
            [
              'large clean text, MB/s',
              r.redact_mb_s!,
              `${r.secretlint_mb_s!} (1 MB)`,
              `>= ${REDACTION_TARGETS.redact_mb_s} (${met(r.redact_mb_s, REDACTION_TARGETS.redact_mb_s, false)})`,
            ],
            ['large clean text with non-Latin-1, MB/s', r.redact_mb_s_unicode!, '-', '-'],
            ['10 MB structuredContent, MB/s', r.redact_structured_mb_s!, '-', '-'],
            ['recall', `${r.recall!} (${r.corpus_secrets} secrets, ${r.corpus_kinds} kinds)`, r.secretlint_recall!, '-'],
            [
              'false positives (clean corpus)',
              `${r.false_positives!} in ${r.clean_corpus_samples} samples`,
              r.secretlint_false_positives!,
              '-',
            ],
          ],
        ),
      );
      const targetsMet = r.redact_clean_1kb_us! <= REDACTION_TARGETS.redact_clean_1kb_us && r.redact_mb_s! >= REDACTION_TARGETS.redact_mb_s;
      console.log(
        JSON.stringify({ bench: 'redaction', ...r, targets_met: targetsMet, bench_seconds: round((performance.now() - began) / 1000, 1) }),
      );
    },
    (error: unknown) => {
      process.stderr.write(`redaction bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    },
  );
}
