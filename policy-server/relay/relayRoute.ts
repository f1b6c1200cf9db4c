/**
 * `/relay/<serverId>/mcp`: Streamable HTTP to a catalog server whose credential is a shared
 * service key (credential mode `shared-key`), so the key stays on this server. For each
 * request the caller is authenticated (revoked users and sessions are refused at once, by
 * `authenticateCaller` in front), the server must be one the caller's own effective policy
 * reaches with mode `shared-key`, and every call (`tools/call`, `resources/read`,
 * `prompts/get`...) is decided again here: `allow` and the developer's own `confirm` (their
 * gateway asked them) pass; `deny` and reviewer-group confirmations (the relay cannot see
 * that review) are refused with the policy's words. The upstream gets the service key and
 * the MCP headers, never the caller's token (no token passthrough); the answer comes back
 * streamed, with any echo of the key scrubbed. Each call is audited centrally with the
 * caller's identity (flag `via-relay`) before its answer leaves. Upstream session ids are
 * bound to the user who opened them.
 */
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import express, { type Request, type Response, type Router } from 'express';
import { request, type Dispatcher } from 'undici';
import { createAuditEventId, type AuditEvent } from '../../common/audit/auditEvent';
import { compileEffectivePolicy } from '../../common/policy/effectivePolicy';
import type { CallerIdentity } from '../../common/policy/identity';
import { subjectOf } from '../../common/policy/callSubject';
import { PolicyDecider } from '../../common/policy/policyDecider';
import { describeError, type Logger } from '../../common/log/logger';
import type { AuditStore } from '../audit/auditStore';
import { ApiError } from '../http/apiErrors';
import { callerOf } from '../http/callerAuthentication';
import type { PolicyService } from '../policies/policyService';
import type { SecretStore } from '../secrets/secretStore';
import { KeyScrubber } from './keyScrubber';

