/**
 * Config is read once (STYLE §4): defaults ← file ← env ← flags, every value
 * parsed and checked, then frozen. A bad value throws an EdgeError whose
 * message names the setting (as the operator wrote it: flag, env var or YAML
 * path) and the value it got. Nothing here mutates its inputs.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { EdgeError } from '../errors.js';
import { hostname } from 'node:os';
import { DEFAULT_STORE, MAX_WORKERS, OPTIONS, defaultMaxUngranted, type OptionSpec } from './options.js';
import type { RulesConfig } from '../auth/rules.js';

import type { BackendConfig, BackendEntry, CacheConfig, CorsConfig, EdgeConfig } from './schema.js';
import { validateRules } from '../auth/rules.js';
import { parseCidr } from './cidr.js';
import { normalizeCorsOrigin } from '../proxy/cors.js';
import { redactText, redactUrl } from '../redact.js';
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

/** proxy.clientStallTimeout below this would cut players on a Wi-Fi hiccup or a GC pause of theirs. */
const MIN_CLIENT_STALL_TIMEOUT_MS = 1000;

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
    // The parser quotes the offending line, which may hold a secret (a token, a middleware URL's key): keep only where it is.
    const where = (err as Error).message.split('\n')[0]!.replace(/:\s*$/, '');
    throw new EdgeError('EDGE_ERR_CONFIG', `config file ${fileName}: invalid YAML: ${redactText(where)}`, { cause: err });
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

