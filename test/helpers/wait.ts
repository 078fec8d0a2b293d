/**
 * Waiting in tests: a plain sleep, and a poll that says what never happened when it gives up. Shared by the suites
 * that watch a process or a server change state (a reload, a rotation, a drain, a server coming up).
 */

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface WaitOptions {
  /** Between probes; 250 ms unless told. */
  readonly intervalMs?: number;
  /**
   * Whether a probe that throws is tried again (its message ends the timeout error) or fails the wait at once with
   * that error. True unless told: set it false when an error is itself a failure (a request the server should have
   * answered), so a wait does not pass over it.
   */
  readonly retryErrors?: boolean;
}

/**
 * Polls `probe` until it returns something other than undefined, and returns that; throws after `timeoutMs` with
 * `what` and the last probe error, so a failure says what never happened. The last argument is the interval in ms,
 * or {@link WaitOptions}.
 */
export async function waitFor<T>(
  what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number, options: number | WaitOptions = 250,
): Promise<T> {
  const { intervalMs = 250, retryErrors = true } = typeof options === 'number' ? { intervalMs: options } : options;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      if (!retryErrors) throw error;
      lastError = error;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
    }
    await sleep(intervalMs);
  }
}
