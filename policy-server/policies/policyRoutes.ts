/**
 * Admin routes for the org policy: publish (YAML body), history, one version's text, diff
 * between versions, rollback. Mounted behind authenticateCaller + requireAdmin.
 */
import express, { Router } from 'express';
import { z } from 'zod';
import { ApiError } from '../http/apiErrors';
import { callerOf } from '../http/callerAuthentication';
import {
  POLICY_CONTENT_TYPES,
  type PolicyHistoryResponse,
  type PublishResponse,
  type RollbackResponse,
} from '../../common/policy/policyServerApi';
import { parseJsonBody, parseVersionNumber } from '../http/requestValidation';
import { PolicyVersionNotFoundError, type PolicyService } from './policyService';

export function policyRoutes(policies: PolicyService, maxPolicyBytes: number): Router {
  const router = Router();
  const yamlBody = express.text({ type: [...POLICY_CONTENT_TYPES], limit: maxPolicyBytes, defaultCharset: 'utf-8' });

  router.post('/', yamlBody, async (req, res) => {
    if (typeof req.body !== 'string') {
      throw new ApiError(
        415,
        'unsupported_media_type',
        `Send the policy YAML as the request body with Content-Type ${POLICY_CONTENT_TYPES.slice(0, 2).join(' or ')}.`,
      );
    }
    const { record, unchanged } = await policies.publish(req.body, callerOf(res).sub);
    const body: PublishResponse = { version: record.version, sha256: record.sha256, ...(unchanged ? { unchanged: true as const } : {}) };
    res
      .status(unchanged ? 200 : 201)
      .location(`/v1/policies/${record.version}`)
      .json(body);
  });

  router.get('/', async (_req, res) => {
    const versions = await policies.history();
    const body: PolicyHistoryResponse = { current: versions.at(-1)?.version ?? null, versions };
    res.set('Cache-Control', 'no-store').json(body);
  });

  router.get('/diff', async (req, res) => {
    const from = parseVersionNumber(req.query.from, 'from');
    const to = parseVersionNumber(req.query.to, 'to');
    const diff = await withVersions(() => policies.diff(from, to));
    res.set('Cache-Control', 'no-store').type('text/x-diff; charset=utf-8').send(diff);
  });

  router.post('/rollback', express.json({ limit: '16kb' }), async (req, res) => {
    const { version } = parseJsonBody(req, z.strictObject({ version: z.number().int().min(1) }));
    const record = await withVersions(() => policies.rollback(version, callerOf(res).sub));
    const body: RollbackResponse = { version: record.version, rolledBackFrom: version, sha256: record.sha256 };
    res.status(201).location(`/v1/policies/${record.version}`).json(body);
  });

  router.get('/:version', async (req, res) => {
    const version = parseVersionNumber(req.params.version, 'version');
    const record = await withVersions(() => policies.version(version));
    res.set({ 'Cache-Control': 'no-store', 'X-Policy-Sha256': record.sha256 }).type('application/yaml; charset=utf-8').send(record.text);
  });

  return router;
}

async function withVersions<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof PolicyVersionNotFoundError)
      throw new ApiError(404, 'not_found', `${error.message} See GET /v1/policies for the history.`);
    throw error;
  }
}
