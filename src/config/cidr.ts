/**
 * IP addresses and CIDRs as operators write them in lists (trusted proxies,
 * IP allow/deny rules): one strict parser, one BlockList builder.
 */
import { BlockList, isIP } from 'node:net';

export type IpFamily = 'ipv4' | 'ipv6';

/** `10.0.0.0/8`, `fd00::/8` or a bare address; undefined when it is neither. */
export function parseCidr(text: string): { address: string; prefix: number; family: IpFamily } | undefined {
  const slash = text.indexOf('/');
  const address = slash === -1 ? text : text.slice(0, slash);
  // A zone (`fe80::1%eth0`) names an interface, not a client: meaningless in a list.
  const version = address.includes('%') ? 0 : isIP(address);
  if (version === 0) return undefined;
  const max = version === 4 ? 32 : 128;
  const family: IpFamily = version === 4 ? 'ipv4' : 'ipv6';
  if (slash === -1) return { address, prefix: max, family };
  const prefixText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > max) return undefined;
  return { address, prefix, family };
}

/**
 * A BlockList of the given (already validated) entries, or undefined for an
 * empty list so the hot path can skip it. addSubnet masks host bits
 * (10.1.2.3/8 covers 10.0.0.0/8), like every ACL.
 */
export function cidrList(entries: readonly string[]): BlockList | undefined {
  if (entries.length === 0) return undefined;
  const list = new BlockList();
  for (const entry of entries) {
    const c = parseCidr(entry);
    if (c !== undefined) list.addSubnet(c.address, c.prefix, c.family);
  }
  return list;
}
