// Bounded polling helpers. Integration tests observe servers that change state asynchronously
// (connections closing, requests arriving); polling with a hard deadline keeps every wait finite
// and turns a hang into a readable failure instead of a test-timeout.

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

export interface WaitForOptions {
  /** Give up after this long (default 2000 ms). */
  timeoutMs?: number;
  /** Pause between attempts (default 10 ms). */
  intervalMs?: number;
  /** Prefix for the timeout error message. */
  message?: string;
}

/**
 * Calls `predicate` until it returns a truthy value (which is returned) or the deadline passes
 * (rejects with the last thrown error or returned value in the message). A predicate that throws
 * counts as "not yet". The second argument may be a plain timeout in ms.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  options: WaitForOptions | number = {},
): Promise<NonNullable<T>> {
  const opts: WaitForOptions = typeof options === 'number' ? { timeoutMs: options } : options;
  const timeoutMs = opts.timeoutMs ?? 2000;
  const intervalMs = Math.max(1, opts.intervalMs ?? 10);
  const deadline = Date.now() + timeoutMs;
  const maxAttempts = Math.ceil(timeoutMs / intervalMs) + 2; // belt and braces: bounded even if the clock misbehaves
  let last: unknown;
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    try {
      const value = await predicate();
      if (value) return value as NonNullable<T>;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) break;
    await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
  const detail = last instanceof Error ? last.message : String(last);
  throw new Error(`${opts.message ?? 'waitFor'}: condition not met within ${timeoutMs} ms (last: ${detail})`);
}
