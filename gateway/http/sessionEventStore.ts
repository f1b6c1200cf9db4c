/**
 * A bounded, in-memory record of the SSE events of one client session, so a client whose
 * stream dropped (or that polls, SEP-1699) can resume with Last-Event-ID and miss nothing
 * recent. Bounded because a session may live for days; the oldest events go first.
 */
import type { EventStore } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

interface StoredEvent {
  id: string;
  streamId: string;
  message: JSONRPCMessage;
}

export class SessionEventStore implements EventStore {
  private readonly events: StoredEvent[] = [];
  private readonly index = new Map<string, number>();
  private nextSequence = 1;
  private dropped = 0;

  constructor(private readonly capacity = 1_000) {}

  async storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    const id = `${streamId}_${this.nextSequence++}`;
    this.events.push({ id, streamId, message });
    this.index.set(id, this.dropped + this.events.length - 1);
    if (this.events.length > this.capacity) {
      const old = this.events.shift()!;
      this.index.delete(old.id);
      this.dropped++;
    }
    return id;
  }

  async getStreamIdForEventId(eventId: string): Promise<string | undefined> {
    const position = this.index.get(eventId);
    return position === undefined ? undefined : this.events[position - this.dropped]?.streamId;
  }

  async replayEventsAfter(
    lastEventId: string,
    { send }: { send: (eventId: string, message: JSONRPCMessage) => Promise<void> },
  ): Promise<string> {
    const position = this.index.get(lastEventId);
    const last = position === undefined ? undefined : this.events[position - this.dropped];
    if (!last) throw new Error('unknown or expired Last-Event-ID');
    for (let i = position! - this.dropped + 1; i < this.events.length; i++) {
      const event = this.events[i]!;
      if (event.streamId === last.streamId) await send(event.id, event.message);
    }
    return last.streamId;
  }
}
