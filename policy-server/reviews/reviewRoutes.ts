/**
 * Routes of the second-person review queue, mounted behind authenticateCaller (any signed-in
 * user; the queue itself decides who may see and decide what):
 *   POST /              the requester's gateway queues a call           -> 201 {review}
 *   GET  /              pending reviews the caller may decide           -> {reviews}
 *   GET  /:id?wait=<s>  one review; long-polls while it is pending      -> {review}
 *   POST /:id/decision  {decision: approve|deny, note?} by a reviewer   -> {review}
 */
import express, { Router } from 'express';
import { z } from 'zod';
import {
  REVIEW_MAX_ARGUMENT_BYTES,
  REVIEW_MAX_WAIT_SECONDS,
  type ReviewListResponse,
  type ReviewRecord,
  type ReviewResponse,
} from '../../common/policy/policyServerApi';
import { ApiError } from '../http/apiErrors';
import { callerOf } from '../http/callerAuthentication';
import { parseJsonBody, printableText } from '../http/requestValidation';
import type { ReviewQueue } from './reviewQueue';

const Name = printableText(1024);

const RequestBody = z.strictObject({
  server: Name,
  method: z.enum(['tools/call', 'resources/read', 'prompts/get']),
  tool: Name,
  arguments: z
    .record(z.string(), z.unknown())
    .refine(
      (args) => JSON.stringify(args).length <= REVIEW_MAX_ARGUMENT_BYTES,
      `arguments must be at most ${REVIEW_MAX_ARGUMENT_BYTES} bytes of JSON`,
    ),
});

/** What the API shows of a review: never the digest of the unredacted arguments. */
function shown(review: ReviewRecord & { argumentsDigest?: string }): ReviewRecord {
  const { argumentsDigest: _hidden, ...rest } = review;
  return rest;
}

const DecisionBody = z.strictObject({
  decision: z.enum(['approve', 'deny']),
  note: z.string().max(500).optional(),
});

const ReviewId = z.uuid();

export function reviewRoutes(queue: ReviewQueue): Router {
  const router = Router();
  const json = express.json({ limit: `${Math.ceil((REVIEW_MAX_ARGUMENT_BYTES * 2) / 1024)}kb` });

  router.post('/', json, async (req, res) => {
    const review = await queue.request(callerOf(res), parseJsonBody(req, RequestBody));
    const body: ReviewResponse = { review: shown(review) };
    res.status(201).set('Cache-Control', 'no-store').json(body);
  });

  router.get('/', async (_req, res) => {
    const body: ReviewListResponse = { reviews: (await queue.pendingFor(callerOf(res))).map(shown) };
    res.set('Cache-Control', 'no-store').json(body);
  });

  router.get('/:id', async (req, res) => {
    const id = reviewId(req.params.id);
    const wait = req.query.wait;
    if (wait !== undefined && (typeof wait !== 'string' || !/^[0-9]{1,2}$/.test(wait) || Number(wait) > REVIEW_MAX_WAIT_SECONDS)) {
      throw new ApiError(400, 'invalid_request', `wait must be a whole number of seconds from 0 to ${REVIEW_MAX_WAIT_SECONDS}.`);
    }
    // A gateway that gives up (its call was cancelled) stops the long-poll with its connection.
    const gone = new AbortController();
    res.on('close', () => gone.abort());
    const review = await queue.get(callerOf(res), id, wait === undefined ? 0 : Number(wait) * 1000, gone.signal);
    const body: ReviewResponse = { review: shown(review) };
    res.set('Cache-Control', 'no-store').json(body);
  });

  router.post('/:id/decision', json, async (req, res) => {
    const review = await queue.decide(callerOf(res), reviewId(req.params.id), parseJsonBody(req, DecisionBody));
    const body: ReviewResponse = { review: shown(review) };
    res.set('Cache-Control', 'no-store').json(body);
  });

  return router;
}

function reviewId(value: unknown): string {
  const parsed = ReviewId.safeParse(value);
  if (!parsed.success) throw new ApiError(400, 'invalid_request', 'A review id is a UUID.');
  return parsed.data;
}