/** JSON-RPC error code for calls the policy refuses (the gateway's too). */
const POLICY_DENIED = -32003;
const AUDITED = new Set(['tools/call', 'resources/read', 'prompts/get']);
/** Headers a client may send on to the upstream; everything else (Authorization, cookies...) stays here. */
const FORWARDED_REQUEST_HEADERS = ['content-type', 'accept', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id'];
const FORWARDED_RESPONSE_HEADERS = ['content-type', 'mcp-session-id', 'cache-control'];
const MAX_SESSIONS = 50_000;
const MAX_DECIDERS = 1_000;

export interface RelayDeps {
  policies: PolicyService;
  /** Absent when the server runs without `--secrets-key-file`: every relay call is refused. */
  secrets: SecretStore | undefined;
  audit: AuditStore;
  maxBodyBytes: number;
  log: Logger;
  dispatcher?: Dispatcher;
}

type JsonRpcMessage = { jsonrpc: '2.0'; id?: string | number; method?: string; params?: unknown };

export function relayRoutes(deps: RelayDeps): Router {
  const router = express.Router();
  const deciders = new Map<string, PolicyDecider>();
  /** Upstream session id -> the user who opened it (in memory: a restart makes clients start new sessions). */
  const sessionOwners = new Map<string, string>();

  const deciderFor = async (caller: CallerIdentity): Promise<PolicyDecider> => {
    const current = await deps.policies.current();
    if (!current) throw new ApiError(503, 'no_policy', 'No policy is published yet.');
    const key = `${current.version}:${createHash('sha256').update(JSON.stringify(caller)).digest('base64url')}`;
    let decider = deciders.get(key);
    if (!decider) {
      decider = new PolicyDecider(compileEffectivePolicy(current.document, current.version, caller));
      if (deciders.size >= MAX_DECIDERS) deciders.delete(deciders.keys().next().value!);
      deciders.set(key, decider);
    }
    return decider;
  };

  router.all('/:serverId/mcp', express.raw({ type: () => true, limit: deps.maxBodyBytes }), async (req: Request, res: Response) => {
    const caller = callerOf(res);
    const serverId = String(req.params.serverId);
    const decider = await deciderFor(caller);
    const entry = decider.policy.servers.find((server) => server.id === serverId);
    if (!entry || entry.credential.mode !== 'shared-key') {
      throw new ApiError(404, 'not_found', `No server "${serverId}" that your policy lets you reach through the relay.`);
    }
    if (entry.transport.type !== 'streamable-http') throw new ApiError(501, 'not_relayable', `"${serverId}" is not a Streamable HTTP server; the relay serves only those.`);
    if (!deps.secrets) throw new ApiError(503, 'no_secret_store', 'This policy server has no secret store (--secrets-key-file), so it cannot relay.');
    const key = await deps.secrets.get(entry.credential.secretRef);
    if (!key) throw new ApiError(503, 'no_service_key', `The service key for "${serverId}" is not set; an admin sets it with: gatehouse secret set ${entry.credential.secretRef}`);

    const sessionId = req.get('mcp-session-id');
    if (sessionId !== undefined && sessionOwners.has(sessionId) && sessionOwners.get(sessionId) !== caller.sub) {
      throw new ApiError(404, 'not_found', 'No such session.'); // another user's session: reveal nothing
    }

    let call: { message: JsonRpcMessage; subject: string; rule?: string; decision: 'allow' | 'confirm-approved' } | undefined;
    if (req.method === 'POST') {
      const message = parseMessage(req.body);
      if (message.method && message.id !== undefined && AUDITED.has(message.method)) {
        const subject = subjectOf({ method: message.method, params: message.params });
        const decision = decider.decide(serverId, subject?.name ?? '', subject?.args ?? {});
        const refusal = decision.effect === 'deny'
          ? decision.message
          : decision.effect === 'confirm' && decision.reviewers !== undefined
            ? `${decision.message} A reviewer from "${decision.reviewers}" must approve it, which the relay cannot check; the call is refused.`
            : undefined;
        if (refusal !== undefined) {
          await record(deps.audit, caller, serverId, message, subject?.name, 'deny', decision.ruleId, 'denied', performance.now());
          res.status(200).set('Cache-Control', 'no-store').json({ jsonrpc: '2.0', id: message.id, error: { code: POLICY_DENIED, message: refusal } });
          return;
        }
        call = { message, subject: subject?.name ?? '', ...(decision.ruleId ? { rule: decision.ruleId } : {}), decision: decision.effect === 'confirm' ? 'confirm-approved' : 'allow' };
      }
    }

    const started = performance.now();
    const headers: Record<string, string> = { authorization: `Bearer ${key}` };
    for (const name of FORWARDED_REQUEST_HEADERS) {
      const value = req.get(name);
      if (value !== undefined) headers[name] = value;
    }
    const aborter = new AbortController();
    res.on('close', () => aborter.abort());
    let upstream: Dispatcher.ResponseData;
    try {
      upstream = await request(entry.transport.url, {
        method: req.method as Dispatcher.HttpMethod,
        headers,
        ...(req.method === 'POST' ? { body: req.body as Buffer } : {}),
        signal: aborter.signal,
        ...(deps.dispatcher ? { dispatcher: deps.dispatcher } : {}),
      });
    } catch (error) {
      deps.log.warn('relay upstream unreachable', { server: serverId, error: describeError(error).replaceAll(key, '[REDACTED]') });
      if (call) await record(deps.audit, caller, serverId, call.message, call.subject, call.decision, call.rule, 'upstream-error', started);
      throw new ApiError(502, 'upstream_unreachable', `The relay could not reach "${serverId}".`);
    }
    const upstreamSession = upstream.headers['mcp-session-id'];
    if (typeof upstreamSession === 'string') {
      if (sessionOwners.size >= MAX_SESSIONS) sessionOwners.delete(sessionOwners.keys().next().value!);
      sessionOwners.set(upstreamSession, caller.sub);
    }
    if (req.method === 'DELETE' && sessionId !== undefined && upstream.statusCode < 300) sessionOwners.delete(sessionId);
    // Durable before the answer leaves, like the gateway's own audit.
    if (call) await record(deps.audit, caller, serverId, call.message, call.subject, call.decision, call.rule, upstream.statusCode < 400 ? 'ok' : 'upstream-error', started);
    res.status(upstream.statusCode);
    for (const name of FORWARDED_RESPONSE_HEADERS) {
      const value = upstream.headers[name];
      if (typeof value === 'string') res.set(name, value);
    }
    if (upstream.statusCode === 401 || upstream.statusCode === 403) {
      deps.log.warn('the upstream refused the service key', { server: serverId, status: upstream.statusCode, secretRef: entry.credential.secretRef });
    }
    try {
      await pipeline(upstream.body, new KeyScrubber(key), res);
    } catch (error) {
      if (!aborter.signal.aborted) deps.log.warn('relay stream ended early', { server: serverId, error: describeError(error).replaceAll(key, '[REDACTED]') });
    }
  });
  return router;
}

/** One JSON-RPC message (MCP has no batches since 2025-06-18); anything else is a 400. */
function parseMessage(body: unknown): JsonRpcMessage {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.isBuffer(body) ? body.toString('utf8') : '');
  } catch {
    throw new ApiError(400, 'parse_error', 'The body is not JSON.');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || (parsed as { jsonrpc?: unknown }).jsonrpc !== '2.0') {
    throw new ApiError(400, 'invalid_request', 'The body is not one JSON-RPC 2.0 message.');
  }
  return parsed as JsonRpcMessage;
}

async function record(
  audit: AuditStore, caller: CallerIdentity, server: string, message: JsonRpcMessage, subject: string | undefined,
  decision: AuditEvent['decision'], rule: string | undefined, status: AuditEvent['status'], started: number,
): Promise<void> {
  const event: AuditEvent = {
    id: createAuditEventId(),
    time: new Date().toISOString(),
    user: caller.sub,
    client: { name: 'gatehouse-relay', version: '0.1.0' },
    server,
    method: message.method!,
    ...(subject ? { tool: subject.slice(0, 1024) } : {}),
    decision,
    ...(rule ? { rule } : {}),
    status,
    redactions: {},
    flags: ['via-relay'],
    latencyMs: Math.round((performance.now() - started) * 1000) / 1000,
  };
  await audit.append([event]);
}
