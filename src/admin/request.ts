/**
 * What the admin listener accepts as a request, checked before any routing
 * (hardening issue, items 1 and 11). Nothing here throws: every bad input is
 * a value the server answers with a 4xx.
 *
 * - The request target must be origin-form (`/path?query`, RFC 9112 §3.2.1).
 *   It is split by hand, never given to `new URL`, which throws on targets a
 *   client can send (`//[x]/`, a port above 65535).
 * - Path segments are percent-decoded without throwing (`%ZZ` is a 400).
 * - Without an admin token the Host must be a loopback name or address: a web
 *   page whose DNS name the attacker points at 127.0.0.1 (DNS rebinding) is
 *   same-origin with the admin API, but its requests still carry the
 *   attacker's name in Host.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** Longer targets are refused: the status page's longest is a few hundred bytes (filter + cursor). */
export const MAX_ADMIN_TARGET_LENGTH = 4096;

export type TargetResult = { readonly ok: true; readonly path: string; readonly query: URLSearchParams } | { readonly ok: false; readonly reason: string };

/** Splits an origin-form target into its raw path and its query; absolute-form, authority-form and `*` are refused. */
export function parseAdminTarget(target: string | undefined): TargetResult {
  if (target === undefined || target === '') return { ok: false, reason: 'empty request target' };
  if (target.length > MAX_ADMIN_TARGET_LENGTH) return { ok: false, reason: `request target longer than ${MAX_ADMIN_TARGET_LENGTH} bytes` };
  if (target.charCodeAt(0) !== 47 /* / */) return { ok: false, reason: 'request target must be a path (origin-form), not an absolute URL or an authority' };
  const q = target.indexOf('?');
  // URLSearchParams never throws: a malformed %XY stays as it is in the value.
  return q < 0 ? { ok: true, path: target, query: new URLSearchParams() } : { ok: true, path: target.slice(0, q), query: new URLSearchParams(target.slice(q + 1)) };
}

/** decodeURIComponent that returns undefined instead of throwing on bad percent-encoding (`%ZZ`, a lone `%`, invalid UTF-8). */
export function decodePathSegment(segment: string): string | undefined {
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** `name` or `name:port`, `[v6]` or `[v6]:port`. */
const HOST_HEADER = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/;

/**
 * True for a Host header that names this machine's loopback interface and
 * nothing an outsider controls: `localhost`, an IPv4 address in 127.0.0.0/8,
 * or `[::1]`, each with or without a port. Not `localhost.evil` nor
 * `127.0.0.1.evil.example`: those are DNS names, which is what DNS rebinding
 * uses.
 */
export function isLoopbackHost(host: string): boolean {
  const m = HOST_HEADER.exec(host);
  if (m === null) return false;
  if (m[2] !== undefined && Number(m[2]) > 65535) return false;
  const name = m[1]!.toLowerCase();
  if (name === 'localhost') return true;
  if (name.startsWith('[')) {
    if (!isIPv6(name.slice(1, -1))) return false;
    // Any spelling of ::1 (0:0:0:0:0:0:0:1): URL gives the canonical form (and cannot throw on a valid IPv6 literal).
    return URL.canParse(`http://${name}/`) && new URL(`http://${name}/`).hostname === '[::1]';
  }
  return isIPv4(name) && name.startsWith('127.');
}

export type HostVerdict = 'ok' | 'missing' | 'not-loopback';

/**
 * The Host rule for the admin listener without a token. A missing (or
 * empty) Host cannot be shown to be loopback; HTTP/1.1 requires one anyway.
 */
export function checkAdminHost(host: string | undefined): HostVerdict {
  if (host === undefined || host === '') return 'missing';
  return isLoopbackHost(host) ? 'ok' : 'not-loopback';
}
