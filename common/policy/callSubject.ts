/**
 * What a policy rule's `tools` patterns match for each kind of MCP request: the tool name
 * for `tools/call`, `resource:<uri>` for reads and subscriptions, `prompt:<name>` for
 * prompts (completions name what they complete). List methods, pings and notifications
 * have no subject: their results are filtered instead. Shared by the gateway and the
 * policy server's relay, so both decide the same call the same way.
 */
export interface CallSubject {
  name: string;
  args: Record<string, unknown>;
}

export function subjectOf(request: { method: string; params?: unknown }): CallSubject | undefined {
  const params = (request.params ?? {}) as Record<string, unknown>;
  switch (request.method) {
    case 'tools/call':
      return { name: String(params.name ?? ''), args: isRecord(params.arguments) ? params.arguments : {} };
    case 'resources/read':
    case 'resources/subscribe':
    case 'resources/unsubscribe':
      return { name: `resource:${String(params.uri ?? '')}`, args: { uri: params.uri } };
    case 'prompts/get':
      return { name: `prompt:${String(params.name ?? '')}`, args: isRecord(params.arguments) ? params.arguments : {} };
    case 'completion/complete': {
      const ref = isRecord(params.ref) ? params.ref : {};
      return ref.type === 'ref/prompt'
        ? { name: `prompt:${String(ref.name ?? '')}`, args: {} }
        : { name: `resource:${String(ref.uri ?? '')}`, args: {} };
    }
    default:
      return undefined;
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
