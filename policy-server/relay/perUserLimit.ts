/**
 * At most `max` requests in flight per user through the relay (open SSE streams count until
 * they end): the shared service key's upstream limits are shared by everyone, so one user
 * must not use them all.
 */
export class PerUserLimit {
  private readonly inFlight = new Map<string, number>();

  constructor(private readonly max: number) {}

  /** A release function, or undefined when the user is at the limit. */
  take(user: string): (() => void) | undefined {
    const now = this.inFlight.get(user) ?? 0;
    if (now >= this.max) return undefined;
    this.inFlight.set(user, now + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.inFlight.get(user) ?? 1) - 1;
      if (left <= 0) this.inFlight.delete(user);
      else this.inFlight.set(user, left);
    };
  }
}
