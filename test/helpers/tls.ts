// An HTTPS server on 127.0.0.1 with a fresh self-signed certificate (CN and subjectAltName
// 127.0.0.1, one day), made with openssl: the "middleware with a private CA" of the backend and
// `check` tests. `{ skip }` when openssl is not installed (the caller skips the test).
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SelfSignedServer {
  /** `https://127.0.0.1:<port>/` */
  readonly url: string;
  /** PEM file of the certificate: its own CA, for caFile / --backend-ca. */
  readonly certFile: string;
  readonly server: Server;
  /** Stops the server and deletes the key and certificate. Idempotent. */
  close(): Promise<void>;
}

export async function startSelfSignedServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<SelfSignedServer | { skip: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'edge-tls-'));
  const key = join(dir, 'k.pem');
  const cert = join(dir, 'c.pem');
  const openssl = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1', '-keyout', key, '-out', cert],
    { encoding: 'utf8', timeout: 20_000 },
  );
  if (openssl.error !== undefined || openssl.status !== 0) await rm(dir, { recursive: true, force: true });
  if (openssl.error !== undefined) return { skip: `openssl is not available (${openssl.error.message}): cannot generate the test certificate` };
  if (openssl.status !== 0) throw new Error(`openssl failed: ${openssl.stderr}`);
  const server = createServer({ key: await readFile(key), cert: await readFile(cert) }, handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  let closed: Promise<void> | undefined;
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    certFile: cert,
    server,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }).then(() => rm(dir, { recursive: true, force: true }));
      return closed;
    },
  };
}