/** A value as a config error quotes it: secrets hidden, URLs without credentials or query values. */
function show(value: unknown, spec: OptionSpec): string {
  if (spec.secret === true) return '"<redacted>"';
  if ((spec.kind === 'url' || spec.kind === 'store') && typeof value === 'string') return JSON.stringify(redactUrl(value));
  return redactText(JSON.stringify(value) ?? String(value));
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
    case 'store':
      return typeof raw === 'string' ? (parseStoreUrl(raw) ?? fail(`${DEFAULT_STORE} or a redis://[user:password@]host[:port][/db] URL (rediss:// for TLS)`)) : fail('memory or a redis:// URL');
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
    case 'intOrAuto': {
      if (typeof raw === 'string' && raw.trim().toLowerCase() === 'auto') return 'auto';
      const n = parseInteger(raw);
      return n !== undefined && n > 0 ? n : fail('a positive integer or auto');
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

/** Highest Redis database index accepted in a store URL's path (Redis's `databases` is 16 by default; some run more). */
const MAX_REDIS_DB = 0xffff;

/**
 * `memory`, or a Redis URL as ioredis reads it: redis:// or rediss://, a
 * host, an optional port, user and password, and `/<db>`; no query (ioredis
 * would take its parameters as client options). Returns the text as given
 * (`memory` lower-cased), or undefined.
 */
export function parseStoreUrl(raw: string): string | undefined {
  if (raw.trim().toLowerCase() === DEFAULT_STORE) return DEFAULT_STORE;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  if ((url.protocol !== 'redis:' && url.protocol !== 'rediss:') || url.hostname === '' || url.search !== '' || url.hash !== '') return undefined;
  const db = url.pathname === '' || url.pathname === '/' ? '0' : url.pathname.slice(1);
  if (!/^\d{1,5}$/.test(db) || Number(db) > MAX_REDIS_DB) return undefined;
  return raw;
}

/** A node name is shown in tables and logs: printable, no spaces, bounded. */
const NODE_NAME = /^[\x21-\x7e]{1,100}$/;
/** A key prefix: what Redis users put in key names, bounded. */
const STORE_PREFIX = /^[A-Za-z0-9_.:{}/-]{0,64}$/;

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
  const defaulted = new Set<string>();
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
      defaulted.add(spec.path);
    }
    const name = describe(spec, origin, fileName);
    where.set(spec.path, name);
    rawValues.set(spec.path, raw);
    values.set(spec.path, raw === undefined ? undefined : parseValue(spec, raw, name));
  }
  const get = <T>(path: string): T => values.get(path) as T;
  const invalid = (path: string, message: string): never => {
    throw new EdgeError('EDGE_ERR_CONFIG', `invalid ${where.get(path)}: ${show(rawValues.get(path), OPTIONS.find((o) => o.path === path)!)}: ${message}`);
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
  const workers = get<number | 'auto'>('workers');
  if (workers !== 'auto' && workers > MAX_WORKERS) invalid('workers', `at most ${MAX_WORKERS} (or auto: one per available core)`);
  const webhook = get<string | undefined>('session.closeWebhook');
  const stallTimeout = get<number>('proxy.clientStallTimeout');
  if (stallTimeout > 0 && stallTimeout < MIN_CLIENT_STALL_TIMEOUT_MS) {
    invalid('proxy.clientStallTimeout', `must be 0 (never) or at least ${MIN_CLIENT_STALL_TIMEOUT_MS / 1000}s: shorter drops viewers over an ordinary network hiccup`);
  }

  const storeUrl = get<string>('store.url');
  const storePrefix = get<string>('store.prefix');
  if (!STORE_PREFIX.test(storePrefix)) invalid('store.prefix', 'use at most 64 letters, digits and "_-.:/{}"');
  const listen = get<HostPort>('listen');
  const nodeName = get<string | undefined>('node.name') ?? `${hostname()}:${listen.port}`;
  if (!NODE_NAME.test(nodeName)) invalid('node.name', 'use 1 to 100 printable characters without spaces');

  const cors = buildCors(get<string[]>('cors.origins'), get<number>('cors.maxAge'), get<boolean>('cors.credentials'), invalid);

  const backend: BackendConfig = {
    type: get('backend.type'),
    url: get<string | undefined>('backend.url'),
    timeoutMs: get<number>('backend.timeout'),
    maxBodyBytes: get<number>('backend.maxBodyBytes'),
    // Unset, it follows backend.concurrency (each call in flight needs a connection of its own).
    connections: defaulted.has('backend.connections') ? Math.max(get<number>('backend.connections'), get<number>('backend.concurrency')) : get<number>('backend.connections'),
    concurrency: get<number>('backend.concurrency'),
    ca: get<string | undefined>('backend.ca'),
    sendName: get<boolean>('backend.sendName'),
    sendIp: get<boolean>('backend.sendIp'),
  };
  const listed = get<unknown[] | undefined>('backends');
  if (listed === undefined && backend.connections < backend.concurrency) invalid('backend.connections', tooFewConnections(backend.concurrency, where.get('backend.concurrency')!));
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
  const cache = buildCache(get, invalid);
  const sessionSecret = get<string | undefined>('session.secret');
  for (const path of ['session.secret', 'session.previousSecret']) {
    const secret = get<string | undefined>(path);
    // Named, never echoed: a secret.
    if (secret !== undefined && secret.length < MIN_SESSION_SECRET_CHARS) throw new EdgeError('EDGE_ERR_CONFIG', `invalid ${where.get(path)}: too short (${secret.length} characters): use at least ${MIN_SESSION_SECRET_CHARS} random characters, the same on every edge`);
  }
  if (get<string | undefined>('session.previousSecret') !== undefined && sessionSecret === undefined) invalid('session.previousSecret', 'needs session.secret (the new secret) too');

  const config: EdgeConfig = {
    listen,
    workers,
    admin: { listen: adminListen, token: adminToken },
    upstream: {
      origin: upstream.origin,
      connectTimeoutMs: get<number>('upstream.connectTimeout'),
      headersTimeoutMs: get<number>('upstream.headersTimeout'),
      bodyTimeoutMs: get<number>('upstream.bodyTimeout'),
      connections: get<number>('upstream.connections'),
      streamConnections: get<number>('upstream.streamConnections'),
      forwardToken: get<boolean>('upstream.forwardToken'),
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
      recheck: get('auth.recheck'),
      maxUngranted: get<number | undefined>('auth.maxUngranted') ?? defaultMaxUngranted(get<number>('auth.maxEntries')),
    },
    session: {
      secret: sessionSecret,
      previousSecret: get<string | undefined>('session.previousSecret'),
      secretOverlapMs: get<number>('session.secretOverlap'),
      param,
      tokenParam,
      channelPattern: get<RegExp>('session.channelPattern'),
      idleTimeoutMs: get<number>('session.idleTimeout'),
      maxStreams: get<number>('session.maxStreams'),
      bindIp: get<boolean>('session.bindIp'),
      closeWebhook: webhook === undefined ? undefined : { url: webhook, method: get('session.closeWebhookMethod'), timeoutMs: get<number>('session.closeWebhookTimeout') },
    },
    limits: { maxSessionsPerUser: get<number>('limits.maxSessionsPerUser'), policy: get('limits.policy'), soft: get<boolean>('limits.soft') },
    hls: { maxPlaylistBytes: get<number>('hls.maxPlaylistBytes') },
    cache,
    fanout: {
      enabled: get<boolean>('fanout.enabled'),
      lingerMs: get<number>('fanout.linger'),
      maxQueueBytes: get<number>('fanout.maxQueue'),
      maxGopBytes: get<number>('fanout.maxGop'),
    },
    cors,
    proxy: { trustedProxies: trusted, maxHeaderBytes: get<number>('proxy.maxHeaderBytes'), clientStallTimeoutMs: stallTimeout },
    log: { level: get('log.level'), access: get<boolean>('log.access'), accessSample: get<number>('log.accessSample'), redactParams: get<string[]>('log.redactParams') },
    health: { public: get<boolean>('health.public'), checkUpstream: get<boolean>('health.checkUpstream') },
    shutdown: { graceMs: get<number>('shutdown.grace'), drainTimeoutMs: get<number>('shutdown.drainTimeout') },
    store: { url: storeUrl === DEFAULT_STORE ? undefined : storeUrl, prefix: storePrefix },
    node: { name: nodeName },
  };
  return deepFreeze(config);
}

