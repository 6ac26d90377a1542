/**
 * Local rules, checked for every new session before any middleware call.
 * Pure: no I/O, no clock, nothing allocated per call except one digest when
 * token lists are configured.
 *
 * Order (the first rule that matches decides):
 *   1. client IP in rules.ipDeny          → deny  `ip_denied`
 *   2. client IP in rules.ipAllow         → allow `ip_allowed`
 *      (allow-listed IPs skip the middleware and every later rule, as Astra
 *      checks its IP list first)
 *   3. User-Agent matches rules.userAgentDeny → deny  `user_agent_denied`
 *   4. token in rules.tokenDeny           → deny  `token_denied`
 *   5. token in rules.tokenAllow          → allow `token_allowed`
 *   otherwise no rule decides and the middleware is asked.
 *
 * IP lists take bare addresses and CIDRs, IPv4 and IPv6 (`10.0.0.0/8`,
 * `203.0.113.7`, `2001:db8::/32`); an IPv4 client also matches an entry
 * written IPv4-mapped (`::ffff:10.0.0.0/104`) and vice versa. User-Agent
 * patterns are regular expressions, matched case-insensitively anywhere in
 * the header (anchor them with ^…$ to match the whole value). Tokens compare
 * with the value the middleware reads (hardening issue, item 8): decoded as a
 * form (proxy/query.ts), so `?token=a%2Bb` is `a+b`, `?token=a+b` is `a b`
 * and `?%74oken=BAD` is `BAD`. Write a token as the middleware sees it, not
 * as it appears in the URL.
 */
import { createHash } from 'node:crypto';
import { isIP, type BlockList } from 'node:net';
import { cidrList, parseCidr, type IpFamily } from '../config/cidr.js';

export interface RulesConfig {
  readonly ipAllow: readonly string[];
  readonly ipDeny: readonly string[];
  readonly tokenAllow: readonly string[];
  readonly tokenDeny: readonly string[];
  /** Regular-expression sources, matched case-insensitively. */
  readonly userAgentDeny: readonly string[];
}

/** `undefined`: no rule matched, ask the middleware. */
export type RuleResult = { allow: boolean; reason: string } | undefined;

export interface RuleInput {
  readonly clientIp: string;
  /** Value of the token parameter, decoded as the middleware reads it, if the query has one. */
  readonly token: string | undefined;
  readonly userAgent: string;
}

/**
 * The rules in the order evaluate() applies them, with their flag: what
 * `astra-auth-edge check` lists (a unit test keeps this table and evaluate()
 * in step).
 */
export const RULE_ORDER: readonly { readonly list: keyof RulesConfig; readonly flag: string; readonly reason: string; readonly allow: boolean }[] = [
  { list: 'ipDeny', flag: '--ip-deny', reason: 'ip_denied', allow: false },
  { list: 'ipAllow', flag: '--ip-allow', reason: 'ip_allowed', allow: true },
  { list: 'userAgentDeny', flag: '--user-agent-deny', reason: 'user_agent_denied', allow: false },
  { list: 'tokenDeny', flag: '--token-deny', reason: 'token_denied', allow: false },
  { list: 'tokenAllow', flag: '--token-allow', reason: 'token_allowed', allow: true },
];

// Shared, frozen results: evaluate() allocates none.
const IP_DENIED = Object.freeze({ allow: false, reason: 'ip_denied' });
const IP_ALLOWED = Object.freeze({ allow: true, reason: 'ip_allowed' });
const USER_AGENT_DENIED = Object.freeze({ allow: false, reason: 'user_agent_denied' });
const TOKEN_DENIED = Object.freeze({ allow: false, reason: 'token_denied' });
const TOKEN_ALLOWED = Object.freeze({ allow: true, reason: 'token_allowed' });

/**
 * A configured token that still looks percent-encoded (`a%2Bb`): tokens used
 * to be compared raw and are now compared decoded, so such an entry would
 * silently stop matching; refused, with the reason, instead.
 */
