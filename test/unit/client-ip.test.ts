import { describe, expect, it } from 'vitest';
import { cidrList } from '../../src/config/cidr.js';
import { clientIpOf, normalizeIp } from '../../src/proxy/client-ip.js';

describe('normalizeIp', () => {
  it('writes IPv4-mapped IPv6 addresses as dotted quads, leaves real IPv6 alone', () => {
    expect(normalizeIp('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(normalizeIp('::1')).toBe('::1');
    expect(normalizeIp('2001:db8::1')).toBe('2001:db8::1');
    expect(normalizeIp(undefined)).toBe('');
  });
});

describe('clientIpOf', () => {
  const trusted = cidrList(['10.0.0.0/8', 'fd00::/8', '127.0.0.1']);

  it('uses the socket address when no proxy is trusted, whatever the headers say', () => {
    expect(clientIpOf('::ffff:198.51.100.9', { 'x-forwarded-for': '1.2.3.4', 'x-real-ip': '5.6.7.8' }, undefined)).toBe('198.51.100.9');
    expect(clientIpOf('198.51.100.9', { 'x-forwarded-for': '1.2.3.4' }, trusted)).toBe('198.51.100.9');
  });

  it('walks X-Forwarded-For from the right, skipping trusted hops', () => {
    expect(clientIpOf('10.0.0.5', { 'x-forwarded-for': '203.0.113.7' }, trusted)).toBe('203.0.113.7');
    expect(clientIpOf('10.0.0.5', { 'x-forwarded-for': '6.6.6.6, 203.0.113.7, 10.1.1.1' }, trusted)).toBe('203.0.113.7');
    expect(clientIpOf('::ffff:10.0.0.5', { 'x-forwarded-for': '10.9.9.9, 10.1.1.1' }, trusted)).toBe('10.9.9.9');
    expect(clientIpOf('fd00::1', { 'x-forwarded-for': '2001:db8::7' }, trusted)).toBe('2001:db8::7');
  });

  it('reads X-Real-IP from a trusted proxy only when there is no X-Forwarded-For', () => {
    expect(clientIpOf('10.0.0.5', { 'x-real-ip': '203.0.113.8' }, trusted)).toBe('203.0.113.8');
    expect(clientIpOf('10.0.0.5', { 'x-real-ip': ' 203.0.113.8 ' }, trusted)).toBe('203.0.113.8');
    expect(clientIpOf('10.0.0.5', { 'x-forwarded-for': ' ', 'x-real-ip': '203.0.113.8' }, trusted)).toBe('203.0.113.8');
    expect(clientIpOf('10.0.0.5', { 'x-real-ip': 'not-an-ip' }, trusted)).toBe('10.0.0.5');
  });

  it('garbage in X-Forwarded-For: the client is the nearest hop we can vouch for, never X-Real-IP', () => {
    // Regression (hardening issue, item 13): a last entry that is not an IP made the edge believe
    // the client's own X-Real-IP.
    expect(clientIpOf('10.0.0.5', { 'x-forwarded-for': 'unknown', 'x-real-ip': '203.0.113.8' }, trusted)).toBe('10.0.0.5');
    expect(clientIpOf('10.0.0.5', { 'x-forwarded-for': '203.0.113.7, nonsense', 'x-real-ip': '203.0.113.8' }, trusted)).toBe('10.0.0.5');
    expect(clientIpOf('10.0.0.5', { 'x-forwarded-for': '203.0.113.7,', 'x-real-ip': '203.0.113.8' }, trusted)).toBe('10.0.0.5');
    // Behind the garbage, a trusted hop: that hop is as far as the chain can be believed.
    expect(clientIpOf('10.0.0.5', { 'x-forwarded-for': 'garbage, 10.1.1.1', 'x-real-ip': '203.0.113.8' }, trusted)).toBe('10.1.1.1');
    // An untrusted hop before the garbage is reached first and is the answer, as ever.
    expect(clientIpOf('10.0.0.5', { 'x-forwarded-for': 'garbage, 203.0.113.7', 'x-real-ip': '203.0.113.8' }, trusted)).toBe('203.0.113.7');
  });
});
