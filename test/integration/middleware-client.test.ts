// The middleware client's cancel paths (backends/client.ts): a call cut by GuardedBackend's CallAbort
// (the hard limit, shutdown) or by an AbortSignal (`check`, any caller with a signal) rejects as no
// answer and closes its connection, so the middleware sees its client go away.
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpBackend } from '../../src/auth/backends/http.js';
import { CallAbort } from '../../src/auth/types.js';
import { authRequest, clientOptions } from '../helpers/backends.js';
import { waitFor } from '../helpers/wait.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** A middleware that holds every request until the test answers it; counts closed connections. */
async function heldMiddleware(): Promise<{ url: string; held: ServerResponse[]; closed: () => number }> {
  const held: ServerResponse[] = [];
  let closed = 0;
  const server = createServer((_req, res) => held.push(res));
  server.on('connection', (socket) => socket.once('close', () => closed++));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/auth`, held, closed: () => closed };
}

function backend(url: string): HttpBackend {
  const b = new HttpBackend(clientOptions(url));
  cleanups.push(() => b.close());
  return b;
}

describe('MiddlewareClient cancel', () => {
  it('a call cut by its CallAbort rejects as no answer (EDGE_ERR_BACKEND_TIMEOUT) and its connection closes', async () => {
    const mw = await heldMiddleware();
    const abort = new CallAbort();
    const pending = backend(mw.url).checkAbortable(authRequest(), abort);
    await waitFor(() => mw.held.length === 1);
    abort.abort(new Error('hard limit'));
    await expect(pending).rejects.toMatchObject({ code: 'EDGE_ERR_BACKEND_TIMEOUT' });
    await waitFor(() => mw.closed() === 1);
    expect(abort.onAbort).toBeUndefined();
  });

  it('a call cut by an AbortSignal does the same, and one aborted before it is sent never reaches the middleware', async () => {
    const mw = await heldMiddleware();
    const b = backend(mw.url);
    const controller = new AbortController();
    const pending = b.check(authRequest(), controller.signal);
    await waitFor(() => mw.held.length === 1);
    controller.abort(new Error('caller gave up'));
    await expect(pending).rejects.toMatchObject({ code: 'EDGE_ERR_BACKEND_TIMEOUT' });
    await waitFor(() => mw.closed() === 1);
    const early = new CallAbort();
    early.abort(new Error('shutdown'));
    await expect(b.checkAbortable(authRequest(), early)).rejects.toMatchObject({ code: 'EDGE_ERR_BACKEND_TIMEOUT' });
    expect(mw.held).toHaveLength(1);
  });

  it('an answer settles the call with its status and headers, and a later abort changes nothing', async () => {
    const mw = await heldMiddleware();
    const abort = new CallAbort();
    const pending = backend(mw.url).checkAbortable(authRequest(), abort);
    await waitFor(() => mw.held.length === 1);
    mw.held[0]!.writeHead(200, { 'x-session-name': 'alice', 'x-authduration': '30', 'content-length': 2 });
    mw.held[0]!.end('ok');
    await expect(pending).resolves.toMatchObject({ allow: true, sessionName: 'alice', ttlMs: 30_000 });
    abort.abort(new Error('too late'));
    expect(mw.closed()).toBe(0);
  });
});
