// Raw HTTP/1.1 over one TCP connection, for requests no well-behaved client would send (smuggling,
// control bytes, CONNECT, absolute-form, pipelining): the bytes go out exactly as given, and what
// comes back is parsed into the responses the server wrote, in order, plus whether it closed.
import { connect } from 'node:net';

export interface RawResponse {
  readonly status: number;
  /** Header names lower-cased; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

export interface RawExchange {
  /** Complete responses, in the order the server sent them. */
  readonly responses: RawResponse[];
  /** The server closed (or reset) the connection before the deadline. */
  readonly closed: boolean;
  /** A socket error code (ECONNRESET…), if one happened. */
  readonly error: string | undefined;
  /** Every byte received. */
  readonly received: Buffer;
}

export interface RawOptions {
  /** Resolve at the latest after this long (default 2000 ms); the connection is then destroyed. */
  readonly timeoutMs?: number;
  /** Resolve as soon as this many complete responses arrived (default: wait for the close). */
  readonly responses?: number;
}

const HEAD_END = Buffer.from('\r\n\r\n');

/** Parses as many complete responses as `data` holds; `atEof`: the connection closed, so a body without length ends here. */
export function parseResponses(data: Buffer, atEof: boolean): RawResponse[] {
  const out: RawResponse[] = [];
  let off = 0;
  while (off < data.length) {
    const headEnd = data.indexOf(HEAD_END, off);
    if (headEnd < 0) break;
    const lines = data.subarray(off, headEnd).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    let bodyStart = headEnd + HEAD_END.length;
    let body: Buffer;
    if (status === 204 || status === 304 || (status >= 100 && status < 200)) {
      body = Buffer.alloc(0);
    } else if (headers['transfer-encoding']?.toLowerCase().includes('chunked')) {
      const chunks: Buffer[] = [];
      let p = bodyStart;
      let done = false;
      for (;;) {
        const lineEnd = data.indexOf('\r\n', p);
        if (lineEnd < 0) break;
        const size = parseInt(data.subarray(p, lineEnd).toString('latin1'), 16);
        if (Number.isNaN(size)) break;
        if (size === 0) {
          const trailerEnd = data.indexOf('\r\n', lineEnd + 2);
          if (trailerEnd < 0) break;
          p = trailerEnd + 2;
          done = true;
          break;
        }
        if (lineEnd + 2 + size + 2 > data.length) break;
        chunks.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
        p = lineEnd + 2 + size + 2;
      }
      if (!done) break;
      out.push({ status, headers, body: Buffer.concat(chunks) });
      off = p;
      continue;
    } else if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length']);
      if (bodyStart + length > data.length) break;
      body = data.subarray(bodyStart, bodyStart + length);
      bodyStart += length;
    } else {
      if (!atEof) break;
      body = data.subarray(bodyStart);
      bodyStart = data.length;
    }
    out.push({ status, headers, body });
    off = bodyStart;
  }
  return out;
}

/** Sends `data` on a new connection to `url`'s host and port and collects what comes back. */
export function rawExchange(url: string, data: string | Buffer, opts: RawOptions = {}): Promise<RawExchange> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: string | undefined;
    let settled = false;
    const socket = connect(Number(u.port), u.hostname.replace(/^\[|\]$/g, ''));
    const finish = (closed: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const received = Buffer.concat(chunks);
      resolve({ responses: parseResponses(received, closed), closed, error, received });
    };
    const timer = setTimeout(() => finish(false), opts.timeoutMs ?? 2000);
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      if (opts.responses !== undefined && parseResponses(Buffer.concat(chunks), false).length >= opts.responses) finish(false);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code ?? err.message));
    socket.on('close', () => finish(true));
    socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  });
}
