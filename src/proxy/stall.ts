/**
 * Stall detection for writers to clients that may stop reading
 * (proxy.clientStallTimeout).
 *
 * Why: the forward path pauses the upstream while a client's socket buffer is
 * full (backpressure), and undici's body timeout does not run while paused, so
 * a viewer that stops reading would hold its upstream connection forever.
 *
 * What "accepts no bytes" means: the client's socket completes no write, that
 * is, the kernel takes none of the bytes the edge queued for it, for the whole
 * timeout. Progress is counted in the socket's own bytes (`socketAcceptedBytes`),
 * whole writes at a time (one upstream chunk, ≤ 64 KiB): a reader that takes
 * a little now and then is judged by that, not by `drain` (which needs the
 * whole buffer flushed). The kernel's socket buffers on the way (up to a few
 * MiB on loopback, autotuned) are accepted bytes too: a client that stops
 * reading is noticed once they are full, then `timeoutMs` later.
 *
 * Cost: nothing per chunk. A target is put in the watch when a write is
 * refused (backpressure) and taken out on `drain`, O(1) each; one interval
 * per watch sweeps what is watched, reading each target's progress counter. A target
 * is dropped between `timeoutMs` and `timeoutMs + sweep interval` after its
 * last progress. The same watch serves any writer with a progress counter
 * (the forward path's exchanges now, a fan-out viewer's queue later).
 */
import type { Socket } from 'node:net';

/** The sweep runs at least this often relative to the timeout … */
const SWEEPS_PER_TIMEOUT = 4;
/** … but no more often than this (a 30 s timeout: once a second). */
const MAX_SWEEP_INTERVAL_MS = 1000;

/** Something writing to a client, watched while the client is not keeping up. */
export interface StallTarget {
  /** Monotone count of bytes the client has accepted so far; read at watch time and at each sweep, never per chunk. */
  acceptedBytes(): number;
  /** The client accepted nothing for the whole timeout; the target is no longer watched. Cut the client here. */
  onStall(): void;
  /**
   * Bookkeeping of the watch, kept on the target so watching allocates
   * nothing: start at `stallIndex = -1` (not watched); only the watch writes them.
   */
  stallIndex: number;
  stallSince: number;
  stallAccepted: number;
}

/** Bytes the kernel took from this socket so far: dispatched to it, less the write still in flight. */
export function socketAcceptedBytes(socket: Socket): number {
  // bytesWritten counts what the application handed over (sent + queued); writableLength is what is
  // still queued or in flight. Their difference only grows when a write completes.
  return socket.bytesWritten - socket.writableLength;
}

export class StallWatch {
  readonly timeoutMs: number;
  /**
   * The watched targets, each knowing its index: watch and unwatch are O(1)
   * (swap with the last, pop). Not a Set: V8's hash sets pay O(size) for an
   * add/delete churn once they are large (measured: 37 µs per pause at 10k
   * watched), and a busy edge pauses and drains thousands of times a second.
   */
  private readonly watched: StallTarget[] = [];
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;

  /** `timeoutMs` 0 disables the watch: `watch()` does nothing. */
  constructor(timeoutMs: number, options: { now?: () => number; autoSweep?: boolean } = {}) {
    this.timeoutMs = timeoutMs;
    this.now = options.now ?? (() => performance.now());
    if (timeoutMs > 0 && options.autoSweep !== false) {
      this.timer = setInterval(() => this.sweep(), Math.min(MAX_SWEEP_INTERVAL_MS, Math.ceil(timeoutMs / SWEEPS_PER_TIMEOUT)));
      this.timer.unref();
    }
  }

  get enabled(): boolean {
    return this.timeoutMs > 0;
  }

  /** Targets being watched right now. */
  get size(): number {
    return this.watched.length;
  }

  /** Starts watching (the client just refused a write); a target already watched keeps its clock. */
  watch(target: StallTarget): void {
    if (this.timeoutMs <= 0 || target.stallIndex >= 0) return;
    target.stallSince = this.now();
    target.stallAccepted = target.acceptedBytes();
    target.stallIndex = this.watched.length;
    this.watched.push(target);
  }

  /** The client caught up (drain), finished or went away. */
  unwatch(target: StallTarget): void {
    const i = target.stallIndex;
    if (i < 0 || this.watched[i] !== target) return;
    const last = this.watched.pop()!;
    if (last !== target) {
      this.watched[i] = last;
      last.stallIndex = i;
    }
    target.stallIndex = -1;
  }

  /** One pass over the watched targets (the interval calls it; tests may too). */
  sweep(): void {
    const now = this.now();
    // Backwards: unwatching index i moves the last (already visited) target into i.
    for (let i = this.watched.length - 1; i >= 0; i--) {
      const target = this.watched[i];
      if (target === undefined) continue; // onStall of another target unwatched several
      const accepted = target.acceptedBytes();
      if (accepted !== target.stallAccepted) {
        target.stallAccepted = accepted;
        target.stallSince = now;
      } else if (now - target.stallSince >= this.timeoutMs) {
        this.unwatch(target);
        target.onStall();
      }
    }
  }

  /** Idempotent. */
  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    for (const target of this.watched) target.stallIndex = -1;
    this.watched.length = 0;
  }
}
