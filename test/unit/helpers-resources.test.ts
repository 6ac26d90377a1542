import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { describe as group, expect, it } from 'vitest';
import { backToBaseline, snapshot } from '../helpers/resources.js';
import { waitFor } from '../helpers/wait.js';

group('resources helper', () => {
  it('counts sockets this process opens, and sees them go', async () => {
    const server: Server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const before = await snapshot();
    const sockets: Socket[] = [];
    for (let i = 0; i < 20; i++) sockets.push(connect(port, '127.0.0.1'));
    await Promise.all(sockets.map((s) => new Promise((r) => s.once('connect', r))));
    await waitFor(() => new Promise<boolean>((r) => server.getConnections((_e, n) => r(n === 20))));
    const during = await snapshot();
    // Both ends live in this process: 20 client sockets and 20 accepted ones.
    expect(during.sockets - before.sockets).toBeGreaterThanOrEqual(40);
    await expect(backToBaseline(before, { timeoutMs: 300 })).rejects.toThrow(/did not return to baseline/);
    for (const s of sockets) s.destroy();
    server.closeAllConnections();
    const after = await backToBaseline(before, { fds: 0, sockets: 0 });
    expect(after.sockets).toBeLessThanOrEqual(before.sockets);
    await new Promise((r) => server.close(r));
  });
});
