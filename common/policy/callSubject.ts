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

/**
 * Names the policy cannot judge safely: a tool named like a resource or prompt (it would
 * borrow their rules), and resource URIs with dot segments or encoded separators, which
 * could step outside a prefix a rule allows.
 */
export function ambiguousName(method: string, name: string): string | undefined {
  if ((method === 'tools/call' || method === 'tools/list') && /^(resource|prompt):/.test(name)) {
    return `Gatehouse refuses tool "${name}": tool names may not start with "resource:" or "prompt:".`;
  }
  if (name.startsWith('resource:')) {
    const uri = name.slice('resource:'.length);
    if (/(^|\/)\.\.?(\/|$)|%2e|%2f|%5c|\\/i.test(uri))
      return `Gatehouse refuses resource "${uri}": it contains dot segments or encoded separators.`;
  }
  return undefined;
}

/** JSON-RPC error code for calls the policy refuses (server-defined range), from the gateway and the relay alike. */
export const POLICY_DENIED = -32003;

/** Methods that act or read, so each call is audited (refusals of anything are audited too). */
export const AUDITED_METHODS: ReadonlySet<string> = new Set(['tools/call', 'resources/read', 'prompts/get']);

/** Client-to-server methods a governed client may send (the gateway and the relay refuse anything else). */
export const RELAYED_CLIENT_METHODS: ReadonlySet<string> = new Set([
  'ping',
  'tools/list',
  'tools/call',
  'resources/list',
  'resources/read',
  'resources/templates/list',
  'resources/subscribe',
  'resources/unsubscribe',
  'prompts/list',
  'prompts/get',
  'completion/complete',
  'logging/setLevel',
]);
