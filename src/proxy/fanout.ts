/**
 * MPEG-TS fan-out: every viewer of one HTTP MPEG-TS channel on this edge
 * (same upstream path and query, without marker and token) shares ONE
 * upstream connection. Each upstream chunk is written to every viewer as the
 * same Buffer (no copy); what a viewer has not taken yet waits in its own
 * socket's buffer, which is its queue:
 * - bounded: a viewer whose queue passes `maxQueueBytes` is dropped at once;
 * - watched: a viewer that accepts no bytes for the stall timeout is dropped
 *   (proxy/stall.ts);
 * - never the others' problem: the upstream is never paused for a viewer.
 * A viewer that joins a running channel starts on a packet boundary, with
 * PAT, PMT and the GOP since the latest video keyframe when there is one
 * (proxy/ts-join.ts). The upstream closes `lingerMs` after the last viewer
 * leaves (a zapping viewer coming back, or the next one, reuses it).
 *
 * A non-200 answer from upstream is passed to the viewers that were waiting
 * for it and the channel is dropped (nothing to share).
 */
import type { ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { EdgeError } from '../errors.js';
import { clientResponseHeaders } from './headers.js';
import type { ResponseObserver } from './observer.js';
import { socketAcceptedBytes, type StallTarget, type StallWatch } from './stall.js';
import { JoinPointTracker } from './ts-join.js';

export type FanoutDropReason = 'stall' | 'overflow';

export interface FanoutEvents {
  /** Body bytes received from upstream. */
  upstreamBytes(n: number): void;
  viewerDropped(reason: FanoutDropReason): void;
  /** The channel's upstream exchange ended (undefined: the origin ended it cleanly; an abort after the last viewer left counts as such). */
  upstreamDone(error: Error | undefined): void;
}

export interface FanoutOptions {
  /** Sends the channel's upstream request (to the stream pool). */
  readonly dispatch: (pathAndQuery: string, headers: string[], handler: Dispatcher.DispatchHandler) => void;
  readonly maxQueueBytes: number;
  readonly lingerMs: number;
  readonly maxGopBytes: number;
  readonly stallWatch: StallWatch;
  readonly events: FanoutEvents;
  /** CORS headers and the like (Forwarder.withCors), per viewer (each has its own Origin). */
  readonly decorate: (res: ServerResponse, headers: string[]) => string[];
}

/** Headers every viewer's response leaves out (the channel's body is not the upstream's message). */
const DROPPED: ReadonlySet<string> = new Set(['content-length']);

class Viewer implements StallTarget {
  stallIndex = -1;
  stallSince = 0;
  stallAccepted = 0;
  /** Joined before a join point was known: starts at the next packet boundary. */
  waitingForAlignment = false;
  wroteHead = false;
  done = false;
  readonly onDrain = (): void => this.channel.options.stallWatch.unwatch(this);
  readonly onClose = (): void => this.channel.leave(this, false);

  constructor(
    readonly channel: Channel,
    readonly res: ServerResponse,
    readonly observer: ResponseObserver,
  ) {}

  acceptedBytes(): number {
    const socket = this.res.socket;
    return socket === null ? 0 : socketAcceptedBytes(socket);
  }

  onStall(): void {
    this.channel.drop(this, 'stall');
  }

  /** Writes a chunk; false when the viewer was dropped for its queue. */
  write(chunk: Buffer): boolean {
    if (chunk.length === 0) return true;
    this.observer.sent(chunk.length);
    if (this.res.write(chunk)) return true;
    if (this.res.writableLength > this.channel.options.maxQueueBytes) {
      this.channel.drop(this, 'overflow');
      return false;
    }
    this.channel.options.stallWatch.watch(this);
    return true;
  }
}

class Channel implements Dispatcher.DispatchHandler {
  readonly viewers = new Set<Viewer>();
  private head: { status: number; headers: string[] } | undefined;
  private controller: Dispatcher.DispatchController | undefined;
  private readonly tracker: JoinPointTracker;
  private linger: NodeJS.Timeout | undefined;
  closed = false;

  constructor(
    readonly hub: FanoutHub,
    readonly key: string,
    readonly options: FanoutOptions,
  ) {
    this.tracker = new JoinPointTracker(options.maxGopBytes);
  }

  add(res: ServerResponse, observer: ResponseObserver): void {
    if (this.linger !== undefined) {
      clearTimeout(this.linger);
      this.linger = undefined;
    }
    const viewer = new Viewer(this, res, observer);
    this.viewers.add(viewer);
    res.once('close', viewer.onClose);
    res.on('drain', viewer.onDrain);
    if (this.head === undefined) return; // written when the upstream answers
    this.writeHead(viewer);
    const prefix = this.tracker.joinPrefix();
    if (prefix.length === 0) {
      viewer.waitingForAlignment = true;
      return;
    }
    for (const chunk of prefix) if (!viewer.write(chunk)) return;
  }

  private writeHead(viewer: Viewer): void {
    viewer.res.writeHead(this.head!.status, this.options.decorate(viewer.res, this.head!.headers.slice()));
    viewer.wroteHead = true;
    viewer.observer.started(this.head!.status);
  }

  leave(viewer: Viewer, complete: boolean): void {
    if (viewer.done) return;
    viewer.done = true;
    this.viewers.delete(viewer);
    this.options.stallWatch.unwatch(viewer);
    viewer.res.off('close', viewer.onClose);
    viewer.res.off('drain', viewer.onDrain);
    viewer.observer.finished(viewer.res.statusCode, complete);
    if (this.viewers.size === 0 && !this.closed) {
      this.linger = setTimeout(() => {
        this.linger = undefined;
        if (this.viewers.size === 0) this.close(new EdgeError('EDGE_ERR_UPSTREAM_RESET', 'no viewer left'));
      }, this.options.lingerMs);
      this.linger.unref();
    }
  }

  drop(viewer: Viewer, reason: FanoutDropReason): void {
    if (viewer.done) return;
    this.options.events.viewerDropped(reason);
    this.leave(viewer, false);
    viewer.res.destroy();
  }

  /** Ends the channel: the upstream is aborted, viewers still attached are cut. */
  close(reason: Error): void {
    if (this.closed) return;
    this.closed = true;
    if (this.linger !== undefined) clearTimeout(this.linger);
    this.hub.forget(this);
    this.controller?.abort(reason);
    for (const viewer of [...this.viewers]) {
      this.leave(viewer, false);
      viewer.res.destroy();
    }
  }

  // ---- the upstream side (undici dispatch handler) ----

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.closed) controller.abort(new EdgeError('EDGE_ERR_UPSTREAM_RESET', 'channel closed'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number): void {
    if (this.closed) return;
    this.head = { status: statusCode, headers: clientResponseHeaders((controller.rawHeaders ?? []) as (string | Buffer)[], statusCode === 200 ? DROPPED : undefined) };
    // Nothing to share in an error: the waiting viewers get it, newcomers start a channel of their own.
    if (statusCode !== 200) this.hub.forget(this);
    for (const viewer of this.viewers) this.writeHead(viewer);
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.closed) return;
    this.options.events.upstreamBytes(chunk.length);
    let aligned: Buffer | undefined;
    for (const viewer of this.viewers) {
      if (viewer.waitingForAlignment) {
        aligned ??= chunk.subarray(this.tracker.alignmentOf(chunk));
        if (aligned.length === 0) continue; // still inside the packet the last chunk cut
        viewer.waitingForAlignment = false;
        viewer.write(aligned);
      } else {
        viewer.write(chunk);
      }
    }
    if (this.head!.status === 200) this.tracker.feed(chunk);
  }

  onResponseEnd(): void {
    this.options.events.upstreamDone(undefined);
    if (this.closed) return;
    this.closed = true;
    this.hub.forget(this);
    for (const viewer of [...this.viewers]) {
      this.leave(viewer, true);
      viewer.res.end();
    }
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    // Our own abort (no viewer left, shutdown) is not an upstream failure.
    this.options.events.upstreamDone(this.closed ? undefined : error);
    if (this.closed) return;
    this.closed = true;
    this.hub.forget(this);
    for (const viewer of [...this.viewers]) {
      if (!viewer.wroteHead) {
        this.leave(viewer, false);
        viewer.done = true;
        viewer.observer.failedBeforeHead(error);
        continue;
      }
      this.leave(viewer, false);
      viewer.res.destroy();
    }
  }
}

