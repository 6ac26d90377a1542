// Hardening issue, items 1, 10 and 11: the admin listener.
//  1. Request targets that made `new URL` / `decodeURIComponent` throw before the token check killed
//     the process (every stream cut, the store lost). Now each is a 4xx, and an exception inside
//     either listener's handler is a logged, counted 500 for that request only.
// 10. GET /api/sessions returned the whole table in one synchronous step. Now it is paged with a
//     cursor; walking the pages sees each session once, in order, with the filters.
// 11. Without an admin token, the API answered any Host: a page on a DNS-rebound name could read
//     session IDs. Now only loopback Host names get past /metrics, /healthz and /readyz.
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { parseAdminArgs, runAdminCommand } from '../../src/cli/admin-client.js';
import { surviveUncaught } from '../../src/crash-guard.js';
import { createLogger } from '../../src/log.js';
import type { FleetSessionView } from '../../src/session/fleet.js';
import { httpRequest, openStream, type OpenStream } from '../helpers/client.js';
import { rawRequest, type RawResponse } from '../helpers/http-send.js';
import { startTestMiddleware } from '../helpers/middleware.js';
import { startTestOrigin } from '../helpers/origin.js';
import { injectSessions } from '../helpers/sessions.js';
import { useStack, type Stack } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'hardening-admin-token-0123456789';
const BIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));
const start = useStack({ origin: { segmentBytes: 4096 } });
const streams: OpenStream[] = [];
const cleanups: (() => void | Promise<void>)[] = [];

afterEach(async () => {
  for (const s of streams.splice(0)) s.destroy();
  for (const c of cleanups.splice(0).reverse()) await c();
});

const portOf = (url: string): number => Number(new URL(url).port);

interface RawOptions {
  method?: string;
  /** Host header value; null: none at all. Default: 127.0.0.1:<port>. */
  host?: string | null;
  version?: '1.0' | '1.1';
  headers?: Record<string, string>;
}

/** One request on a fresh connection, the target sent byte for byte. */
function raw(port: number, target: string, o: RawOptions = {}): Promise<RawResponse> {
  const host = o.host === undefined ? `127.0.0.1:${port}` : o.host;
  const lines = [`${o.method ?? 'GET'} ${target} HTTP/${o.version ?? '1.1'}`];
  if (host !== null) lines.push(`Host: ${host}`);
  for (const [k, v] of Object.entries(o.headers ?? {})) lines.push(`${k}: ${v}`);
  return rawRequest(port, `${lines.join('\r\n')}\r\n\r\n`);
}

const errorOf = (r: RawResponse): unknown => (JSON.parse(r.body) as { error?: unknown }).error;
const markerOf = (playlist: Buffer): string => /edge_session=([A-Za-z0-9_-]{22})/.exec(playlist.toString())![1]!;

/** An MPEG-TS viewer that must keep playing through everything a test throws at the admin listener. */
async function viewer(stack: Stack): Promise<OpenStream> {
  const ts = await openStream(`${stack.edge.url}/play/news?token=stb-token`);
  streams.push(ts);
  await ts.readAtLeast(8 * 1024);
  return ts;
}

async function expectStillPlaying(ts: OpenStream): Promise<void> {
  expect(ts.ended()).toBe(false);
  await ts.readAtLeast(ts.received() + 8 * 1024);
}

