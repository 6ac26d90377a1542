/**
 * `check`, the middleware exchange in separate steps, so that "connection
 * refused", "hangs without an answer" and "certificate not trusted" are told
 * apart (Astra's troubleshooting page has only `curl -v` for that):
 *
 *   DNS   every address of the name (dns.lookup, as the edge's HTTP client does)
 *   TCP   connect to each address in turn: refused, unreachable or no answer
 *   TLS   https only, with backend.ca when set: the peer certificate, and the
 *         verification error the edge would stop at
 *   HTTP  the request written on that connection, byte for byte what the
 *         edge sends (undici: `host`, `connection: keep-alive`, then the
 *         backend's headers); no response head in time is "hangs"
 *
 * One deadline for all four: backend.timeout from the first step, as the
 * edge's Authorizer gives a call. The body is read as the edge reads it: up
 * to backend.maxBodyBytes, kept only when the verdict needs it (Smarty).
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type PeerCertificate, type TLSSocket } from 'node:tls';
import type { MiddlewareCall } from '../auth/backends/call.js';
import type { MiddlewareAnswer } from '../auth/backends/client.js';
import { TRANSPORT_FAILURE_CODE } from '../auth/backends/client.js';
import { classifyTransportError, type ErrorCode } from '../errors.js';

export type StepName = 'dns' | 'tcp' | 'tls' | 'http';

export interface Step {
  readonly step: StepName;
  /** true: passed; false: the exchange stopped here; null: not needed (an address needs no DNS, http no TLS). */
  readonly ok: boolean | null;
  /** Milliseconds the step took. */
  readonly ms?: number;
  /** One line for an operator. */
  readonly detail: string;
  /** The system's or TLS's own code (ECONNREFUSED, ENOTFOUND, UNABLE_TO_VERIFY_LEAF_SIGNATURE…). */
  readonly code?: string;
  /** What to do about it, when the step failed. */
  readonly hint?: string;
  readonly addresses?: readonly string[];
  readonly certificate?: CertificateFacts;
}

export interface CertificateFacts {
  readonly subject: string;
  readonly issuer: string;
  readonly validFrom: string;
  readonly validTo: string;
  readonly subjectAltName: string | undefined;
  readonly fingerprint256: string;
  readonly protocol: string | null;
}

export interface ResponseFacts {
  readonly status: number;
  readonly statusText: string;
  /** Raw response headers, name/value pairs in order. */
  readonly rawHeaders: readonly string[];
  /** From sending the request to the response head. */
  readonly headMs: number;
  /** From the first step to the end of the body. */
  readonly totalMs: number;
  /** Bytes read; the edge reads at most backend.maxBodyBytes. */
  readonly bodyBytes: number;
  /** More than backend.maxBodyBytes: the edge stops reading there. */
  readonly bodyCut: boolean;
  /** The start of the body (for the report), at most BODY_SNIPPET_BYTES. */
  readonly snippet: string;
}

export interface ExchangeResult {
  readonly steps: readonly Step[];
  readonly response?: ResponseFacts;
  /** What the edge's HTTP client would hand the backend's interpret. */
  readonly answer?: MiddlewareAnswer;
  /** Why there is no answer: the code the edge records (EDGE_ERR_BACKEND_*) and in words. */
  readonly failure?: { readonly code: ErrorCode; readonly message: string };
}

export type LookupAll = (hostname: string) => Promise<readonly LookupAddress[]>;

export interface ExchangeOptions {
  readonly timeoutMs: number;
  readonly maxBodyBytes: number;
  /** backend.ca: PEM file of the CA of a middleware with a private certificate. */
  readonly caFile: string | undefined;
  /** dns.lookup with `all: true` (replaceable in unit tests). */
  readonly lookup?: LookupAll;
}

/** How much of the body the report shows. */
export const BODY_SNIPPET_BYTES = 200;

const defaultLookup: LookupAll = (hostname) =>
  new Promise((resolve, reject) => dnsLookup(hostname, { all: true }, (err, addresses) => (err === null ? resolve(addresses) : reject(err))));

