/**
 * The demo's origin and middleware are both small HTTP servers on a random
 * loopback port that must stop at once on Ctrl-C: one helper listens, keeps
 * track of the sockets, and closes idempotently.
 */
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface LoopbackServer {
  readonly url: string;
  /** Stops listening and destroys every open connection; `beforeClose` runs first. Idempotent. */
  close(): Promise<void>;
}

export async function startLoopbackServer(handler: RequestListener, beforeClose?: () => void): Promise<LoopbackServer> {
  const server = createServer(handler);
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closed: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    close() {
      closed ??= new Promise<void>((resolve) => {
        beforeClose?.();
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closed;
    },
  };
}
