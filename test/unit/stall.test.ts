// The stall watch on a manual clock: a target is dropped only after a whole timeout without
// progress, progress (however small) restarts the clock, and an unwatched target is forgotten.
import { describe, expect, it } from 'vitest';
import { StallWatch, type StallTarget } from '../../src/proxy/stall.js';

function target(): StallTarget & { accepted: number; stalls: number } {
  return {
    accepted: 0,
    stalls: 0,
    stallIndex: -1,
    stallSince: 0,
    stallAccepted: 0,
    acceptedBytes() {
      return this.accepted;
    },
    onStall() {
      this.stalls++;
    },
  };
}

describe('StallWatch', () => {
  it('drops a target that accepts nothing for the timeout, once', () => {
    let now = 0;
    const watch = new StallWatch(1000, { now: () => now, autoSweep: false });
    const t = target();
    watch.watch(t);
    now = 999;
    watch.sweep();
    expect(t.stalls).toBe(0);
    now = 1000;
    watch.sweep();
    expect(t.stalls).toBe(1);
    expect(watch.size).toBe(0);
    now = 5000;
    watch.sweep();
    expect(t.stalls).toBe(1);
  });

  it('a target that accepts a few bytes per sweep is judged by that progress, not dropped', () => {
    let now = 0;
    const watch = new StallWatch(1000, { now: () => now, autoSweep: false });
    const t = target();
    watch.watch(t);
    for (let i = 0; i < 20; i++) {
      now += 900;
      t.accepted += 1;
      watch.sweep();
    }
    expect(t.stalls).toBe(0);
    // Then it stops: one more timeout after the last progress seen.
    now += 999;
    watch.sweep();
    expect(t.stalls).toBe(0);
    now += 1;
    watch.sweep();
    expect(t.stalls).toBe(1);
  });

  it('watching again keeps the clock; unwatching forgets the target', () => {
    let now = 0;
    const watch = new StallWatch(1000, { now: () => now, autoSweep: false });
    const t = target();
    watch.watch(t);
    now = 600;
    watch.watch(t);
    now = 1000;
    watch.sweep();
    expect(t.stalls).toBe(1);
    const u = target();
    watch.watch(u);
    watch.unwatch(u);
    now = 10_000;
    watch.sweep();
    expect(u.stalls).toBe(0);
  });

  it('many targets: unwatching any of them keeps the others watched, each dropped once', () => {
    let now = 0;
    const watch = new StallWatch(1000, { now: () => now, autoSweep: false });
    const targets = Array.from({ length: 10 }, () => target());
    for (const t of targets) watch.watch(t);
    for (const i of [0, 9, 4]) watch.unwatch(targets[i]!);
    watch.unwatch(targets[4]!);
    expect(watch.size).toBe(7);
    targets[5]!.accepted = 1; // progress: stays
    now = 1000;
    watch.sweep();
    const dropped = targets.map((t) => t.stalls);
    expect(dropped).toEqual([0, 1, 1, 1, 0, 0, 1, 1, 1, 0]);
    expect(watch.size).toBe(1);
    now = 2000;
    watch.sweep();
    expect(targets[5]!.stalls).toBe(1);
    expect(watch.size).toBe(0);
  });

  it('timeout 0 watches nothing; close() is idempotent', () => {
    const off = new StallWatch(0);
    const t = target();
    off.watch(t);
    expect(off.size).toBe(0);
    expect(off.enabled).toBe(false);
    off.close();
    const on = new StallWatch(1000);
    on.watch(t);
    on.close();
    on.close();
    expect(on.size).toBe(0);
  });
});