/** Certificate errors a CA file fixes (the others need the certificate itself fixed). */
const UNTRUSTED = new Set(['DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'CERT_UNTRUSTED']);

class StepFailure extends Error {
  constructor(
    readonly step: Step,
    readonly code: ErrorCode,
  ) {
    super(step.detail);
  }
}

function fmtMs(ms: number): string {
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

function errCode(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** A failure of the kind the edge's client would report for `err` (errors.ts's table). */
function edgeCode(err: unknown): ErrorCode {
  return TRANSPORT_FAILURE_CODE[classifyTransportError(err)]!;
}

/**
 * RFC 6761 §6.4: names under `.invalid` never resolve, and resolver libraries
 * should say so without asking anyone. glibc asks the configured DNS server
 * anyway; `check` answers itself, so a test (or an operator's placeholder)
 * sends nothing off the machine.
 */
function isInvalidName(hostname: string): boolean {
  const name = hostname.toLowerCase().replace(/\.$/, '');
  return name === 'invalid' || name.endsWith('.invalid');
}

export async function exchange(call: MiddlewareCall, options: ExchangeOptions): Promise<ExchangeResult> {
  const started = performance.now();
  const deadline = started + options.timeoutMs;
  const left = (): number => Math.max(0, deadline - performance.now());
  const steps: Step[] = [];
  const url = new URL(call.origin);
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = Number(url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : url.port);
  let socket: Socket | undefined;
  try {
    const addresses = await resolve(hostname, options, left, steps);
    socket = await connectAny(addresses, port, left, steps, options.timeoutMs);
    if (url.protocol === 'https:') socket = await secure(socket, hostname, options, left, steps);
    else steps.push({ step: 'tls', ok: null, detail: 'plain http: no TLS' });
    const { response, answer } = await send(socket, call, url.host, options, left, started, steps);
    return { steps, response, answer };
  } catch (err) {
    if (err instanceof StepFailure) {
      steps.push(err.step);
      return { steps, failure: { code: err.code, message: `${err.step.step.toUpperCase()}: ${err.step.detail}` } };
    }
    throw err;
  } finally {
    socket?.destroy();
  }
}

async function resolve(hostname: string, options: ExchangeOptions, left: () => number, steps: Step[]): Promise<string[]> {
  if (isIP(hostname) !== 0) {
    steps.push({ step: 'dns', ok: null, detail: `${hostname} is an address: no lookup`, addresses: [hostname] });
    return [hostname];
  }
  const t0 = performance.now();
  const fail = (code: string, detail: string, hint: string, edge: ErrorCode = 'EDGE_ERR_BACKEND_REFUSED'): StepFailure =>
    new StepFailure({ step: 'dns', ok: false, ms: performance.now() - t0, detail, code, hint }, edge);
  if (isInvalidName(hostname)) {
    throw fail('ENOTFOUND', `${hostname} does not resolve: .invalid names never do (RFC 6761), so no lookup was made`, 'the middleware URL (--backend) names no real host: fix it');
  }
  let timer: NodeJS.Timeout | undefined;
  let addresses: readonly LookupAddress[];
  try {
    addresses = await Promise.race([
      (options.lookup ?? defaultLookup)(hostname),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(Object.assign(new Error('lookup timed out'), { code: 'ETIMEOUT' })), left()))),
    ]);
  } catch (err) {
    const code = errCode(err) ?? 'ERROR';
    switch (code) {
      case 'ENOTFOUND':
        throw fail(code, `${hostname} does not resolve (no such name)`, 'check the host name in the middleware URL (--backend), and the DNS the edge machine uses (/etc/resolv.conf, /etc/hosts)');
      case 'EAI_AGAIN':
        throw fail(code, `${hostname}: temporary DNS failure (the resolver did not answer)`, 'the edge machine cannot reach its DNS server: check /etc/resolv.conf; the edge would fail the same way');
      case 'ETIMEOUT':
        throw fail(code, `${hostname}: no DNS answer within the backend timeout`, 'the DNS server is slow or unreachable: check /etc/resolv.conf, or put the name in /etc/hosts', 'EDGE_ERR_BACKEND_TIMEOUT');
      default:
        throw fail(code, `${hostname}: lookup failed: ${(err as Error).message}`, 'check the host name and the DNS the edge machine uses');
    }
  } finally {
    clearTimeout(timer);
  }
  const list = addresses.map((a) => a.address);
  if (list.length === 0) throw fail('ENODATA', `${hostname} has no address`, 'check the DNS records of the middleware');
  steps.push({ step: 'dns', ok: true, ms: performance.now() - t0, detail: `${hostname} → ${list.join(', ')}`, addresses: list });
  return list;
}

