/** `GET /v1/effective-policy`: the caller's signed bundle (application/jwt), with ETag / 304. */
import type { RequestHandler } from 'express';
import { ApiError } from '../http/apiErrors';
import { callerOf } from '../http/callerAuthentication';
import { BUNDLE_CONTENT_TYPE } from '../../common/policy/policyServerApi';
import { NoPolicyError, type EffectivePolicyBundles } from './effectivePolicyBundles';

export function effectivePolicyRoute(bundles: EffectivePolicyBundles): RequestHandler {
  return async (req, res) => {
    let answer;
    try {
      answer = await bundles.forCaller(callerOf(res), req.get('if-none-match'));
    } catch (error) {
      if (error instanceof NoPolicyError) throw new ApiError(503, 'no_policy', error.message, {}, { 'Retry-After': '60' });
      throw error;
    }
    // `private`: a bundle is one user's; `no-cache`: revalidate (cheaply, by ETag) every time.
    res.set({ ETag: answer.etag, 'Cache-Control': 'private, no-cache', 'X-Policy-Version': String(answer.version), Vary: 'Authorization' });
    if (answer.status === 304) {
      res.status(304).end();
      return;
    }
    res.status(200).type(BUNDLE_CONTENT_TYPE).send(answer.jws);
  };
}
