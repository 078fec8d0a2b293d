/**
 * Counts the requests accepted before shutdown began, so that a drain can wait for exactly those: requests that
 * arrive later are refused with 503 at once and must not keep the process alive.
 */
import type { ServerResponse } from 'node:http';

export class RequestTracker {
  private active = 0;
  private waiters: Array<() => void> = [];

  /** Counts a request until its response closes (finished or aborted). */
  track(response: Pick<ServerResponse, 'once'>): void {
    this.active++;
    response.once('close', () => {
      this.active--;
      if (this.active === 0) for (const wake of this.waiters.splice(0)) wake();
    });
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