/** One connection attempt: the socket, or why not. */
function connectOnce(address: string, port: number, waitMs: number): Promise<{ socket: Socket } | { code: string; message: string }> {
  return new Promise((resolvePromise) => {
    const socket = netConnect({ host: address, port });
    const done = (result: { socket: Socket } | { code: string; message: string }): void => {
      clearTimeout(timer);
      socket.removeAllListeners('connect');
      socket.removeAllListeners('error');
      if (!('socket' in result)) socket.destroy();
      resolvePromise(result);
    };
    const timer = setTimeout(() => done({ code: 'ETIMEDOUT', message: 'no answer' }), waitMs);
    socket.once('connect', () => done({ socket }));
    socket.once('error', (err) => done({ code: errCode(err) ?? 'ERROR', message: err.message }));
  });
}

async function connectAny(addresses: readonly string[], port: number, left: () => number, steps: Step[], timeoutMs: number): Promise<Socket> {
  const t0 = performance.now();
  const tried: string[] = [];
  let lastCode = 'ETIMEDOUT';
  for (const address of addresses) {
    if (left() === 0) break;
    const target = isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
    const result = await connectOnce(address, port, left());
    if ('socket' in result) {
      // Failures from here on reach the TLS or HTTP step through their own listeners; this one keeps a late reset from throwing.
      result.socket.on('error', () => undefined);
      const before = tried.length === 0 ? '' : ` (after ${tried.join('; ')})`;
      steps.push({ step: 'tcp', ok: true, ms: performance.now() - t0, detail: `connected to ${target}${before}` });
      return result.socket;
    }
    lastCode = result.code;
    tried.push(`${target}: ${describeConnectError(result.code, timeoutMs)}`);
  }
  const ms = performance.now() - t0;
  const refused = lastCode === 'ECONNREFUSED';
  const timedOut = lastCode === 'ETIMEDOUT';
  const hint = refused
    ? 'nothing listens there: is the middleware running, on this port? (the edge gets the same refusal)'
    : timedOut
      ? 'packets go unanswered: a firewall dropping them, or the host is down'
      : 'no route to the middleware from this machine: check the address and the network';
  throw new StepFailure(
    { step: 'tcp', ok: false, ms, detail: tried.length === 0 ? `no time left to connect (backend timeout ${timeoutMs} ms)` : tried.join('; '), code: lastCode, hint },
    timedOut ? 'EDGE_ERR_BACKEND_TIMEOUT' : edgeCode({ code: lastCode }),
  );
}

function describeConnectError(code: string, timeoutMs: number): string {
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused (ECONNREFUSED)';
    case 'ETIMEDOUT':
      return `no answer to the connection attempt within the backend timeout (${timeoutMs} ms)`;
    case 'EHOSTUNREACH':
      return 'host unreachable (EHOSTUNREACH)';
    case 'ENETUNREACH':
      return 'network unreachable (ENETUNREACH)';
    default:
      return code;
  }
}

