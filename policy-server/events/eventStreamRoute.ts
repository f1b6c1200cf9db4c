/** `GET /v1/events`: the push stream a gateway holds open (see policyEventHub.ts). */
import type { RequestHandler } from 'express';
import { ApiError } from '../http/apiErrors';
import { callerOf } from '../http/callerAuthentication';
import type { PolicyService } from '../policies/policyService';
import { StreamLimitError, type PolicyEventHub } from './policyEventHub';

export function eventStreamRoute(events: PolicyEventHub, policies: PolicyService): RequestHandler {
  return async (req, res) => {
    if (!req.accepts('text/event-stream'))
      throw new ApiError(406, 'not_acceptable', 'This endpoint is a server-sent event stream; send Accept: text/event-stream.');
    const current = await policies.current();
    try {
      events.open(res, callerOf(res), current?.version);
    } catch (error) {
      if (error instanceof StreamLimitError)
        throw new ApiError(429, 'too_many_streams', `Cannot open another event stream: ${error.message}.`, {}, { 'Retry-After': '30' });
      throw error;
    }
  };
}
