// The IPC messages between the primary and its workers are checked field by field: anything not
// ours or malformed is dropped (undefined), never half-trusted; what passes keeps only its own fields.
import { describe, expect, it } from 'vitest';
import { IPC_NAMESPACE, MAX_BATCH_ITEMS, envelope, parseFromPrimary, parseFromWorker } from '../../src/cluster/protocol.js';
import { newSessionId } from '../../src/session/session.js';

const id = newSessionId();
const req = { userKey: 'u', sessionId: id, max: 2, unique: false, policy: 'refuse', openedAt: 1, ttlMs: 30_000 };
const emptyBatch = { t: 'batch', publish: [], touch: [], unpublish: [], release: [], end: [] };

describe('messages from a worker', () => {
  it('accepts the well-formed ones', () => {
    expect(parseFromWorker(envelope({ t: 'hello' }))).toEqual({ t: 'hello' });
    expect(parseFromWorker({ ns: IPC_NAMESPACE, t: 'admit', id: 1, req })).toEqual({ t: 'admit', id: 1, req });
    expect(parseFromWorker({ ns: IPC_NAMESPACE, t: 'find', id: 2, joinKey: 12345 })).toEqual({ t: 'find', id: 2, joinKey: 12345 });
    expect(parseFromWorker({ ns: IPC_NAMESPACE, t: 'find', id: 3, sessionId: id })).toEqual({ t: 'find', id: 3, sessionId: id });
    expect(parseFromWorker({ ns: IPC_NAMESPACE, ...emptyBatch, end: [{ sessionId: id, reason: 'kicked', untilMs: 5 }] })).toMatchObject({ t: 'batch', end: [{ sessionId: id }] });
    expect(parseFromWorker({ ns: IPC_NAMESPACE, t: 'answer', id: 4, answer: { op: 'kick', found: true } })).toEqual({ t: 'answer', id: 4, answer: { op: 'kick', found: true } });
    expect(parseFromWorker({ ns: IPC_NAMESPACE, t: 'answer', id: 5, answer: { op: 'metrics', metrics: [{ name: 'x', help: 'h', type: 'gauge', aggregator: 'sum', values: [{ value: NaN, labels: {} }] }] } })).toBeDefined();
  });

  it.each([
    ['another namespace', { ns: 'prom-client', t: 'hello' }],
    ['no namespace', { t: 'hello' }],
    ['not an object', 'hello'],
    ['null', null],
    ['an unknown type', { ns: IPC_NAMESPACE, t: 'shutdown-everything' }],
    ['a request ID of 0', { ns: IPC_NAMESPACE, t: 'admit', id: 0, req }],
    ['a fractional request ID', { ns: IPC_NAMESPACE, t: 'admit', id: 1.5, req }],
    ['a malformed session ID', { ns: IPC_NAMESPACE, t: 'admit', id: 1, req: { ...req, sessionId: '../../etc' } }],
    ['a negative cap', { ns: IPC_NAMESPACE, t: 'admit', id: 1, req: { ...req, max: -1 } }],
    ['an unknown policy', { ns: IPC_NAMESPACE, t: 'admit', id: 1, req: { ...req, policy: 'ask-nicely' } }],
    ['a find with both keys', { ns: IPC_NAMESPACE, t: 'find', id: 1, joinKey: 1, sessionId: id }],
    ['a find with neither', { ns: IPC_NAMESPACE, t: 'find', id: 1 }],
    ['a list of 0', { ns: IPC_NAMESPACE, t: 'list', id: 1, filter: {}, limit: 0 }],
    ['a list with a numeric filter', { ns: IPC_NAMESPACE, t: 'list', id: 1, filter: { channel: 5 }, limit: 10 }],
    ['a batch without its arrays', { ns: IPC_NAMESPACE, t: 'batch', publish: [] }],
    ['a batch over the size bound', { ns: IPC_NAMESPACE, ...emptyBatch, unpublish: Array.from({ length: MAX_BATCH_ITEMS + 1 }, () => id) }],
    ['an end with an infinite time', { ns: IPC_NAMESPACE, ...emptyBatch, end: [{ sessionId: id, reason: 'kicked', untilMs: Infinity }] }],
    ['a published view for another ID', { ns: IPC_NAMESPACE, ...emptyBatch, publish: [{ id, joinKey: 1, marker: undefined, openedAt: 1, expiresAt: 2, lastSeenAt: 1, requests: 0, bytes: 0, view: { id: newSessionId(), channel: 'c', kind: 'hls', name: null, userId: null, openedAt: 'x', lastSeenAt: 'x', requests: 0, bytes: 0, decision: {} } }] }],
    ['an answer to an unknown op', { ns: IPC_NAMESPACE, t: 'answer', id: 1, answer: { op: 'format-disk' } }],
    ['metrics with a string value', { ns: IPC_NAMESPACE, t: 'answer', id: 1, answer: { op: 'metrics', metrics: [{ name: 'x', help: 'h', type: 'gauge', aggregator: 'sum', values: [{ value: '1', labels: {} }] }] } }],
  ])('drops %s', (_name, message) => {
    expect(parseFromWorker(message)).toBeUndefined();
  });
});