function certificateFacts(cert: PeerCertificate, protocol: string | null): CertificateFacts {
  const name = (n: PeerCertificate['subject'] | undefined): string =>
    n === undefined
      ? ''
      : Object.entries(n)
          .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`)
          .join(', ');
  return { subject: name(cert.subject), issuer: name(cert.issuer), validFrom: cert.valid_from, validTo: cert.valid_to, subjectAltName: cert.subjectaltname, fingerprint256: cert.fingerprint256, protocol };
}

function certificateHint(code: string, hostname: string, caFile: string | undefined, cert: CertificateFacts): string {
  if (UNTRUSTED.has(code)) {
    return caFile === undefined
      ? 'certificate not trusted: set --backend-ca to the PEM file of the CA that signed it (for a self-signed certificate, the certificate itself)'
      : `certificate not trusted: it is not signed by the CA in --backend-ca ${caFile}`;
  }
  if (code === 'CERT_HAS_EXPIRED') return `the certificate expired (${cert.validTo}): renew it on the middleware`;
  if (code === 'CERT_NOT_YET_VALID') return `the certificate is not valid before ${cert.validFrom}: check the clocks`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `the certificate is not for ${hostname} (${cert.subjectAltName ?? cert.subject}): use a name it carries in --backend, or reissue it`;
  return 'the edge refuses this certificate: fix it on the middleware, or set --backend-ca';
}

async function secure(socket: Socket, hostname: string, options: ExchangeOptions, left: () => number, steps: Step[]): Promise<TLSSocket> {
  const t0 = performance.now();
  let ca: Buffer | undefined;
  if (options.caFile !== undefined) {
    try {
      ca = readFileSync(options.caFile);
    } catch (err) {
      throw new StepFailure(
        { step: 'tls', ok: false, ms: 0, detail: `cannot read --backend-ca ${options.caFile}: ${(err as Error).message}`, code: errCode(err) ?? 'ERROR', hint: 'the edge does not start without it either: fix the path' },
        'EDGE_ERR_CONFIG',
      );
    }
  }
  // rejectUnauthorized off only to read the certificate: the verdict below is what the edge (which verifies) would get.
  const tls = tlsConnect({ socket, host: hostname, servername: isIP(hostname) === 0 ? hostname : undefined, ...(ca !== undefined && { ca }), rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
  await new Promise<void>((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      tls.destroy();
      reject(new StepFailure({ step: 'tls', ok: false, ms: performance.now() - t0, detail: 'no TLS handshake within the backend timeout', code: 'ETIMEDOUT', hint: 'the port may not speak TLS at all (is the middleware URL http://?)' }, 'EDGE_ERR_BACKEND_TIMEOUT'));
    }, left());
    tls.once('secureConnect', () => {
      clearTimeout(timer);
      resolvePromise();
    });
    tls.once('error', (err) => {
      clearTimeout(timer);
      reject(
        new StepFailure(
          { step: 'tls', ok: false, ms: performance.now() - t0, detail: `TLS handshake failed: ${err.message}`, code: errCode(err) ?? 'ERROR', hint: 'the port may not speak TLS (is the middleware URL http://?), or the two sides share no protocol version or cipher' },
          edgeCode(err),
        ),
      );
    });
  });
  const cert = certificateFacts(tls.getPeerCertificate(), tls.getProtocol());
  const ms = performance.now() - t0;
  if (!tls.authorized) {
    const code = String(tls.authorizationError);
    tls.destroy();
    throw new StepFailure(
      { step: 'tls', ok: false, ms, detail: `certificate refused (${code}): subject ${cert.subject}, issuer ${cert.issuer}`, code, hint: certificateHint(code, hostname, options.caFile, cert), certificate: cert },
      'EDGE_ERR_BACKEND_INVALID',
    );
  }
  steps.push({ step: 'tls', ok: true, ms, detail: `${cert.protocol ?? 'TLS'}, certificate ${cert.subject} issued by ${cert.issuer}, valid until ${cert.validTo}${options.caFile === undefined ? '' : ` (trusted through --backend-ca ${options.caFile})`}`, certificate: cert });
  return tls;
}

async function send(
  socket: Socket,
  call: MiddlewareCall,
  host: string,
  options: ExchangeOptions,
  left: () => number,
  started: number,
  steps: Step[],
): Promise<{ response: ResponseFacts; answer: MiddlewareAnswer }> {
  const t0 = performance.now();
  const fail = (code: string, detail: string, hint: string, edge: ErrorCode): StepFailure => new StepFailure({ step: 'http', ok: false, ms: performance.now() - t0, detail, code, hint }, edge);
  const res = await new Promise<IncomingMessage>((resolvePromise, reject) => {
    // The exact headers the edge's client sends: host and keep-alive first (undici), then the backend's.
    const req = httpRequest({ createConnection: () => socket, method: call.method, path: call.path, headers: ['host', host, 'connection', 'keep-alive', ...call.headers] });
    const timer = setTimeout(() => {
      req.destroy();
      reject(fail('ETIMEDOUT', `connected and sent the request, but no response within the backend timeout (${options.timeoutMs} ms): the middleware hangs, or is slower than --backend-timeout`, 'the edge gives up at --backend-timeout and applies the default action: make the middleware answer faster, or raise --backend-timeout', 'EDGE_ERR_BACKEND_TIMEOUT'));
    }, left());
    req.once('response', (response) => {
      clearTimeout(timer);
      resolvePromise(response);
    });
    req.once('error', (err) => {
      clearTimeout(timer);
      const code = errCode(err) ?? 'ERROR';
      const edge = edgeCode(err);
      const parse = code.startsWith('HPE_');
      reject(
        fail(
          code,
          parse ? `not a valid HTTP response (${code}: ${err.message})` : `the connection closed without an answer (${code}: ${err.message})`,
          parse ? 'something that is not an HTTP server answers on this port' : 'the middleware (or a proxy before it) drops the request: check its logs',
          parse ? 'EDGE_ERR_BACKEND_INVALID' : edge,
        ),
      );
    });
    req.end();
  });
  const headMs = performance.now() - t0;
  const body = await readBody(res, call.readBody, options.maxBodyBytes, left);
  if (body === 'timeout') {
    throw fail('ETIMEDOUT', `answered ${res.statusCode ?? 0} in ${fmtMs(headMs)}, but the body did not end within the backend timeout (${options.timeoutMs} ms)`, 'the middleware sends its answer slowly: the edge gives up at --backend-timeout', 'EDGE_ERR_BACKEND_TIMEOUT');
  }
  const status = res.statusCode ?? 0;
  const rawHeaders = res.rawHeaders;
  const response: ResponseFacts = { status, statusText: res.statusMessage ?? '', rawHeaders, headMs, totalMs: performance.now() - started, bodyBytes: body.bytes, bodyCut: body.cut, snippet: body.snippet };
  steps.push({ step: 'http', ok: true, ms: headMs, detail: `${`${status} ${res.statusMessage ?? ''}`.trim()}, body ${body.cut ? `over ${options.maxBodyBytes} bytes (the edge reads no more)` : `${body.bytes} bytes`}` });
  // As the edge's client hands it over: the first value of a header, names in lower case.
  const first = new Map<string, string>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (!first.has(name)) first.set(name, rawHeaders[i + 1]!);
  }
  return { response, answer: { status, header: (name) => first.get(name), body: body.text } };
}

async function readBody(res: IncomingMessage, keep: boolean, limit: number, left: () => number): Promise<{ bytes: number; cut: boolean; snippet: string; text: string | undefined } | 'timeout'> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  let cut = false;
  let snippet = '';
  const reading = (async () => {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      if (snippet.length < BODY_SNIPPET_BYTES) snippet += chunk.subarray(0, BODY_SNIPPET_BYTES - snippet.length).toString('utf8');
      bytes += chunk.length;
      if (bytes > limit) {
        cut = true;
        res.destroy();
        return;
      }
      if (keep) chunks.push(chunk);
    }
  })().catch(() => undefined); // a body cut short still leaves the status
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([reading.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), left())))]);
  clearTimeout(timer);
  if (timedOut) {
    res.destroy();
    return 'timeout';
  }
  return { bytes: Math.min(bytes, limit + 1), cut, snippet, text: keep && !cut ? Buffer.concat(chunks).toString('utf8') : undefined };
}