const PERCENT_ESCAPE = /%[0-9A-Fa-f]{2}/;

function compileUserAgent(source: string): RegExp {
  return new RegExp(source, 'i');
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * The first bad entry, as `rules.<list>: "<value>" is …` (tokens are secrets:
 * named by position, never echoed), or undefined when the config is valid.
 */
export function validateRules(config: RulesConfig): string | undefined {
  for (const list of ['ipAllow', 'ipDeny'] as const) {
    for (const entry of config[list]) {
      if (parseCidr(entry) === undefined) return `rules.${list}: ${JSON.stringify(entry)} is not an IP address or CIDR`;
    }
  }
  for (const entry of config.userAgentDeny) {
    // An empty pattern matches every User-Agent: almost surely a stray comma, not intent.
    if (entry === '') return 'rules.userAgentDeny: "" would match every User-Agent (write ^$ to refuse an empty one)';
    try {
      compileUserAgent(entry);
    } catch (err) {
      return `rules.userAgentDeny: ${JSON.stringify(entry)} is not a valid regular expression: ${(err as Error).message}`;
    }
  }
  for (const list of ['tokenAllow', 'tokenDeny'] as const) {
    const entries = config[list];
    for (let i = 0; i < entries.length; i++) {
      if (entries[i] === '') return `rules.${list}[${i}]: empty`;
      if (PERCENT_ESCAPE.test(entries[i]!)) {
        return `rules.${list}[${i}]: looks percent-encoded: tokens are compared decoded, as the middleware reads them (write "a+b" for ?token=a%2Bb)`;
      }
    }
  }
  return undefined;
}

export class LocalRules {
  /** True when no rule is configured: the caller may skip evaluate(). */
  readonly empty: boolean;
  private readonly ipDeny: BlockList | undefined;
  private readonly ipAllow: BlockList | undefined;
  private readonly userAgentDeny: readonly RegExp[];
  /**
   * SHA-256 hex digests of the configured tokens. A static allow-token is a
   * secret: comparing the presented token with it byte by byte would leak,
   * through timing, how long a prefix a guess got right. Looking up the
   * guess's digest instead leaks at most a prefix of a digest, which tells
   * nothing about the token (preimage resistance), so a plain Set will do.
   */
  private readonly tokenDeny: ReadonlySet<string>;
  private readonly tokenAllow: ReadonlySet<string>;

  /** Throws a TypeError naming the bad entry (see validateRules). */
  constructor(config: RulesConfig) {
    const problem = validateRules(config);
    if (problem !== undefined) throw new TypeError(problem);
    this.ipDeny = cidrList(config.ipDeny);
    this.ipAllow = cidrList(config.ipAllow);
    this.userAgentDeny = config.userAgentDeny.map(compileUserAgent);
    this.tokenDeny = new Set(config.tokenDeny.map(sha256Hex));
    this.tokenAllow = new Set(config.tokenAllow.map(sha256Hex));
    this.empty = this.ipDeny === undefined && this.ipAllow === undefined && this.userAgentDeny.length === 0 && this.tokenDeny.size === 0 && this.tokenAllow.size === 0;
  }

  evaluate(input: RuleInput): RuleResult {
    if (this.empty) return undefined;
    const version = isIP(input.clientIp);
    if (version !== 0) {
      const family: IpFamily = version === 4 ? 'ipv4' : 'ipv6';
      if (this.ipDeny?.check(input.clientIp, family) === true) return IP_DENIED;
      if (this.ipAllow?.check(input.clientIp, family) === true) return IP_ALLOWED;
    }
    for (const pattern of this.userAgentDeny) {
      if (pattern.test(input.userAgent)) return USER_AGENT_DENIED;
    }
    if (input.token !== undefined && (this.tokenDeny.size > 0 || this.tokenAllow.size > 0)) {
      const digest = sha256Hex(input.token);
      if (this.tokenDeny.has(digest)) return TOKEN_DENIED;
      if (this.tokenAllow.has(digest)) return TOKEN_ALLOWED;
    }
    return undefined;
  }
}
