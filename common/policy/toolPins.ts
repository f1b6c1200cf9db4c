/**
 * Tool pins: a SHA-256 over the RFC 8785 canonical JSON of what a tool tells the model
 * (name, title, description, input and output schemas, annotations). An org approves a
 * pin in its policy (`servers[].tools.<name>.pin`) or the gateway records one on first
 * approved use; a tool whose definition no longer matches its pin is hidden ("rug pull").
 * Server instructions are pinned the same way, separately.
 */
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

export type Pin = `sha256:${string}`;

export interface PinnableTool {
  name: string;
  title?: unknown;
  description?: unknown;
  inputSchema?: unknown;
  outputSchema?: unknown;
  annotations?: unknown;
}

export function pinOfTool(tool: PinnableTool): Pin {
  return pinOf({
    name: tool.name,
    title: tool.title ?? null,
    description: tool.description ?? null,
    inputSchema: tool.inputSchema ?? null,
    outputSchema: tool.outputSchema ?? null,
    annotations: tool.annotations ?? null,
  });
}

export function pinOfInstructions(instructions: string | undefined): Pin {
  return pinOf({ instructions: instructions ?? null });
}

function pinOf(value: unknown): Pin {
  const canonical = canonicalize(value);
  if (canonical === undefined) throw new Error('cannot canonicalise a tool definition');
  return `sha256:${createHash('sha256').update(canonical).digest('hex')}`;
}
