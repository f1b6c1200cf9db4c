/**
 * Parsing YAML documents that people write by hand (gateway config, org policy) against a
 * zod schema, with every problem reported as `file:line:col: path: message` so an admin's
 * editor or CI job can point at it.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { isMap, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';

export class DocumentError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
    kind = 'document',
  ) {
    super(`Invalid ${kind} ${file}:\n  ${problems.join('\n  ')}`);
    this.name = 'DocumentError';
  }
}

/** What a document is called in messages ("Invalid policy ..."), and the DocumentError subclass its problems are thrown as. */
export interface DocumentKind {
  name: string;
  error: new (file: string, problems: string[], kind: string) => DocumentError;
}

export interface ParsedYaml<T> {
  value: T;
  /** `file:line:col` of the node at `path`, for problems found after schema validation. */
  locate(path: readonly PropertyKey[], atKey?: boolean): string;
}

/**
 * `extraChecks` runs on the raw document whether or not the schema passed, so an author
 * sees every problem in one go; it returns `file:line:col: ...` lines.
 */
export function parseYamlDocument<S extends z.ZodType>(
  text: string,
  file: string,
  schema: S,
  kind: DocumentKind,
  extraChecks?: (raw: unknown, locate: ParsedYaml<unknown>['locate']) => string[],
): ParsedYaml<z.infer<S>> {
  const fail = (problems: string[]) => new kind.error(file, problems, kind.name);
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw fail(
      doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return `${file}:${pos.line}:${pos.col}: ${e.message.split('\n')[0]}`;
      }),
    );
  }
  const locate = (path: readonly PropertyKey[], atKey = false) => {
    const node = nodeAt(doc, path, atKey);
    const pos = node?.range ? lineCounter.linePos(node.range[0]) : undefined;
    return `${file}:${pos?.line ?? 1}:${pos?.col ?? 1}`;
  };
  const raw: unknown = doc.toJS();
  const result = schema.safeParse(raw);
  const extra = extraChecks?.(raw, locate) ?? [];
  if (!result.success) {
    throw fail([
      ...result.error.issues.map((issue) => {
        // Point an unknown key at the key itself, not at the start of its map.
        const where = issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined ? [...issue.path, issue.keys[0]] : issue.path;
        return `${locate(where, issue.code === 'unrecognized_keys')}: ${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`;
      }),
      ...extra,
    ]);
  }
  if (extra.length > 0) throw fail(extra);
  return { value: result.data, locate };
}

/** Reads `file` (made absolute) and hands its text to `parse`; a file that cannot be read is a problem of `kind` too. */
export function loadYamlFile<T>(file: string, kind: DocumentKind, parse: (text: string, absolute: string) => T): T {
  const absolute = resolve(file);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (error) {
    throw new kind.error(absolute, [`cannot read file: ${(error as NodeJS.ErrnoException).code ?? String(error)}`], kind.name);
  }
  return parse(text, absolute);
}

/** Finds the deepest YAML node along a validation path so errors point at the right line. */
function nodeAt(doc: Document, path: readonly PropertyKey[], atKey = false): Node | undefined {
  let node = doc.contents as Node | undefined;
  for (const [index, key] of path.entries()) {
    if (isMap(node)) {
      const pair = node.items.find((item) => (item.key as { value?: unknown } | null)?.value === key);
      if (!pair) return node;
      const last = index === path.length - 1;
      node = last && atKey ? (pair.key as Node) : ((pair.value as Node | null) ?? (pair.key as Node));
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
