// The session view's `why` and `nextCheckAt` (operator issue, part 1): what the admin API, the
// status page and `astra-auth-edge sessions` show about why a session was let in or not.
import { describe, expect, it } from 'vitest';
import type { Decision } from '../../src/auth/types.js';
import { Session } from '../../src/session/session.js';
import { viewOf } from '../../src/session/table.js';

const NOW = Date.parse('2026-12-01T10:00:00Z');

function session(decision?: Decision, expiresInMs = 60_000): Session {
  const s = new Session('S1edgeSessionIdAAAAAAA', { channel: 'a001', kind: 'hls', clientIp: '10.1.2.3', userAgent: 'VLC', host: 'edge', path: '/play/a001/index.m3u8', query: 'token=t', token: 't', referer: '' }, NOW);
  if (decision !== undefined) {
    s.decision = decision;
    s.expiresAt = decision.decidedAt + expiresInMs;
  }
  return s;
}

describe('why', () => {
  it.each<[string, Decision, Record<string, unknown>]>([
    [
      'a middleware allow',
      { allow: true, reason: 'backend_200', status: 200, backend: 'portal', source: 'backend', decidedAt: NOW },
      { decidedBy: 'backend', backend: 'portal', status: 200, reason: 'backend_200', short: 'backend portal 200', text: 'allowed by the middleware portal: it answered 200 (backend_200)' },
    ],
    [
      'a Smarty deny with its own reason',
      { allow: false, reason: 'expired', status: 200, backend: 'smarty', source: 'backend', decidedAt: NOW },
      { decidedBy: 'backend', status: 200, reason: 'expired', short: 'backend smarty 200 expired', text: 'denied by the middleware smarty: it answered 200 (expired)' },
    ],
    ['no call made (no token)', { allow: false, reason: 'no_token', backend: 'stalker', source: 'backend', decidedAt: NOW }, { status: null, short: 'backend stalker no_token', text: 'denied by the middleware stalker (no_token)' }],
    ['a local rule', { allow: false, reason: 'ip_denied', source: 'rule', decidedAt: NOW }, { decidedBy: 'rule', rule: 'ip_denied', backend: null, short: 'rule ip_denied', text: 'denied by a local rule (ip_denied)' }],
    ['securetoken', { allow: true, reason: 'securetoken_valid', source: 'rule', decidedAt: NOW, ttlMs: 1000 }, { decidedBy: 'securetoken', rule: 'securetoken_valid', short: 'securetoken securetoken_valid' }],
    [
      'the default action, middleware down',
      { allow: true, reason: 'middleware_unavailable', source: 'default', decidedAt: NOW, defaultAction: 'allow', failure: 'EDGE_ERR_BACKEND_REFUSED' },
      { decidedBy: 'default', defaultAction: 'allow', failure: 'EDGE_ERR_BACKEND_REFUSED', short: 'default allow: refused', text: 'allowed by the default action (allow): the middleware was unavailable (EDGE_ERR_BACKEND_REFUSED)' },
    ],
    [
      'the default action, keep-granted, after an earlier middleware allow',
      { allow: true, reason: 'middleware_unavailable', status: 200, backend: 'portal', sessionName: 'alice', source: 'default', decidedAt: NOW, defaultAction: 'keep-granted', failure: 'EDGE_ERR_BACKEND_HTTP_5XX' },
      { decidedBy: 'default', backend: null, status: null, defaultAction: 'keep-granted', short: 'default keep-granted: http_5xx' },
    ],
    [
      'no middleware configured',
      { allow: false, reason: 'no_backend_configured', source: 'default', decidedAt: NOW, defaultAction: 'deny' },
      { decidedBy: 'default', failure: 'no_backend_configured', short: 'default deny: no_backend_configured', text: 'denied by the default action (deny): no middleware is configured' },
    ],
  ])('%s', (_what, decision, why) => {
    const view = viewOf(session(decision));
    expect(view.why).toMatchObject({ ended: null, ...why });
    expect(view.nextCheckAt).toBe(new Date(NOW + 60_000).toISOString());
  });

  it('before the first decision: pending, no next check', () => {
    const s = session();
    s.pending = Promise.resolve({ allow: true, reason: 'x', source: 'backend', decidedAt: NOW });
    expect(viewOf(s)).toMatchObject({ why: { decidedBy: null, short: 'pending', text: 'waiting for the first decision' }, nextCheckAt: null });
  });

  it('an ended session says why it ended and has no next check', () => {
    const s = session({ allow: true, reason: 'backend_200', status: 200, backend: 'http', source: 'backend', decidedAt: NOW });
    s.endReason = 'backend_403';
    expect(viewOf(s)).toMatchObject({ why: { ended: 'backend_403', short: 'ended backend_403 (backend http 200)' }, nextCheckAt: null });
  });

  it('a decision kept beyond what a date can hold has no next check (and no crash)', () => {
    const s = session({ allow: true, reason: 'backend_200', source: 'backend', decidedAt: NOW }, Number.MAX_SAFE_INTEGER);
    expect(viewOf(s)).toMatchObject({ nextCheckAt: null, decision: { expiresAt: null } });
  });
});
