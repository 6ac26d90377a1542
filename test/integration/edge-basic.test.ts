import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { httpRequest } from '../helpers/client.js';
import { startEdge, type TestEdge } from '../helpers/edge.js';
import { startTestMiddleware, type TestMiddleware } from '../helpers/middleware.js';
import { startTestOrigin, type TestOrigin } from '../helpers/origin.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

let origin: TestOrigin;
let mw: TestMiddleware;
let edge: TestEdge;

afterEach(async () => {
  await edge?.close();
  await mw?.close();
  await origin?.close();
});

async function setup(file: Record<string, unknown> = {}): Promise<void> {
  origin = await startTestOrigin();
  mw = await startTestMiddleware();
  edge = await startEdge({ upstream: { url: origin.url }, backend: { url: `${mw.url}/auth` }, ...file });
}

describe('allow and deny', () => {
  it('allow: the segment bytes are the origin bytes', async () => {
    await setup();
    const res = await httpRequest(`${edge.url}/play/ch1/v1/seg-7.ts?token=abc`);
    expect(res.status).toBe(200);
    expect(sha(res.body)).toBe(sha(origin.expectedBytes('/play/ch1/v1/seg-7.ts')));
    expect(mw.requests).toHaveLength(1);
  });

  it('deny: 403 with a reason code, and the origin is never contacted', async () => {
    await setup();
    mw.setBehavior({ kind: 'deny', status: 403 });
    const res = await httpRequest(`${edge.url}/play/ch1/index.m3u8?token=bad`);
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body.toString())).toEqual({ error: 'EDGE_ERR_AUTH_DENIED', reason: 'backend_403' });
    expect(origin.requests).toHaveLength(0);
  });
});
