/**
 * The public key set (no auth: gateways pin and refresh it) and key rotation (admin). The
 * JWKS never contains private key material: it is built from the public `x` only.
 */
import { Router, type RequestHandler } from 'express';
import type { RotateKeyResponse } from '../../common/policy/policyServerApi';
import type { Logger } from '../../common/log/logger';
import type { PolicyService } from '../policies/policyService';
import type { SigningKeyRing } from './signingKeyRing';

export function jwksRoute(keys: SigningKeyRing): RequestHandler {
  return async (_req, res) => {
    await keys.refresh();
    res.set('Cache-Control', 'public, max-age=60').type('application/jwk-set+json').send(JSON.stringify(keys.jwks()));
  };
}

export function keyAdminRoutes(keys: SigningKeyRing, policies: PolicyService, log: Logger): Router {
  const router = Router();
  router.post('/rotate', async (_req, res) => {
    const rotation = await rotateSigningKey(keys, policies);
    log.info('signing key rotated', { ...rotation });
    res.status(201).json(rotation);
  });
  return router;
}

/** Rotation with overlap: the old key stays published for the longest bundle lifetime any version granted. */
export async function rotateSigningKey(keys: SigningKeyRing, policies: PolicyService): Promise<RotateKeyResponse> {
  // One extra minute covers clock skew between this server and the gateways.
  const overlapSeconds = (await policies.maxBundleTtlSeconds()) + 60;
  const { kid, previousKid, previousServedUntil } = await keys.rotate(overlapSeconds);
  return { kid, ...(previousKid ? { previousKid } : {}), ...(previousServedUntil ? { previousServedUntil } : {}) };
}
