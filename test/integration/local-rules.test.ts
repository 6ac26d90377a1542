// Local rules and Astra securetoken, decided by the edge itself before (or instead of) the middleware.
import { describe, expect, it } from 'vitest';
import { makeSecureToken } from '../../src/auth/securetoken.js';
import { httpRequest } from '../helpers/client.js';
import { useStack } from '../helpers/stack.js';

const start = useStack({ origin: { segmentBytes: 1024 } });
const body = (b: Buffer): unknown => JSON.parse(b.toString());

describe('local rules, in their documented order', () => {
  it('IP deny beats IP allow; an allow-listed IP skips the middleware; UA and token lists', async () => {
    const { edge, mw, origin } = await start({ rules: { ipAllow: ['127.0.0.0/8'], userAgentDeny: ['^curl/'], tokenDeny: ['stolen'] } });
    // 127.0.0.1 is allow-listed: no middleware call even with a denied UA or token (IP allow comes first).
    expect((await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?token=stolen`, { headers: { 'user-agent': 'curl/8' } })).status).toBe(200);
    expect(mw.requests).toHaveLength(0);
    expect(await edge.metric('edge_auth_decisions_total', { result: 'allow', source: 'rule' })).toBe(1);

    const denied = await start({ rules: { ipAllow: ['127.0.0.1'], ipDeny: ['127.0.0.0/24'] } });
    const res = await httpRequest(`${denied.edge.url}/play/ch1/v1/seg-1.ts?token=t`);
    expect(res.status).toBe(403);
    expect(body(res.body)).toEqual({ error: 'EDGE_ERR_AUTH_DENIED', reason: 'ip_denied' });
    expect(denied.mw.requests).toHaveLength(0);
    expect(origin.requests.length + denied.origin.requests.length).toBe(1);
  });

  it('User-Agent deny patterns and static tokens, without a middleware call', async () => {
    const { edge, mw } = await start({ rules: { userAgentDeny: ['badbot'], tokenDeny: ['stolen'], tokenAllow: ['vip-0123'] } });
    const ua = await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?token=x`, { headers: { 'user-agent': 'Mozilla BadBot/2' } });
    expect(body(ua.body)).toEqual({ error: 'EDGE_ERR_AUTH_DENIED', reason: 'user_agent_denied' });
    const stolen = await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?token=stolen`);
    expect(body(stolen.body)).toEqual({ error: 'EDGE_ERR_AUTH_DENIED', reason: 'token_denied' });
    expect((await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?token=vip-0123`)).status).toBe(200);
    expect(mw.requests).toHaveLength(0);
    // Anything else goes to the middleware.
    expect((await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?token=regular`)).status).toBe(200);
    expect(mw.requests).toHaveLength(1);
  });
});

describe('Astra securetoken', () => {
  const secret = 'astra-secret-value';
  const now = Math.floor(Date.now() / 1000);

  it('valid / expired / wrong IP / tampered, all decided locally', async () => {
    const { edge, mw } = await start({ securetoken: { secret }, backends: undefined, backend: { url: undefined } });
    const valid = makeSecureToken({ channel: 'ch1', clientIp: '127.0.0.1' }, { secret, bindIp: true }, now - 10, now + 600, 'salt1');
    expect((await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?token=${valid}`)).status).toBe(200);

    const expired = makeSecureToken({ channel: 'ch1', clientIp: '127.0.0.1' }, { secret, bindIp: true }, now - 600, now - 10, 'salt2');
    expect(body((await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?token=${expired}`)).body)).toMatchObject({ reason: 'securetoken_expired' });

    const otherIp = makeSecureToken({ channel: 'ch1', clientIp: '10.9.9.9' }, { secret, bindIp: true }, now - 10, now + 600, 'salt3');
    expect(body((await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?token=${otherIp}`)).body)).toMatchObject({ reason: 'securetoken_invalid' });

    const otherChannel = await httpRequest(`${edge.url}/play/ch2/v1/seg-1.ts?token=${valid}`);
    expect(body(otherChannel.body)).toMatchObject({ reason: 'securetoken_invalid' });

    const tampered = valid.replace(/-(\d+)-(\d+)$/, (_m, end: string, st: string) => `-${Number(end) + 3600}-${st}`);
    expect(body((await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?token=${tampered}`)).body)).toMatchObject({ reason: 'securetoken_invalid' });
    expect(mw.requests).toHaveLength(0);
  });

  it('without IP binding any client IP works; a non-securetoken goes to the middleware', async () => {
    const { edge, mw } = await start({ securetoken: { secret, bindIp: false } });
    const anyIp = makeSecureToken({ channel: 'ch1', clientIp: '' }, { secret, bindIp: false }, now - 10, now + 600, 'salt4');
    expect((await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?token=${anyIp}`)).status).toBe(200);
    expect(mw.requests).toHaveLength(0);
    expect((await httpRequest(`${edge.url}/play/ch1/v1/seg-1.ts?token=plain-middleware-token`)).status).toBe(200);
    expect(mw.requests).toHaveLength(1);
  });
});
