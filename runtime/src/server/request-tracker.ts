/**
 * Counts the requests accepted before shutdown began, so that a drain can wait for exactly those: requests that
 * arrive later are refused with 503 at once and must not keep the process alive.
 */
export class RequestTracker {
  private active = 0;
  private waiters: Array<() => void> = [];

  /** Counts a request until its response (an HTTP response) emits 'close', finished or aborted. */
  track(response: { once(event: 'close', listener: () => void): unknown }): void {
    response.once('close', this.start());
  }

  /** Counts a request until the returned function is called (once). */
  start(): () => void {
    this.active++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.active--;
      if (this.active === 0) for (const wake of this.waiters.splice(0)) wake();
    };
  }

  get count(): number {
    return this.active;
  }

  /** Resolves once no tracked request is open. */
  idle(): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}
