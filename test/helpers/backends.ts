// Shared pieces of the backend tests: a hand-built AuthRequest (every field of src/auth/types.ts),
// the middleware client options the tests use, a URL nobody listens on, and an afterEach that
// closes every backend and test server a test started.
import { REFUSED_PORT } from './ports.js';
import { afterEach, expect } from 'vitest';
import type { MiddlewareClientOptions } from '../../src/auth/backends/client.js';
import type { AuthRequest } from '../../src/auth/types.js';
import { EdgeError, type ErrorCode } from '../../src/errors.js';

/** A first HLS check of session `s1` on channel a001 with `?token=<token>&x=1`. Override what the test is about. */
export function authRequest(overrides: Partial<AuthRequest> = {}): AuthRequest {
  return {
    sessionId: 'S1edgeSessionIdAAAAAAA',
    channel: 'a001',
    clientIp: '203.0.113.7',
    path: '/play/a001/index.m3u8',
    query: 'token=tok&x=1',
    userAgent: 'VLC/3.0.20 LibVLC/3.0.20',
    host: 'live.example.com',
    kind: 'hls',
    requestType: 'new',
    token: 'tok',
    requestNumber: 0,
    streamClients: 0,
    totalClients: 0,
    referer: '',
    ...overrides,
  };
}

export function clientOptions(url: string, extra: Partial<MiddlewareClientOptions> = {}): MiddlewareClientOptions {
  return { url, timeoutMs: 2000, maxBodyBytes: 64 * 1024, connections: 2, ...extra };
}

/** `http://127.0.0.1:<port>` of a port that was just free: connecting to it is refused. */
/** A URL nothing listens on, and nothing will (test/helpers/ports.ts REFUSED_PORT). */
export async function refusedUrl(): Promise<string> {
  return Promise.resolve(`http://127.0.0.1:${REFUSED_PORT}`);
}

/** Registers an afterEach that closes (newest first) everything `track` was given during the test. */
export function useClosables(): <T extends { close(): Promise<void> }>(item: T) => T {
  const open: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const item of open.splice(0).reverse()) await item.close();
  });
  return (item) => {
    open.push(item);
    return item;
  };
}

/** Asserts that `p` rejects with an EdgeError of `code` (the backend could not decide). */
export async function expectUnavailable(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  const err: unknown = await p.then(
    () => new Error('expected the check to reject'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EdgeError);
  expect((err as EdgeError).code).toBe(code);
}