export class FanoutHub {
  private readonly channels = new Map<string, Channel>();

  constructor(readonly options: FanoutOptions) {}

  /** Upstream connections open right now (one per channel). */
  get channelCount(): number {
    return this.channels.size;
  }

  get viewerCount(): number {
    let n = 0;
    for (const c of this.channels.values()) n += c.viewers.size;
    return n;
  }

  /**
   * Adds `res` as a viewer of the channel `key`, opening its upstream
   * (`pathAndQuery`, `headers`: the first viewer's) when none is open.
   */
  join(key: string, pathAndQuery: string, headers: string[], res: ServerResponse, observer: ResponseObserver): void {
    let channel = this.channels.get(key);
    if (channel === undefined) {
      channel = new Channel(this, key, this.options);
      this.channels.set(key, channel);
      channel.add(res, observer);
      this.options.dispatch(pathAndQuery, headers, channel);
      return;
    }
    channel.add(res, observer);
  }

  /** @internal a channel that ended or must not be joined any more. */
  forget(channel: Channel): void {
    if (this.channels.get(channel.key) === channel) this.channels.delete(channel.key);
  }

  /** Shutdown: every upstream aborted, every viewer cut. */
  close(): void {
    for (const channel of [...this.channels.values()]) channel.close(new EdgeError('EDGE_ERR_UPSTREAM_RESET', 'edge shutting down'));
  }
}
