/**
 * Small fixed answers shared by the admin listener and the public one (its
 * optional /healthz and /readyz): here, not in admin/, so that no public-path
 * module imports from admin/.
 */
import type { ServerResponse } from 'node:http';

/** A complete, uncacheable answer with a body held in memory (never media: those stream). */
export function send(res: ServerResponse, status: number, contentType: string, body: string, extra?: Record<string, string>): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...extra });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** /readyz, shared by the admin and (optionally) the public listener. */
export async function answerReadiness(res: ServerResponse, isReady: () => Promise<boolean>): Promise<void> {
  const ready = await isReady().catch(() => false);
  if (ready) send(res, 200, 'text/plain', 'ready\n');
  else send(res, 503, 'text/plain', 'not ready\n');
}
