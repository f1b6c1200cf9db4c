/**
 * The relay's filter on list answers (`tools/list`, `resources/list`, ...): the upstream's
 * whole answer is read (bounded), the result for the list request is filtered to what the
 * caller's policy lists (common/policy/listFilter.ts, as the gateway does), and the answer
 * is written again in the form it came: JSON, or server-sent events with every other event
 * (notifications, priming) passed as it was.
 */
import { createParser } from 'eventsource-parser';
import { isRecord } from '../../common/policy/callSubject';

/** An answer larger than this is refused rather than held in memory. */
export const MAX_LIST_ANSWER_BYTES = 8 * 1024 * 1024;

export class ListAnswerTooLargeError extends Error {}

export async function readBounded(body: AsyncIterable<Buffer>, limit = MAX_LIST_ANSWER_BYTES): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) throw new ListAnswerTooLargeError(`the list answer is larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

type Filter = (result: Record<string, unknown>) => Record<string, unknown>;

/** The answer text with the result for request `id` filtered; anything unparseable is dropped, not passed. */
export function filterListAnswer(text: string, contentType: string, id: string | number, filter: Filter): string {
  if (contentType.includes('text/event-stream')) return filterEvents(text, id, filter);
  return JSON.stringify(filterMessage(JSON.parse(text) as unknown, id, filter));
}

/**
 * Every result in the answer is filtered, whatever its id says (an upstream answering `"1"`
 * for `1`, or a batch, must not slip a list past the filter); `id` is kept for the reader.
 */
function filterMessage(message: unknown, _id: string | number, filter: Filter): unknown {
  if (Array.isArray(message)) return message.map((item) => filterMessage(item, _id, filter));
  if (!isRecord(message) || !isRecord(message.result)) return message;
  return { ...message, result: filter(message.result) };
}

function filterEvents(text: string, id: string | number, filter: Filter): string {
  let out = '';
  const parser = createParser({
    onEvent: (event) => {
      let data = event.data;
      if (data) {
        try {
          data = JSON.stringify(filterMessage(JSON.parse(data) as unknown, id, filter));
        } catch {
          return; // not JSON: an upstream event the relay cannot vouch for is not passed on
        }
      }
      out += `${event.id ? `id: ${event.id}\n` : ''}${event.event ? `event: ${event.event}\n` : ''}data: ${data}\n\n`;
    },
    onRetry: (ms) => {
      out += `retry: ${ms}\n\n`;
    },
  });
  parser.feed(text);
  return out;
}
