/**
 * Parsing YAML documents that people write by hand (gateway config, org policy) against a
 * zod schema, with every problem reported as `file:line:col: path: message` so an admin's
 * editor or CI job can point at it.
 */
import { isMap, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';

export class DocumentError extends Error {
  constructor(readonly file: string, readonly problems: string[], kind = 'document') {
    super(`Invalid ${kind} ${file}:\n  ${problems.join('\n  ')}`);
    this.name = 'DocumentError';
  }
}

export interface ParsedYaml<T> {
  value: T;
  /** `file:line:col` of the node at `path`, for problems found after schema validation. */
  locate(path: readonly PropertyKey[]): string;
}

export function parseYamlDocument<S extends z.ZodType>(text: string, file: string, schema: S, kind = 'document'): ParsedYaml<z.infer<S>> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new DocumentError(file, doc.errors.map((e) => {
      const pos = e.linePos?.[0];
      return `${file}:${pos?.line ?? 0}:${pos?.col ?? 0}: ${e.message.split('\n')[0]}`;
    }), kind);
  }
  const locate = (path: readonly PropertyKey[]) => {
    const node = nodeAt(doc, path);
    const pos = node?.range ? lineCounter.linePos(node.range[0]) : undefined;
    return `${file}:${pos?.line ?? 1}:${pos?.col ?? 1}`;
  };
  const result = schema.safeParse(doc.toJS());
  if (!result.success) {
    throw new DocumentError(file, result.error.issues.map((issue) =>
      `${locate(issue.path)}: ${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`), kind);
  }
  return { value: result.data, locate };
}

/** Finds the deepest YAML node along a validation path so errors point at the right line. */
function nodeAt(doc: Document, path: readonly PropertyKey[]): Node | undefined {
  let node = doc.contents as Node | undefined;
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find((item) => (item.key as { value?: unknown } | null)?.value === key);
      if (!pair) return node;
      node = (pair.value as Node | null) ?? (pair.key as Node);
    } else if (isSeq(node) && typeof key === 'number') {
      const item = node.items[key] as Node | undefined;
      if (!item) return node;
      node = item;
    } else {
      return node;
    }
  }
  return node;
}