describe('messages from the primary', () => {
  it('accepts the well-formed ones, keeping only their own fields', () => {
    expect(parseFromPrimary({ ns: IPC_NAMESPACE, t: 'config', slot: 2, file: { listen: '1.2.3.4:80' }, secret: undefined, ends: [] })).toEqual({ t: 'config', slot: 2, file: { listen: '1.2.3.4:80' }, secret: undefined, ends: [] });
    expect(parseFromPrimary({ ns: IPC_NAMESPACE, t: 'reply', id: 1, admit: { admitted: true, end: [id] } })).toEqual({ t: 'reply', id: 1, admit: { admitted: true, end: [id] } });
    expect(parseFromPrimary({ ns: IPC_NAMESPACE, t: 'reply', id: 1, found: null })).toEqual({ t: 'reply', id: 1, found: null });
    expect(parseFromPrimary({ ns: IPC_NAMESPACE, t: 'reply', id: 1, found: { ended: { sessionId: id, reason: 'kicked', untilMs: 9 } } })).toBeDefined();
    expect(parseFromPrimary({ ns: IPC_NAMESPACE, t: 'op', id: 9, op: 'api', method: 'GET', path: '/api/sessions', query: 'limit=5' })).toEqual({ t: 'op', id: 9, op: 'api', method: 'GET', path: '/api/sessions', query: 'limit=5' });
    expect(parseFromPrimary({ ns: IPC_NAMESPACE, t: 'op', id: 9, op: 'kick', sessionId: id, extra: 'dropped' })).toEqual({ t: 'op', id: 9, op: 'kick', sessionId: id });
    expect(parseFromPrimary({ ns: IPC_NAMESPACE, t: 'op', id: 9, op: 'reload', file: undefined })).toEqual({ t: 'op', id: 9, op: 'reload', file: undefined });
    expect(parseFromPrimary(envelope({ t: 'stop' }))).toEqual({ t: 'stop' });
  });

  it.each([
    ['a config for slot 0', { ns: IPC_NAMESPACE, t: 'config', slot: 0, file: {}, ends: [] }],
    ['a config whose secret is a number', { ns: IPC_NAMESPACE, t: 'config', slot: 1, file: {}, secret: 5, ends: [] }],
    ['a reply with nothing in it', { ns: IPC_NAMESPACE, t: 'reply', id: 1 }],
    ['an admit answer without its end list', { ns: IPC_NAMESPACE, t: 'reply', id: 1, admit: { admitted: true } }],
    ['a page with a bad session', { ns: IPC_NAMESPACE, t: 'reply', id: 1, page: { sessions: [{ id: 'x' }], total: 1, complete: true } }],
    ['ended without a list', { ns: IPC_NAMESPACE, t: 'ended', ends: 'all' }],
    ['an op kick without a session', { ns: IPC_NAMESPACE, t: 'op', id: 1, op: 'kick' }],
    ['an unknown op', { ns: IPC_NAMESPACE, t: 'op', id: 1, op: 'exec', cmd: 'rm -rf /' }],
    ['an api op outside /api/', { ns: IPC_NAMESPACE, t: 'op', id: 1, op: 'api', method: 'GET', path: '/metrics', query: '' }],
    ['a found marker without its session', { ns: IPC_NAMESPACE, t: 'reply', id: 1, found: { marker: 'm' } }],
  ])('drops %s', (_name, message) => {
    expect(parseFromPrimary(message)).toBeUndefined();
  });
});
