/**
 * The client's address: the socket's, unless the socket belongs to a proxy
 * the operator trusts (proxy.trustedProxies), in which case X-Forwarded-For
 * (walked right to left, skipping trusted hops) or X-Real-IP is believed.
 */
import { isIP, type BlockList } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';

/** `::ffff:10.0.0.1` → `10.0.0.1`: players and middlewares expect the dotted form. */
export function normalizeIp(address: string | undefined): string {
  if (address === undefined) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

function isTrusted(trusted: BlockList, ip: string): boolean {
  const family = isIP(ip);
  return family !== 0 && trusted.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * X-Real-IP is read only when there is no X-Forwarded-For at all. A chain
 * with something that is not an address in it is not a reason to believe
 * X-Real-IP instead: a trusted proxy writes the address it saw, so garbage
 * there was written by whoever sent it (hardening issue, item 13). The client
 * is then the nearest hop we can vouch for: the trusted hop just right of the
 * garbage, or the peer itself when the garbage is the last entry.
 */
export function clientIpOf(socketAddress: string | undefined, headers: IncomingHttpHeaders, trusted: BlockList | undefined): string {
  const peer = normalizeIp(socketAddress);
  if (trusted === undefined || !isTrusted(trusted, peer)) return peer;
  const xff = headers['x-forwarded-for'];
  if (typeof xff === 'string' && xff.trim() !== '') {
    const hops = xff.split(',');
    let nearest = peer;
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = normalizeIp(hops[i]!.trim());
      if (isIP(hop) === 0) return nearest;
      if (i === 0 || !isTrusted(trusted, hop)) return hop;
      nearest = hop;
    }
  }
  const realIp = headers['x-real-ip'];
  if (typeof realIp === 'string' && isIP(realIp.trim()) !== 0) return normalizeIp(realIp.trim());
  return peer;
}
