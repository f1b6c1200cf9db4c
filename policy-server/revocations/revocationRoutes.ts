/**
 * Admin routes for revocations: revoke a user (`{sub}`), one session (`{sub, sessionId}`) or
 * the user's stored credential for one server (`{sub, serverId}`), list them, lift one.
 * Mounted behind authenticateCaller + requireAdmin.
 */
import express, { Router } from 'express';
import { z } from 'zod';
import { ApiError } from '../http/apiErrors';
import { callerOf } from '../http/callerAuthentication';
import type { RevocationsResponse } from '../../common/policy/policyServerApi';
import { OpaqueId, parseJsonBody } from '../http/requestValidation';
import { ServerIdSchema } from '../../common/serverTransport';
import type { RevocationList } from './revocationList';

const RevokeBody = z
  .strictObject({
    sub: OpaqueId,
    sessionId: OpaqueId.optional(),
    serverId: ServerIdSchema.optional(),
    reason: z.string().max(500).optional(),
  })
  .refine((body) => body.sessionId === undefined || body.serverId === undefined, {
    message: 'revoke a session or a server credential, not both',
  });
const LiftBody = z.strictObject({ sub: OpaqueId, sessionId: OpaqueId.optional(), serverId: ServerIdSchema.optional() });

export function revocationRoutes(revocations: RevocationList): Router {
  const router = Router();
  const json = express.json({ limit: '16kb' });

  router.post('/', json, async (req, res) => {
    const body = parseJsonBody(req, RevokeBody);
    const admin = callerOf(res);
    if (body.sub === admin.sub && body.sessionId === undefined && body.serverId === undefined) {
      throw new ApiError(
        400,
        'invalid_request',
        'You cannot revoke yourself: you would lose the access needed to lift it. Ask another admin.',
      );
    }
    const { revocation, streamsTold } = await revocations.revoke(body, admin.sub);
    res.status(201).json({ revocation, streamsTold });
  });

  router.get('/', async (_req, res) => {
    const body: RevocationsResponse = { revocations: await revocations.list() };
    res.set('Cache-Control', 'no-store').json(body);
  });

  router.delete('/', json, async (req, res) => {
    const body = parseJsonBody(req, LiftBody);
    if (!(await revocations.lift(body.sub, body.sessionId, callerOf(res).sub, body.serverId))) {
      throw new ApiError(
        404,
        'not_found',
        `${body.sub}${body.sessionId ? ` (session ${body.sessionId})` : ''}${body.serverId ? ` (credential for ${body.serverId})` : ''} is not revoked.`,
      );
    }
    res.status(204).end();
  });

  return router;
}