describe('bad request targets on the admin listener are 4xx, not a dead process', () => {
  interface Case {
    what: string;
    method: string;
    target: string;
    status: number;
    code: string;
  }
  const CASES: Case[] = [
    { what: 'protocol-relative target with an IPv6 literal new URL cannot parse', method: 'GET', target: '//[x]/', status: 404, code: 'EDGE_ERR_NOT_FOUND' },
    { what: 'protocol-relative target on the API', method: 'GET', target: '//[x]/api/sessions', status: 404, code: 'EDGE_ERR_NOT_FOUND' },
    { what: 'absolute-form with a port above 65535', method: 'GET', target: 'http://a:99999/', status: 400, code: 'EDGE_ERR_BAD_REQUEST' },
    { what: 'absolute-form, even a valid one', method: 'GET', target: 'http://127.0.0.1/api/sessions', status: 400, code: 'EDGE_ERR_BAD_REQUEST' },
    { what: 'asterisk-form', method: 'OPTIONS', target: '*', status: 400, code: 'EDGE_ERR_BAD_REQUEST' },
    { what: 'session ID with bad percent-encoding (%ZZ)', method: 'GET', target: '/api/sessions/%ZZ', status: 400, code: 'EDGE_ERR_BAD_REQUEST' },
    { what: 'kick with bad percent-encoding', method: 'DELETE', target: '/api/sessions/%ZZ', status: 400, code: 'EDGE_ERR_BAD_REQUEST' },
    { what: 'a lone % at the end', method: 'GET', target: '/api/sessions/abc%', status: 400, code: 'EDGE_ERR_BAD_REQUEST' },
    { what: 'percent-encoded invalid UTF-8', method: 'GET', target: '/api/sessions/%C3%28', status: 400, code: 'EDGE_ERR_BAD_REQUEST' },
    { what: 'bad percent-encoding elsewhere in the path', method: 'GET', target: '/%ZZ', status: 404, code: 'EDGE_ERR_NOT_FOUND' },
    { what: 'bad percent-encoding in a query parameter', method: 'GET', target: '/api/sessions?limit=%ZZ', status: 400, code: 'EDGE_ERR_BAD_REQUEST' },
    { what: 'a 5,000-byte path', method: 'GET', target: `/api/sessions/${'A'.repeat(5000)}`, status: 400, code: 'EDGE_ERR_BAD_REQUEST' },
  ];

  it.each(CASES)('$what → $status $code', async ({ method, target, status, code }) => {
    const { edge } = await start();
    const r = await raw(portOf(edge.adminUrl), target, { method });
    expect(r.status).toBe(status);
    expect(errorOf(r)).toBe(code);
  });

  it('every one of them in a row, then more: the edge is alive, a viewer\'s stream never stopped, nothing counted as an internal error', async () => {
    const stack = await start();
    const ts = await viewer(stack);
    const port = portOf(stack.edge.adminUrl);
    for (const { method, target, status } of CASES) expect((await raw(port, target, { method })).status).toBe(status);
    // Longer than the request head may be (Node's 16 KiB): the parser refuses it, with our JSON.
    const huge = await raw(port, `/${'a'.repeat(20_000)}`);
    expect(huge.status).toBe(431);
    expect(errorOf(huge)).toBe('EDGE_ERR_HEADERS_TOO_LARGE');
    // CONNECT (authority-form) never reaches the handler: it used to be a silent close.
    const connect = await raw(port, `127.0.0.1:${port}`, { method: 'CONNECT' });
    expect(connect.status).toBe(405);
    expect(errorOf(connect)).toBe('EDGE_ERR_METHOD_NOT_ALLOWED');
    expect((await raw(port, '/healthz')).status).toBe(200);
    expect((await raw(port, '/api/sessions')).status).toBe(200);
    await expectStillPlaying(ts);
    expect(await stack.edge.metric('edge_internal_errors_total')).toBe(0);
  });

  it('with an admin token the target is checked first, before the token', async () => {
    const { edge } = await start({ admin: { token: TOKEN } });
    const port = portOf(edge.adminUrl);
    expect((await raw(port, 'http://a:99999/')).status).toBe(400);
    expect((await raw(port, '/api/sessions/%ZZ')).status).toBe(401);
    const bad = await raw(port, '/api/sessions/%ZZ', { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body)).toEqual({ error: 'EDGE_ERR_BAD_REQUEST', message: 'bad percent-encoding in the session ID' });
  });

  it('the bin: the requests from the issue do not end the process (regression: new URL threw before the token check)', async () => {
    const origin = await startTestOrigin({ segmentBytes: 1024 });
    cleanups.push(() => origin.close());
    const mw = await startTestMiddleware();
    cleanups.push(() => mw.close());
    const child = spawn(process.execPath, [BIN, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--upstream', origin.url, '--backend', `${mw.url}/auth`], {
      env: { PATH: process.env['PATH'] ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    const up = await waitFor(() => out.split('\n').map((l) => (l.startsWith('{') ? (JSON.parse(l) as { msg: string; adminUrl?: string }) : undefined)).find((l) => l?.msg === 'astra-auth-edge listening'), { timeoutMs: 10_000 });
    const port = portOf(up.adminUrl!);
    expect((await raw(port, '//[x]/')).status).toBe(404);
    expect((await raw(port, 'http://a:99999/')).status).toBe(400);
    expect((await raw(port, '/api/sessions/%ZZ')).status).toBe(400);
    expect((await raw(port, '/healthz')).status).toBe(200);
    expect(child.exitCode).toBeNull();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});

describe('Host rule without an admin token (DNS rebinding)', () => {
  const REFUSED = ['evil.example', 'evil.example:PORT', '127.0.0.1.evil.example', 'localhost.evil', 'localhost.evil:PORT', 'localhost.', 'xlocalhost', '127.1', '0.0.0.0', '10.0.0.1', '[::2]', '[::ffff:127.0.0.1]', 'localhost:99999', 'localhost:abc', '127.0.0.1:', '[::1'];
  const ACCEPTED = ['127.0.0.1', '127.0.0.1:PORT', '127.8.9.10:PORT', 'localhost', 'LocalHost:PORT', '[::1]', '[::1]:PORT', '[0:0:0:0:0:0:0:1]:PORT'];

  it('refuses every non-loopback Host with 403 EDGE_ERR_HOST_NOT_ALLOWED on / and /api/* before routing; a kick does not happen', async () => {
    const stack = await start();
    const port = portOf(stack.edge.adminUrl);
    const pl = await httpRequest(`${stack.edge.url}/play/ch1/v1/index.m3u8?token=t1`);
    const sid = markerOf(pl.body);
    for (const h of REFUSED) {
      const host = h.replace('PORT', String(port));
      for (const [method, target] of [['GET', '/api/sessions'], ['GET', '/'], ['GET', '/api/nothing-here'], ['DELETE', `/api/sessions/${sid}`]] as const) {
        const r = await raw(port, target, { method, host });
        expect({ host, target, status: r.status, error: errorOf(r) }).toEqual({ host, target, status: 403, error: 'EDGE_ERR_HOST_NOT_ALLOWED' });
        expect(r.body).not.toContain(sid);
      }
    }
    const list = JSON.parse((await raw(port, '/api/sessions')).body) as { sessions: { id: string; state: string }[] };
    expect(list.sessions.map((s) => [s.id, s.state])).toEqual([[sid, 'open']]);
  });

  it('accepts loopback names and addresses, with or without the port', async () => {
    const { edge } = await start();
    const port = portOf(edge.adminUrl);
    for (const h of ACCEPTED) {
      const host = h.replace('PORT', String(port));
      expect({ host, status: (await raw(port, '/api/sessions', { host })).status }).toEqual({ host, status: 200 });
      expect({ host, status: (await raw(port, '/', { host })).status }).toEqual({ host, status: 200 });
    }
  });

  it('/metrics, /healthz and /readyz stay open to any Host (Prometheus, kubelet); a missing Host on HTTP/1.1 is 400 everywhere', async () => {
    const { edge } = await start();
    const port = portOf(edge.adminUrl);
    for (const path of ['/metrics', '/healthz', '/readyz']) {
      expect((await raw(port, path, { host: 'evil.example' })).status).toBe(200);
      expect((await raw(port, path, { host: '10.1.2.3:9901' })).status).toBe(200);
      const noHost = await raw(port, path, { host: null });
      expect(noHost.status).toBe(400);
      expect(JSON.parse(noHost.body)).toEqual({ error: 'EDGE_ERR_BAD_REQUEST', reason: 'Host header required' });
      // HTTP/1.0 has no Host requirement: the open paths answer; the API cannot tell it is loopback.
      expect((await raw(port, path, { host: null, version: '1.0' })).status).toBe(200);
    }
    expect((await raw(port, '/api/sessions', { host: null })).status).toBe(400);
    expect((await raw(port, '/api/sessions', { host: null, version: '1.0' })).status).toBe(400);
    expect((await raw(port, '/api/sessions', { host: '' })).status).toBe(400);
  });

  it('with an admin token Host is not checked: the token is the guard', async () => {
    const { edge } = await start({ admin: { token: TOKEN } });
    const port = portOf(edge.adminUrl);
    const auth = { authorization: `Bearer ${TOKEN}` };
    expect((await raw(port, '/api/sessions', { host: 'evil.example', headers: auth })).status).toBe(200);
    expect((await raw(port, '/api/sessions', { host: 'edge-admin.internal:9901', headers: auth })).status).toBe(200);
    const anonymous = await raw(port, '/api/sessions', { host: 'evil.example' });
    expect(anonymous.status).toBe(401);
    expect(errorOf(anonymous)).toBe('EDGE_ERR_UNAUTHORIZED');
  });
});

describe('an exception inside a handler is a 500 for that request only', () => {
  const internalLines = (stack: Stack): Record<string, unknown>[] => stack.edge.logs.filter((l) => l['code'] === 'EDGE_ERR_INTERNAL');

  it('admin: a throw before the answer → 500 EDGE_ERR_INTERNAL, logged with its code, counted; the next request works, streams play on', async () => {
    const stack = await start();
    const ts = await viewer(stack);
    const port = portOf(stack.edge.adminUrl);
    const table = stack.edge.app.sessions.table;
    const page = table.page.bind(table);
    table.page = () => {
      throw new Error('page exploded');
    };
    cleanups.push(() => {
      table.page = page;
    });
    const r = await raw(port, '/api/sessions');
    expect(r.status).toBe(500);
    expect(JSON.parse(r.body)).toEqual({ error: 'EDGE_ERR_INTERNAL' });
    expect(r.closed).toBe(true);
    const [line, ...more] = internalLines(stack);
    expect(more).toEqual([]);
    expect(line).toMatchObject({ level: 50, code: 'EDGE_ERR_INTERNAL', listener: 'admin', method: 'GET', error: { type: 'Error', message: 'page exploded', stack: expect.stringContaining('page exploded') } });
    expect(await stack.edge.metric('edge_internal_errors_total', { listener: 'admin' })).toBe(1);
    expect(await stack.edge.metric('edge_internal_errors_total', { listener: 'public' })).toBe(0);

    expect((await raw(port, '/api/stats')).status).toBe(200);
    table.page = page;
    expect((await raw(port, '/api/sessions')).status).toBe(200);
    await expectStillPlaying(ts);
  });

  it('admin: a throw while a page is being written (headers sent) → the connection is cut, counted; the next request works', async () => {
    const stack = await start();
    const port = portOf(stack.edge.adminUrl);
    await httpRequest(`${stack.edge.url}/play/ch1/v1/index.m3u8?token=t1`);
    const fleet = stack.edge.app.sessions.fleet;
    const real = (await fleet.list({}, undefined, 1)).sessions[0]!;
    // A row whose serialization throws, as the page is written (the rows are the fleet's views).
    const broken = { ...real, toJSON: (): never => { throw new Error('row exploded'); } };
    const list = fleet.list.bind(fleet);
    // Enough good rows that the first piece is on the wire before the bad one.
    fleet.list = () => Promise.resolve({ sessions: [...Array<FleetSessionView>(200).fill(real), broken], total: 201, next: undefined, complete: true });
    cleanups.push(() => {
      fleet.list = list;
    });
    const r = await raw(port, '/api/sessions');
    expect(r.status).toBe(200);
    expect(r.closed).toBe(true);
    expect(r.body).toContain(real.id);
    expect(r.body.endsWith('}\n')).toBe(false);
    expect(await stack.edge.metric('edge_internal_errors_total', { listener: 'admin' })).toBe(1);
    fleet.list = list;
    expect(JSON.parse((await raw(port, '/api/sessions')).body)).toMatchObject({ total: 1, nextCursor: null });
  });

  it('public: a synchronous throw → 500, logged without the viewer\'s token, counted; the next request works', async () => {
    const stack = await start();
    const ts = await viewer(stack);
    const sessions = stack.edge.app.sessions;
    const joinOrOpen = sessions.joinOrOpen.bind(sessions);
    sessions.joinOrOpen = () => {
      throw new TypeError('joinOrOpen exploded');
    };
    cleanups.push(() => {
      sessions.joinOrOpen = joinOrOpen;
    });
    const r = await httpRequest(`${stack.edge.url}/play/ch1/v1/index.m3u8?token=secret-viewer-token`);
    expect(r.status).toBe(500);
    expect(JSON.parse(r.body.toString())).toEqual({ error: 'EDGE_ERR_INTERNAL' });
    expect(internalLines(stack)).toEqual([expect.objectContaining({ listener: 'public', error: expect.objectContaining({ type: 'TypeError', message: 'joinOrOpen exploded' }) })]);
    expect(JSON.stringify(stack.edge.logs)).not.toContain('secret-viewer-token');
    expect(await stack.edge.metric('edge_internal_errors_total', { listener: 'public' })).toBe(1);

    sessions.joinOrOpen = joinOrOpen;
    expect((await httpRequest(`${stack.edge.url}/play/ch1/v1/index.m3u8?token=secret-viewer-token`)).status).toBe(200);
    await expectStillPlaying(ts);
  });

  it('public: a throw after the middleware answered (the async continuation) → 500, counted, no unhandled rejection; the next request works', async () => {
    const stack = await start();
    const sessions = stack.edge.app.sessions;
    const activate = sessions.activate.bind(sessions);
    sessions.activate = () => {
      throw new Error('activate exploded');
    };
    cleanups.push(() => {
      sessions.activate = activate;
    });
    const r = await httpRequest(`${stack.edge.url}/play/ch2/v1/index.m3u8?token=t2`);
    expect(r.status).toBe(500);
    expect(stack.mw.requests).toHaveLength(1); // it did go through the middleware first
    expect(internalLines(stack)).toEqual([expect.objectContaining({ listener: 'public', error: expect.objectContaining({ message: 'activate exploded' }) })]);
    expect(await stack.edge.metric('edge_internal_errors_total', { listener: 'public' })).toBe(1);
    sessions.activate = activate;
    expect((await httpRequest(`${stack.edge.url}/play/ch2/v1/index.m3u8?token=t2`)).status).toBe(200);
  });

  it('what escapes every handler: logged with its code and counted, and the handlers can be removed (main.ts installs them on process)', () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    });
    const counted: string[] = [];
    const proc = new EventEmitter();
    const uninstall = surviveUncaught(proc, { log: createLogger('info', sink), metrics: { internalError: () => undefined, uncaught: (kind) => counted.push(kind) } });
    proc.emit('uncaughtException', Object.assign(new Error('timer exploded'), { input: 'http://x/?token=leak-me' }));
    proc.emit('unhandledRejection', 'a string reason');
    expect(counted).toEqual(['exception', 'rejection']);
    expect(lines[0]).toMatchObject({ level: 50, code: 'EDGE_ERR_INTERNAL', kind: 'exception', error: { type: 'Error', message: 'timer exploded' } });
    expect(lines[0]!['msg']).toMatch(/uncaught exception: logged and survived/);
    // One line per second at most; the rest are counted and reported on the next line.
    expect(lines).toHaveLength(1);
    expect(JSON.stringify(lines)).not.toContain('leak-me');
    uninstall();
    expect(proc.listenerCount('uncaughtException') + proc.listenerCount('unhandledRejection')).toBe(0);
  });
});

interface Page {
  sessions: { id: string; channel: string; name: string | null; openedAt: string }[];
  total: number;
  nextCursor: string | null;
}

async function getPage(stack: Stack, query: string): Promise<Page> {
  const r = await httpRequest(`${stack.edge.adminUrl}/api/sessions?${query}`);
  expect(r.status).toBe(200);
  return JSON.parse(r.body.toString()) as Page;
}

/** Every page, following nextCursor; bounded. */
async function walk(stack: Stack, query: string): Promise<Page[]> {
  const pages: Page[] = [];
  let cursor: string | null = null;
  do {
    const page = await getPage(stack, `${query}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`);
    pages.push(page);
    cursor = page.nextCursor;
  } while (cursor !== null && pages.length < 100);
  return pages;
}

const N = 250;
const channelOf = (i: number): string => `ch${i % 5}`;
const nameOf = (i: number): string => (i % 3 === 0 ? 'Alice' : `bob${i % 2}`);

/** N sessions opened by real players, 10 at a time (so several share a millisecond and the middleware answers out of order). */
async function openSessions(stack: Stack, from: number, count: number): Promise<Map<string, number>> {
  stack.mw.setBehavior((req) => {
    const i = Number(new URLSearchParams(req.rawQuery).get('token')!.slice(1));
    return { kind: 'delay', ms: (i * 7) % 5, then: { kind: 'allow', headers: { 'X-Session-Name': nameOf(i) } } };
  });
  const ids = new Map<string, number>();
  for (let i = from; i < from + count; i += 10) {
    const batch = Array.from({ length: Math.min(10, from + count - i) }, (_, k) => i + k);
    const answers = await Promise.all(batch.map((j) => httpRequest(`${stack.edge.url}/play/${channelOf(j)}/v1/index.m3u8?token=u${j}`)));
    answers.forEach((a, k) => {
      expect(a.status).toBe(200);
      ids.set(markerOf(a.body), batch[k]!);
    });
  }
  return ids;
}

describe('GET /api/sessions is paged', () => {
  it(`${N} sessions, limit 100: three pages, every session exactly once, oldest first, the same order as one big page`, async () => {
    const stack = await start({ session: { idleTimeout: '5m' } });
    const opened = await openSessions(stack, 0, N);
    const pages = await walk(stack, 'limit=100');
    expect(pages.map((p) => p.sessions.length)).toEqual([100, 100, 50]);
    expect(pages.map((p) => p.total)).toEqual([N, N, N]);
    expect(pages.map((p) => typeof p.nextCursor)).toEqual(['string', 'string', 'object']);
    const ids = pages.flatMap((p) => p.sessions.map((s) => s.id));
    expect(new Set(ids).size).toBe(N);
    expect(new Set(ids)).toEqual(new Set(opened.keys()));
    const times = pages.flatMap((p) => p.sessions.map((s) => Date.parse(s.openedAt)));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    const one = await getPage(stack, 'limit=1000');
    expect(one.sessions.map((s) => s.id)).toEqual(ids);
    expect(one.nextCursor).toBeNull();
    // The default page is 100.
    expect((await getPage(stack, '')).sessions.map((s) => s.id)).toEqual(ids.slice(0, 100));
    // The cursor is opaque and names no session.
    for (const p of pages) if (p.nextCursor !== null) expect(ids.some((id) => p.nextCursor!.includes(id))).toBe(false);
  });

  it('filters (channel, name, q) page the same way: exactly the matching sessions, in the same order, with their total', async () => {
    const stack = await start({ session: { idleTimeout: '5m' } });
    const opened = await openSessions(stack, 0, N);
    const all = (await getPage(stack, 'limit=1000')).sessions.map((s) => s.id);
    const expectFilter = async (query: string, keep: (i: number) => boolean): Promise<void> => {
      const want = all.filter((id) => keep(opened.get(id)!));
      const pages = await walk(stack, `${query}&limit=20`);
      expect({ query, ids: pages.flatMap((p) => p.sessions.map((s) => s.id)) }).toEqual({ query, ids: want });
      for (const p of pages) expect(p.total).toBe(want.length);
    };
    await expectFilter('channel=ch1', (i) => channelOf(i) === 'ch1');
    await expectFilter('name=Alice', (i) => nameOf(i) === 'Alice');
    await expectFilter('q=ALI', (i) => nameOf(i) === 'Alice');
    await expectFilter('q=ch3', (i) => channelOf(i) === 'ch3');
    await expectFilter('q=bob1', (i) => nameOf(i) === 'bob1');
    await expectFilter('channel=ch2&name=bob0', (i) => channelOf(i) === 'ch2' && nameOf(i) === 'bob0');
    await expectFilter('channel=nope', () => false);
  });

  it('sessions that close or open between two pages: no repeat, no skip of one open throughout, even when the cursor\'s own session is kicked', async () => {
    const stack = await start({ session: { idleTimeout: '5m' } });
    const opened = await openSessions(stack, 0, N);
    const all = (await getPage(stack, 'limit=1000')).sessions.map((s) => s.id);
    const first = await getPage(stack, 'limit=100');
    const kicked = [all[99]!, ...all.slice(150, 160)];
    for (const id of kicked) expect((await httpRequest(`${stack.edge.adminUrl}/api/sessions/${id}`, { method: 'DELETE' })).status).toBe(200);
    const newer = await openSessions(stack, N, 5);
    let cursor = first.nextCursor;
    const rest: string[] = [];
    for (let pages = 0; cursor !== null && pages < 10; pages++) {
      const page = await getPage(stack, `limit=100&cursor=${encodeURIComponent(cursor)}`);
      expect(page.total).toBe(N - kicked.length + newer.size);
      rest.push(...page.sessions.map((s) => s.id));
      cursor = page.nextCursor;
    }
    const seen = [...first.sessions.map((s) => s.id), ...rest];
    expect(new Set(seen).size).toBe(seen.length);
    expect(opened.size).toBe(N);
    // The old sessions after page 1, minus the kicked ones, in order; then the newer ones (opened last, so listed last).
    const oldRest = all.slice(100).filter((id) => !kicked.includes(id));
    expect(rest.slice(0, oldRest.length)).toEqual(oldRest);
    expect(new Set(rest.slice(oldRest.length))).toEqual(new Set(newer.keys()));
  });

  it('bad limit, cursor and filter values → 400 EDGE_ERR_BAD_REQUEST naming the parameter', async () => {
    const { edge } = await start();
    const port = portOf(edge.adminUrl);
    const fake = (text: string): string => Buffer.from(text).toString('base64url');
    const BAD: [string, string][] = [
      ['limit=0', 'limit'],
      ['limit=-1', 'limit'],
      ['limit=1001', 'limit'],
      ['limit=abc', 'limit'],
      ['limit=1e3', 'limit'],
      ['limit=', 'limit'],
      ['limit=10.5', 'limit'],
      ['limit=99999999999999999999', 'limit'],
      ['limit=10&limit=20', 'limit'],
      ['cursor=', 'cursor'],
      ['cursor=x', 'cursor'],
      ['cursor=%ZZ', 'cursor'],
      [`cursor=${fake('v1.abc.1')}`, 'cursor'],
      [`cursor=${fake('v2.1.1')}`, 'cursor'],
      [`cursor=${fake('v1.1.1')}=`, 'cursor'],
      [`cursor=${fake('v1.1.1')}A`, 'cursor'],
      [`cursor=${'A'.repeat(65)}`, 'cursor'],
      [`cursor=${fake(`v1.${'9'.repeat(16)}.1`)}`, 'cursor'],
      [`q=${'x'.repeat(201)}`, 'q'],
      [`channel=${'x'.repeat(201)}`, 'channel'],
      ['name=a&name=b', 'name'],
    ];
    for (const [query, param] of BAD) {
      const r = await raw(port, `/api/sessions?${query}`);
      const body = JSON.parse(r.body) as { error: string; message: string };
      expect({ query, status: r.status, error: body.error, names: body.message.startsWith(`invalid ${param}`) }).toEqual({ query, status: 400, error: 'EDGE_ERR_BAD_REQUEST', names: true });
    }
    // A well-formed cursor the edge never issued is just a position: an empty last page, not an error.
    expect(JSON.parse((await raw(port, `/api/sessions?cursor=${fake('v1.1.1')}`)).body)).toEqual({ sessions: [], total: 0, nextCursor: null });
  });

  it('a page is streamed (chunked), not sent as one precomputed body', async () => {
    const stack = await start({ session: { idleTimeout: '5m' } });
    await openSessions(stack, 0, 60);
    const r = await raw(portOf(stack.edge.adminUrl), '/api/sessions?limit=1000');
    expect(r.status).toBe(200);
    expect(r.headers['transfer-encoding']).toBe('chunked');
    expect(r.headers['content-length']).toBeUndefined();
    expect(r.headers['cache-control']).toBe('no-store');
    expect((JSON.parse(r.body) as Page).sessions).toHaveLength(60);
  });
});

describe('astra-auth-edge sessions follows the pages', () => {
  it('lists all 1,100 sessions (two pages of the API), or the first --limit, oldest first', async () => {
    const stack = await start({ session: { idleTimeout: '5m' } });
    const injected = injectSessions(stack.edge.app, 1100);
    const run = async (args: string[]): Promise<{ code: number; out: string; err: string }> => {
      let out = '';
      let err = '';
      const code = await runAdminCommand(parseAdminArgs('sessions', ['--admin', stack.edge.adminUrl, ...args], {}), { out: (t) => (out += t), err: (t) => (err += t) });
      return { code, out, err };
    };
    const all = await run(['--json']);
    expect(all.code).toBe(0);
    const listed = JSON.parse(all.out) as { sessions: { id: string }[]; total: number };
    expect(listed.total).toBe(1100);
    expect(listed.sessions.map((s) => s.id)).toEqual(injected.map((s) => s.id));
    const some = await run(['--json', '--limit', '1050']);
    expect((JSON.parse(some.out) as { sessions: unknown[] }).sessions).toHaveLength(1050);
    const table = await run(['--limit', '3', '--channel', 'ch4']);
    expect(table.code).toBe(0);
    expect(table.out.trimEnd().split('\n')).toHaveLength(1 + 3 + 1);
    expect(table.out).toMatch(/\n3 of 110 sessions \(--limit\)\n$/);
    expect(table.out).toContain(injected[4]!.id);
    expect(() => parseAdminArgs('sessions', ['--limit', '0'], {})).toThrow(/invalid --limit: "0"/);
    expect(() => parseAdminArgs('sessions', ['--limit', 'all'], {})).toThrow(/invalid --limit: "all"/);
  });
});
