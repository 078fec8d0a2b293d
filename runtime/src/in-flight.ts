/**
 * A count of work in progress that can be awaited: what the drain waits for (requests, gRPC calls, session runs)
 * and what a superseded model version waits for before it is unloaded. Waiters are woken when the count reaches
 * zero, so nothing polls.
 */
export class InFlight {
  private active = 0;
  private waiters: Array<() => void> = [];

  /** Counts one piece of work until the returned function is called (once; later calls do nothing). */
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

  /** Resolves once nothing is in progress. */
  idle(): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}
