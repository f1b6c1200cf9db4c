/**
 * Unified diff of two policy texts, line by line (Myers' O((N+M)D) algorithm), printed the
 * way `diff -u` and Git do so admins read it without a new notation. Written here because
 * no diff package is a dependency of this project.
 */

type Edit = { op: ' ' | '-' | '+'; line: string };

// Beyond this many differing lines the diff is shown as "replace everything", which keeps
// memory bounded (the search stores O(D^2) numbers) for unrelated documents.
const MAX_EDIT_DISTANCE = 4000;

export function unifiedDiff(before: string, after: string, labels: { from: string; to: string }, context = 3): string {
  const a = splitLines(before);
  const b = splitLines(after);
  const edits = diffLines(a, b);
  if (edits.every((e) => e.op === ' ')) return '';
  const out = [`--- ${labels.from}`, `+++ ${labels.to}`];
  for (const hunk of hunks(edits, context)) out.push(...hunk);
  return out.join('\n') + '\n';
}

function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

function diffLines(a: string[], b: string[]): Edit[] {
  // Common prefix and suffix cost nothing to find and usually cover most of a policy.
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const middle = myers(a.slice(start, endA), b.slice(start, endB));
  return [
    ...a.slice(0, start).map((line) => ({ op: ' ' as const, line })),
    ...middle,
    ...a.slice(endA).map((line) => ({ op: ' ' as const, line })),
  ];
}

function myers(a: string[], b: string[]): Edit[] {
  const n = a.length;
  const m = b.length;
  if (n === 0 || m === 0) return [...a.map((line) => ({ op: '-' as const, line })), ...b.map((line) => ({ op: '+' as const, line }))];
  const max = Math.min(n + m, MAX_EDIT_DISTANCE);
  const offset = max + 1;
  const v = new Int32Array(2 * max + 3);
  const trace: Int32Array[] = [];
  for (let d = 0; d <= max; d++) {
    trace.push(v.slice(offset - d - 1, offset + d + 2));
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[offset + k - 1]! < v[offset + k + 1]!) ? v[offset + k + 1]! : v[offset + k - 1]! + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) return backtrack(a, b, trace, d);
    }
  }
  return [...a.map((line) => ({ op: '-' as const, line })), ...b.map((line) => ({ op: '+' as const, line }))];
}

function backtrack(a: string[], b: string[], trace: Int32Array[], distance: number): Edit[] {
  const edits: Edit[] = [];
  let x = a.length;
  let y = b.length;
  for (let d = distance; d > 0; d--) {
    // trace[d] holds v[k] for k in [-d-1, d+1] as it was before step d.
    const row = trace[d]!;
    const at = (k: number) => row[k + d + 1]!;
    const k = x - y;
    const prevK = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
    const prevX = at(prevK);
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) {
      edits.push({ op: ' ', line: a[--x]! });
      y--;
    }
    if (x === prevX) edits.push({ op: '+', line: b[--y]! });
    else edits.push({ op: '-', line: a[--x]! });
  }
  while (x > 0 && y > 0) {
    edits.push({ op: ' ', line: a[--x]! });
    y--;
  }
  return edits.reverse();
}

function hunks(edits: Edit[], context: number): string[][] {
  const result: string[][] = [];
  // Line numbers (1-based) in the old and new text before each edit.
  const positions: Array<{ oldLine: number; newLine: number }> = [];
  let oldLine = 1;
  let newLine = 1;
  for (const edit of edits) {
    positions.push({ oldLine, newLine });
    if (edit.op !== '+') oldLine++;
    if (edit.op !== '-') newLine++;
  }
  let i = 0;
  while (i < edits.length) {
    if (edits[i]!.op === ' ') {
      i++;
      continue;
    }
    const start = Math.max(0, i - context);
    // Grow the hunk over later changes separated by at most 2 * context unchanged lines.
    let lastChange = i + 1;
    for (let j = i; j < edits.length; j++) {
      if (edits[j]!.op !== ' ') lastChange = j + 1;
      else if (j - lastChange >= 2 * context) break;
    }
    const end = Math.min(edits.length, lastChange + context);
    const slice = edits.slice(start, end);
    const first = positions[start]!;
    const oldCount = slice.filter((e) => e.op !== '+').length;
    const newCount = slice.filter((e) => e.op !== '-').length;
    const range = (line: number, count: number) => (count === 0 ? `${line - 1},0` : count === 1 ? `${line}` : `${line},${count}`);
    result.push([`@@ -${range(first.oldLine, oldCount)} +${range(first.newLine, newCount)} @@`, ...slice.map((e) => `${e.op}${e.line}`)]);
    i = end;
  }
  return result;
}