/** A session secret shorter than this is guessable offline from one marker. */
const MIN_SESSION_SECRET_CHARS = 16;

/** A cache smaller than this many of its largest objects would evict what it just fetched. */
const MIN_OBJECTS_PER_CACHE = 4;

function buildCache(get: <T>(path: string) => T, invalid: (path: string, message: string) => never): CacheConfig {
  const maxBytes = get<number>('cache.size');
  const maxObjectBytes = get<number>('cache.maxObjectSize');
  if (maxBytes > 0 && maxObjectBytes * MIN_OBJECTS_PER_CACHE > maxBytes) invalid('cache.maxObjectSize', `must be at most cache.size / ${MIN_OBJECTS_PER_CACHE} (${maxBytes} bytes cache)`);
  if (maxObjectBytes === 0) invalid('cache.maxObjectSize', 'must be greater than 0');
  const ttl = get<string>('cache.segmentTtl');
  let segmentTtlMs: number | 'auto' = 'auto';
  if (ttl.trim().toLowerCase() !== 'auto') {
    const ms = parseDurationMs(ttl);
    if (ms === undefined) invalid('cache.segmentTtl', 'expected auto or a duration such as 30s');
    segmentTtlMs = ms!;
  }
  const bypass = get<string[]>('cache.bypass').map((source) => {
    try {
      return new RegExp(source);
    } catch (err) {
      return invalid('cache.bypass', `${JSON.stringify(source)} is not a valid regular expression: ${(err as Error).message}`);
    }
  });
  return {
    maxBytes,
    maxObjectBytes,
    segmentTtlMs,
    playlistTtlMs: get<number>('cache.playlistTtl'),
    negativeTtlMs: get<number>('cache.negativeTtl'),
    bypass,
    header: get<boolean>('cache.header'),
  };
}

/** cors.*: absent without origins; `*` alone; credentials only with listed origins (browsers refuse `*` with credentials). */
function buildCors(entries: readonly string[], maxAgeMs: number, credentials: boolean, invalid: (path: string, message: string) => never): CorsConfig | undefined {
  if (entries.length === 0) {
    if (credentials) invalid('cors.credentials', 'has no effect without cors.origins (--cors-origin): list the origins whose players send cookies');
    return undefined;
  }
  const origins: string[] = [];
  for (const entry of entries) {
    const origin = normalizeCorsOrigin(entry);
    if (origin === undefined) invalid('cors.origins', `${JSON.stringify(entry)} is not an origin: write scheme://host[:port] without a path (https://tv.example.com), null, or * for any`);
    if (!origins.includes(origin)) origins.push(origin);
  }
  if (origins.includes('*') && origins.length > 1) invalid('cors.origins', '* already allows every origin: list it alone, or list origins without it');
  if (credentials && origins.includes('*')) {
    invalid('cors.credentials', 'cannot be true with cors.origins * (browsers refuse a credentialed answer to Access-Control-Allow-Origin: *): list the origins instead');
  }
  return { origins, maxAgeS: Math.floor(maxAgeMs / 1000), credentials };
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

/**
 * Each middleware call in flight needs a connection of its own (one request per
 * connection: auth/guarded.ts); with fewer, calls would wait in the connection
 * pool while their time runs, and count as unavailable.
 */
function tooFewConnections(concurrency: number, concurrencyFrom: string): string {
  return `must be at least the concurrency (${concurrencyFrom}: ${concurrency}): every middleware call in flight needs its own connection: set it to ${concurrency} or more`;
}

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
    const connections = field<number>('connections') ?? defaults.connections;
    const concurrency = field<number>('concurrency') ?? defaults.concurrency;
    if (!single && connections < concurrency) {
      throw new EdgeError('EDGE_ERR_CONFIG', `invalid ${at}.connections: ${connections}: ${tooFewConnections(concurrency, entry['concurrency'] === undefined ? 'backend.concurrency' : `${at}.concurrency`)}`);
    }
    return {
      name,
      type,
      url,
      timeoutMs: field<number>('timeout') ?? defaults.timeoutMs,
      maxBodyBytes: field<number>('maxBodyBytes') ?? defaults.maxBodyBytes,
      connections,
      concurrency,
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
      cache: { ...config.cache, bypass: config.cache.bypass.map((r) => r.source) },
      store: { ...config.store, url: config.store.url === undefined ? DEFAULT_STORE : redactUrl(config.store.url) },
      session: { ...config.session, secret: config.session.secret === undefined ? undefined : '<redacted>', previousSecret: config.session.previousSecret === undefined ? undefined : '<redacted>', channelPattern: config.session.channelPattern.source, closeWebhook: webhook === undefined ? undefined : { ...webhook, url: redactUrl(webhook.url) } },
    }),
  ) as Record<string, unknown>;
}
