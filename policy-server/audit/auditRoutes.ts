/**
 * Central audit over HTTP (contract in common/policy/policyServerApi.ts):
 *   POST /v1/audit          any signed-in user ships their own gateway's events; idempotent
 *                           by event id; answered only once the events are durable
 *   GET  /v1/audit          admins query: filters, `limit`, keyset `cursor`
 *   GET  /v1/audit/export   admins export every matching event as JSON lines or CSV, streamed
 * Authentication (ingest accepts revoked users; reads need an admin) is passed in, as the app composes it.
 */
import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import { AUDIT_DECISIONS, AuditEventSchema } from '../../common/audit/auditEvent';
import { auditCsvHeader, auditCsvRow, auditJsonlLine } from '../../common/audit/auditExportFormat';
import {
  AUDIT_BATCH_MAX_BYTES,
  AUDIT_BATCH_MAX_EVENTS,
  AUDIT_EXPORT_CONTENT_TYPES,
  AUDIT_EXPORT_FORMATS,
  AUDIT_QUERY_DEFAULT_LIMIT,
  AUDIT_QUERY_MAX_LIMIT,
  POLICY_SERVER_PATHS,
  type AuditBatchResponse,
  type AuditExportFormat,
  type AuditQueryFilters,
  type AuditQueryResponse,
} from '../../common/policy/policyServerApi';
import { ApiError } from '../http/apiErrors';
import { callerOf } from '../http/callerAuthentication';
import { AuditStoreUnavailableError, InvalidAuditCursorError, type AuditStore } from './auditStore';

/** Events per store read while exporting. */
const EXPORT_PAGE = 1000;

const BatchBody = z.strictObject({ events: z.array(AuditEventSchema).min(1).max(AUDIT_BATCH_MAX_EVENTS) });

const filterText = z.string().min(1).max(1024);
const filterTime = z.iso.datetime({ offset: true, error: 'must be an ISO 8601 time, e.g. 2025-01-31T00:00:00Z' });
const filterFields = {
  user: filterText.optional(),
  server: filterText.optional(),
  tool: filterText.optional(),
  decision: z.enum(AUDIT_DECISIONS).optional(),
  from: filterTime.optional(),
  to: filterTime.optional(),
};
const QueryParams = z.strictObject({
  ...filterFields,
  limit: z
    .string()
    .regex(/^[1-9][0-9]{0,5}$/, 'must be a whole number from 1')
    .transform(Number)
    .pipe(z.number().max(AUDIT_QUERY_MAX_LIMIT, `must be at most ${AUDIT_QUERY_MAX_LIMIT}`))
    .optional(),
  cursor: z.string().min(1).max(128).optional(),
});
const ExportParams = z.strictObject({ ...filterFields, format: z.enum(AUDIT_EXPORT_FORMATS).default('jsonl') });

export function auditRoutes(store: AuditStore, auth: { ingest: RequestHandler; read: RequestHandler[] }): Router {
  const router = Router();
  const json = express.json({ limit: AUDIT_BATCH_MAX_BYTES });

  router.post('/', auth.ingest, json, async (req, res) => {
    const { events } = parseBatch(req);
    const caller = callerOf(res);
    // A user ships only their own trail: nobody can put calls in someone else's name.
    const foreign = events.find((event) => event.user !== caller.sub);
    if (foreign) {
      throw new ApiError(
        403,
        'forbidden',
        `Audit events can only be sent by the user they record: event ${foreign.id} is for ${JSON.stringify(foreign.user)}, but you are ${JSON.stringify(caller.sub)}. Nothing in this batch was stored.`,
      );
    }
    const body: AuditBatchResponse = await storeUnavailableAs503(() => store.append(events));
    res.set('Cache-Control', 'no-store').json(body);
  });

  router.get('/', ...auth.read, async (req, res) => {
    const { limit, cursor, ...filters } = parseQuery(req, QueryParams);
    const page = await storeUnavailableAs503(() =>
      store.query(filters, { limit: limit ?? AUDIT_QUERY_DEFAULT_LIMIT, ...(cursor !== undefined ? { cursor } : {}) }),
    );
    const body: AuditQueryResponse = { events: page.events, ...(page.nextCursor !== undefined ? { nextCursor: page.nextCursor } : {}) };
    res.set('Cache-Control', 'no-store').json(body);
  });

  router.get(POLICY_SERVER_PATHS.auditExport.slice(POLICY_SERVER_PATHS.audit.length), ...auth.read, async (req, res) => {
    const { format, ...filters } = parseQuery(req, ExportParams);
    await streamExport(store, filters, format, res);
  });

  return router;
}

async function streamExport(store: AuditStore, filters: AuditQueryFilters, format: AuditExportFormat, res: Response): Promise<void> {
  // The first page is read before the headers go out, so a failing store still gets a proper error answer.
  let page = await storeUnavailableAs503(() => store.query(filters, { limit: EXPORT_PAGE }));
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  res.status(200).set({
    'Cache-Control': 'no-store',
    'Content-Type': AUDIT_EXPORT_CONTENT_TYPES[format],
    'Content-Disposition': `attachment; filename="gatehouse-audit-${stamp}.${format}"`,
  });
  let gone = false;
  res.once('close', () => {
    gone = true;
  });
  if (format === 'csv') res.write(auditCsvHeader());
  for (;;) {
    let chunk = '';
    for (const event of page.events) chunk += format === 'csv' ? auditCsvRow(event) : auditJsonlLine(event);
    if (chunk.length > 0 && !res.write(chunk)) await drained(res);
    if (gone || page.nextCursor === undefined) break;
    const cursor = page.nextCursor;
    page = await store.query(filters, { limit: EXPORT_PAGE, cursor });
  }
  res.end();
}

function drained(res: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}

function parseBatch(req: Request): z.infer<typeof BatchBody> {
  if (!req.is('application/json'))
    throw new ApiError(415, 'unsupported_media_type', 'Send the audit batch as JSON (Content-Type: application/json).');
  const result = BatchBody.safeParse(req.body);
  if (!result.success)
    throw new ApiError(400, 'invalid_request', `The audit batch is invalid: ${describeIssues(result.error.issues, 'body')}.`);
  return result.data;
}

function parseQuery<S extends z.ZodType>(req: Request, schema: S): z.infer<S> {
  const result = schema.safeParse(req.query);
  if (!result.success)
    throw new ApiError(400, 'invalid_request', `Invalid query parameters: ${describeIssues(result.error.issues, 'query')}.`);
  return result.data;
}

/** The first few problems: a broken batch of 500 events must not answer with 500 messages. */
function describeIssues(issues: z.core.$ZodIssue[], whole: string): string {
  const shown = issues.slice(0, 5).map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : whole}: ${issue.message}`);
  return issues.length > shown.length ? `${shown.join('; ')}; and ${issues.length - shown.length} more` : shown.join('; ');
}

async function storeUnavailableAs503<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof AuditStoreUnavailableError)
      throw new ApiError(503, 'audit_unavailable', error.message, {}, { 'Retry-After': '30' });
    if (error instanceof InvalidAuditCursorError) throw new ApiError(400, 'invalid_request', error.message);
    throw error;
  }
}
