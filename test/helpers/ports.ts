// A loopback port nothing listens on right now: bound on port 0, then released. For "the peer is
// down" cases (connection refused) and for bringing a server up later where a client already
// points (a middleware down at the edge's start-up, flapping). Another process could take the
// port in between; on a test machine that is rare enough, and the test then fails loudly.
import { connect, createServer } from 'node:net';

export function unusedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * A port where nothing listens and nothing will: tcpmux (1), privileged and unused. A port taken
 * with `unusedPort()` is released at once, and another test file running in parallel may bind it
 * before the test connects (seen: a "refused" upstream that answered 200). For "the peer is down"
 * with no later server on it, use this one.
 */
export const REFUSED_PORT = 1;

/** True when something accepts TCP connections on 127.0.0.1:`port` now (a server started by a child process is up). */
export function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
