/**
 * Config is read once (STYLE §4): defaults ← file ← env ← flags, every value
 * parsed and checked, then frozen. A bad value throws an EdgeError whose
 * message names the setting (as the operator wrote it: flag, env var or YAML
 * path) and the value it got. Nothing here mutates its inputs.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { EdgeError } from '../errors.js';
import { OPTIONS, defaultMaxUngranted, type OptionSpec } from './options.js';
import type { RulesConfig } from '../auth/rules.js';
import type { BackendConfig, BackendEntry, EdgeConfig } from './schema.js';
import { validateRules } from '../auth/rules.js';
import { parseCidr } from './cidr.js';
import { parseBoolean, parseDurationMs, parseHostPort, parseInteger, parseList, parseSizeBytes, type HostPort } from './units.js';

export interface ConfigSources {
  /** Parsed YAML document (an object), if a file was given. */
  readonly file?: unknown;
  readonly fileName?: string;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Values from the command line, keyed by option path (`auth.allowTtl`). */
  readonly flags?: Readonly<Record<string, unknown>>;
}

type Origin = 'flag' | 'env' | 'file' | 'default';

export async function readConfigFile(fileName: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(fileName, 'utf8');
  } catch (err) {
    throw new EdgeError('EDGE_ERR_CONFIG', `config file ${fileName}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return parseYaml(text) ?? {};
  } catch (err) {
    throw new EdgeError('EDGE_ERR_CONFIG', `config file ${fileName}: invalid YAML: ${(err as Error).message}`, { cause: err });
  }
}

/** Flattens a YAML object into dotted paths; lists and scalars are leaves. */
function flatten(value: unknown, prefix: string, out: Map<string, unknown>, fileName: string): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    out.set(prefix, value);
    return;
  }
  for (const [key, child] of Object.entries(value)) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    const known = OPTIONS.some((o) => o.path === path || o.path.startsWith(`${path}.`));
    if (!known) throw new EdgeError('EDGE_ERR_CONFIG', `${fileName}: unknown setting "${path}"`);
    flatten(child, path, out, fileName);
  }
}

function describe(spec: OptionSpec, origin: Origin, fileName: string): string {
  switch (origin) {
    case 'flag':
      return spec.flag ?? spec.path;
    case 'env':
      return spec.env;
    case 'file':
      return `${spec.path} (in ${fileName})`;
    default:
      return `${spec.path} (default)`;
  }
}

function show(value: unknown, spec: OptionSpec): string {
  if (spec.secret === true) return '"<redacted>"';
  return JSON.stringify(value) ?? String(value);
}

function parseValue(spec: OptionSpec, raw: unknown, where: string): unknown {
  const fail = (expected: string): never => {
    throw new EdgeError('EDGE_ERR_CONFIG', `invalid ${where}: ${show(raw, spec)}: expected ${expected}`);
  };
  switch (spec.kind) {
    case 'string':
      return typeof raw === 'string' && raw !== '' ? raw : fail('a non-empty string');
    case 'url': {
      if (typeof raw !== 'string') return fail('a URL');
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        return fail('an absolute http:// or https:// URL');
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') fail('an http:// or https:// URL');
      return raw;
    }
    case 'hostport':
      return parseHostPort(raw) ?? fail('HOST:PORT, e.g. 0.0.0.0:8080 or [::1]:9901');
    case 'duration':
      return parseDurationMs(raw) ?? fail('a duration such as 500ms, 30s, 5m, 1h (a bare number is seconds)');
    case 'size':
      return parseSizeBytes(raw) ?? fail('a size such as 65536, 64KiB, 1MiB');
    case 'int': {
      const n = parseInteger(raw);
      return n !== undefined && n > 0 ? n : fail('a positive integer');
    }
    case 'count': {
      const n = parseInteger(raw);
      return n !== undefined && n >= 0 ? n : fail('a whole number (0 or more)');
    }
    case 'ratio': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*\d*\.?\d+\s*$/.test(raw) ? Number(raw) : NaN;
      return n >= 0 && n <= 1 ? n : fail('a number between 0 and 1, e.g. 0.01');
    }
    case 'bool':
      return parseBoolean(raw) ?? fail('true or false');
    case 'enum':
      return typeof raw === 'string' && spec.values!.includes(raw) ? raw : fail(`one of ${spec.values!.join(', ')}`);
    case 'list':
      return parseList(raw) ?? fail('a list of strings (or a comma-separated string)');
    case 'backends': {
      // Checked entry by entry in buildBackends(), once backend.* (their defaults) are known.
      if (Array.isArray(raw)) return raw;
      if (typeof raw === 'string') {
        try {
          const parsed: unknown = JSON.parse(raw);
          if (Array.isArray(parsed)) return parsed;
        } catch {
          // fall through
        }
      }
      return fail('a list of backends (in the environment: a JSON array)');
    }
    case 'regex': {
      if (typeof raw !== 'string') return fail('a regular expression');
      let re: RegExp;
      try {
        re = new RegExp(raw);
      } catch (err) {
        return fail(`a valid regular expression (${(err as Error).message})`);
      }
      if (!raw.includes('(?<channel>')) fail('a regular expression with a named group (?<channel>...)');
      return re;
    }
  }
}

/** Builds the frozen EdgeConfig. Pure: the caller reads files and the environment. */
export function buildConfig(sources: ConfigSources): EdgeConfig {
  const fileName = sources.fileName ?? 'config file';
  const fileValues = new Map<string, unknown>();
  if (sources.file !== undefined) {
    if (sources.file === null || typeof sources.file !== 'object' || Array.isArray(sources.file)) {
      throw new EdgeError('EDGE_ERR_CONFIG', `${fileName}: expected a YAML mapping at the top level`);
    }
    flatten(sources.file, '', fileValues, fileName);
  }
  const values = new Map<string, unknown>();
  const rawValues = new Map<string, unknown>();
  const where = new Map<string, string>();
  for (const spec of OPTIONS) {
    let raw: unknown;
    let origin: Origin;
    const envValue = sources.env?.[spec.env];
    if (sources.flags !== undefined && spec.path in sources.flags) {
      raw = sources.flags[spec.path];
      origin = 'flag';
    } else if (envValue !== undefined && envValue !== '') {
      raw = envValue;
      origin = 'env';
    } else if (fileValues.has(spec.path) && fileValues.get(spec.path) !== null) {
      raw = fileValues.get(spec.path);
      origin = 'file';
    } else {
      raw = spec.default;
      origin = 'default';
    }
    const name = describe(spec, origin, fileName);
    where.set(spec.path, name);
    rawValues.set(spec.path, raw);
    values.set(spec.path, raw === undefined ? undefined : parseValue(spec, raw, name));
  }
  const get = <T>(path: string): T => values.get(path) as T;
  const invalid = (path: string, message: string): never => {
    throw new EdgeError('EDGE_ERR_CONFIG', `invalid ${where.get(path)}: ${JSON.stringify(rawValues.get(path))}: ${message}`);
  };

  const upstream = new URL(get<string>('upstream.url'));
  if ((upstream.pathname !== '/' && upstream.pathname !== '') || upstream.search !== '' || upstream.hash !== '') {
    invalid('upstream.url', 'must be an origin (scheme://host:port) without path or query');
  }
  if (upstream.username !== '' || upstream.password !== '') invalid('upstream.url', 'credentials in the URL are not supported');

  const trusted = get<string[]>('proxy.trustedProxies');
  for (const cidr of trusted) {
    if (parseCidr(cidr) === undefined) {
      throw new EdgeError('EDGE_ERR_CONFIG', `invalid ${where.get('proxy.trustedProxies')}: ${JSON.stringify(cidr)}: expected an IP address or CIDR such as 10.0.0.0/8 or fd00::/8`);
    }
  }
  const param = get<string>('session.param');
  if (!/^[A-Za-z0-9_.-]+$/.test(param)) invalid('session.param', 'use letters, digits, "_", "-" or "." only');
  const tokenParam = get<string>('session.tokenParam');
  if (!/^[A-Za-z0-9_.-]+$/.test(tokenParam)) invalid('session.tokenParam', 'use letters, digits, "_", "-" or "." only');
  if (param === tokenParam) invalid('session.param', 'must differ from session.tokenParam');
  if (get<number>('backend.timeout') === 0) invalid('backend.timeout', 'must be greater than 0');
  if (get<number>('hls.maxPlaylistBytes') < 1024) invalid('hls.maxPlaylistBytes', 'must be at least 1KiB');
  const adminListen = get<HostPort>('admin.listen');
  const adminToken = get<string | undefined>('admin.token');
  if (adminToken === undefined && !isLoopback(adminListen.host)) {
    invalid('admin.listen', 'the admin listener is not on loopback: set an admin token (--admin-token or EDGE_ADMIN_TOKEN), or bind it to 127.0.0.1');
  }
  if (adminToken !== undefined && adminToken.length < 16) {
    throw new EdgeError('EDGE_ERR_CONFIG', `invalid ${where.get('admin.token')}: too short (${adminToken.length} characters): use at least 16 random characters`);
  }
  const webhook = get<string | undefined>('session.closeWebhook');

  const backend: BackendConfig = {
    type: get('backend.type'),
    url: get<string | undefined>('backend.url'),
    timeoutMs: get<number>('backend.timeout'),
    maxBodyBytes: get<number>('backend.maxBodyBytes'),
    connections: get<number>('backend.connections'),
    concurrency: get<number>('backend.concurrency'),
    ca: get<string | undefined>('backend.ca'),
    sendName: get<boolean>('backend.sendName'),
    sendIp: get<boolean>('backend.sendIp'),
  };
  const listed = get<unknown[] | undefined>('backends');
  const backends = listed === undefined ? (backend.url === undefined ? [] : buildBackends([{ url: backend.url }], backend, where.get('backend.url')!, true)) : buildBackends(listed, backend, where.get('backends')!);
  const rules: RulesConfig = {
    ipAllow: get<string[]>('rules.ipAllow'),
    ipDeny: get<string[]>('rules.ipDeny'),
    userAgentDeny: get<string[]>('rules.userAgentDeny'),
    tokenDeny: get<string[]>('rules.tokenDeny'),
    tokenAllow: get<string[]>('rules.tokenAllow'),
  };
  const rulesError = validateRules(rules);
  if (rulesError !== undefined) throw new EdgeError('EDGE_ERR_CONFIG', `invalid ${rulesError}`);

  const config: EdgeConfig = {
    listen: get<HostPort>('listen'),
    admin: { listen: adminListen, token: adminToken },
    upstream: {
      origin: upstream.origin,
      connectTimeoutMs: get<number>('upstream.connectTimeout'),
      headersTimeoutMs: get<number>('upstream.headersTimeout'),
      bodyTimeoutMs: get<number>('upstream.bodyTimeout'),
      connections: get<number>('upstream.connections'),
    },
    backend,
    backends,
    rules,
    securetoken: { secret: get<string | undefined>('securetoken.secret'), bindIp: get<boolean>('securetoken.bindIp') },
    auth: {
      defaultAction: get('auth.defaultAction'),
      allowTtlMs: get<number>('auth.allowTtl'),
      denyTtlMs: get<number>('auth.denyTtl'),
      unavailableTtlMs: get<number>('auth.unavailableTtl'),
      maxTtlMs: get<number>('auth.maxTtl'),
      staleGraceMs: get<number>('auth.staleGrace'),
      maxEntries: get<number>('auth.maxEntries'),
      maxUngranted: get<number | undefined>('auth.maxUngranted') ?? defaultMaxUngranted(get<number>('auth.maxEntries')),
    },
    session: {
      param,
      tokenParam,
      channelPattern: get<RegExp>('session.channelPattern'),
      idleTimeoutMs: get<number>('session.idleTimeout'),
      bindIp: get<boolean>('session.bindIp'),
      closeWebhook: webhook === undefined ? undefined : { url: webhook, method: get('session.closeWebhookMethod'), timeoutMs: get<number>('session.closeWebhookTimeout') },
    },
    limits: { maxSessionsPerUser: get<number>('limits.maxSessionsPerUser'), policy: get('limits.policy'), soft: get<boolean>('limits.soft') },
    hls: { maxPlaylistBytes: get<number>('hls.maxPlaylistBytes') },
    proxy: { trustedProxies: trusted, maxHeaderBytes: get<number>('proxy.maxHeaderBytes') },
    log: { level: get('log.level'), access: get<boolean>('log.access'), accessSample: get<number>('log.accessSample'), redactParams: get<string[]>('log.redactParams') },
    health: { public: get<boolean>('health.public'), checkUpstream: get<boolean>('health.checkUpstream') },
    shutdown: { graceMs: get<number>('shutdown.grace'), drainTimeoutMs: get<number>('shutdown.drainTimeout') },
  };
  return deepFreeze(config);
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Keys a `backends` entry may have: its own name and url, and every backend.* setting. */
const BACKEND_ENTRY_KEYS: Readonly<Record<string, string>> = {
  type: 'backend.type',
  timeout: 'backend.timeout',
  maxBodyBytes: 'backend.maxBodyBytes',
  connections: 'backend.connections',
  concurrency: 'backend.concurrency',
  ca: 'backend.ca',
  sendName: 'backend.sendName',
  sendIp: 'backend.sendIp',
};

/** Each entry of `backends`, parsed like the backend.* settings it mirrors; missing ones take backend.*'s values. */
function buildBackends(list: readonly unknown[], defaults: BackendConfig, where: string, single = false): BackendEntry[] {
  if (list.length === 0) throw new EdgeError('EDGE_ERR_CONFIG', `invalid ${where}: an empty list (remove it, or list at least one backend)`);
  const names = new Set<string>();
  return list.map((item, i) => {
    const at = single ? where : `${where.replace(/ \(.*$/, '')}[${i}]`;
    if (item === null || typeof item !== 'object' || Array.isArray(item)) throw new EdgeError('EDGE_ERR_CONFIG', `invalid ${at}: expected a mapping with type and url`);
    const entry = item as Record<string, unknown>;
    for (const key of Object.keys(entry)) {
      if (key !== 'name' && key !== 'url' && BACKEND_ENTRY_KEYS[key] === undefined) throw new EdgeError('EDGE_ERR_CONFIG', `invalid ${at}: unknown setting "${key}"`);
    }
    const field = <T>(key: string): T | undefined => {
      if (entry[key] === undefined) return undefined;
      const spec = OPTIONS.find((o) => o.path === (key === 'url' ? 'backend.url' : BACKEND_ENTRY_KEYS[key]))!;
      return parseValue(spec, entry[key], `${at}.${key}`) as T;
    };
    const url = field<string>('url');
    if (url === undefined) throw new EdgeError('EDGE_ERR_CONFIG', `invalid ${at}: url is required`);
    const type = field<BackendEntry['type']>('type') ?? defaults.type;
    if (type !== 'http' && type !== 'flussonic' && url.includes('?')) {
      throw new EdgeError('EDGE_ERR_CONFIG', `invalid ${single ? at : `${at}.url`}: ${JSON.stringify(redactUrl(url))}: a ${type} address is a base URL without a query (the check path is added to it)`);
    }
    const name = entry['name'] === undefined ? `${type}${list.length > 1 ? `-${i + 1}` : ''}` : String(entry['name']);
    if (!/^[A-Za-z0-9_.-]{1,40}$/.test(name)) throw new EdgeError('EDGE_ERR_CONFIG', `invalid ${at}.name: ${JSON.stringify(name)}: letters, digits, "_", "-", "." (at most 40): it is a metric label`);
    if (names.has(name)) throw new EdgeError('EDGE_ERR_CONFIG', `invalid ${at}.name: ${JSON.stringify(name)} is used twice`);
    names.add(name);
    return {
      name,
      type,
      url,
      timeoutMs: field<number>('timeout') ?? defaults.timeoutMs,
      maxBodyBytes: field<number>('maxBodyBytes') ?? defaults.maxBodyBytes,
      connections: field<number>('connections') ?? defaults.connections,
      concurrency: field<number>('concurrency') ?? defaults.concurrency,
      ca: field<string>('ca') ?? defaults.ca,
      sendName: field<boolean>('sendName') ?? defaults.sendName,
      sendIp: field<boolean>('sendIp') ?? defaults.sendIp,
    };
  });
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !(value instanceof RegExp)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** Effective config with secrets redacted, for `check-config` and the startup log. */
export function describeConfig(config: EdgeConfig): Record<string, unknown> {
  const backendUrl = config.backend.url === undefined ? undefined : redactUrl(config.backend.url);
  const webhook = config.session.closeWebhook;
  return JSON.parse(
    JSON.stringify({
      ...config,
      admin: { ...config.admin, token: config.admin.token === undefined ? undefined : '<redacted>' },
      backend: { ...config.backend, url: backendUrl },
      backends: config.backends.map((b) => ({ ...b, url: redactUrl(b.url) })),
      rules: { ...config.rules, tokenAllow: config.rules.tokenAllow.map(() => '<redacted>'), tokenDeny: config.rules.tokenDeny.map(() => '<redacted>') },
      securetoken: { ...config.securetoken, secret: config.securetoken.secret === undefined ? undefined : '<redacted>' },
      session: { ...config.session, channelPattern: config.session.channelPattern.source, closeWebhook: webhook === undefined ? undefined : { ...webhook, url: redactUrl(webhook.url) } },
    }),
  ) as Record<string, unknown>;
}

/** Drops credentials and query values from a URL: middleware URLs often carry API keys. */
export function redactUrl(text: string): string {
  const url = new URL(text);
  if (url.username !== '' || url.password !== '') {
    url.username = 'redacted';
    url.password = '';
  }
  for (const key of [...url.searchParams.keys()]) url.searchParams.set(key, 'redacted');
  return url.toString();
}
