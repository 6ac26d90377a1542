// The floor of the performance issue's scenarios (a), (c), (d): what bare Node pays for the same
// answer, with none of the edge's work. Started by bench/floor.ts on the SUT core, like the edge.
//
//   fixed <answer.json>                    every request gets the same status, headers and body:
//                                          (a) the edge's rewritten playlist, (c) its 403 JSON
//   auth <answer.json> <middleware URL>    one undici Pool request to the middleware per request
//                                          (the request's query passed on, the body discarded),
//                                          then the fixed answer: (d) without sessions, store,
//                                          metrics or playlist rendering; at most 32 calls in flight,
//                                          like the edge (backend.concurrency). On the dispatch API,
//                                          as the edge's middleware client: Pool.request (the
//                                          promise API) costs more per call
//   auth-request <answer.json> <URL>       the same with Pool.request and body.dump()
//
// answer.json: {"status": N, "headers": ["name", "value", ...], "body": "<base64>"}, taken by
// bench/floor.ts from the edge's own answer, so both send the same bytes. Node adds Date,
// Connection and Keep-Alive to both. Prints {"port": N} when listening; exits when stdin closes.
import { readFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool, type Dispatcher } from 'undici';

interface AnswerFile {
  status: number;
  headers: string[];
  body: string;
}

const [mode, answerFile, middleware] = process.argv.slice(2);
if ((mode !== 'fixed' && mode !== 'auth' && mode !== 'auth-request') || answerFile === undefined || (mode !== 'fixed' && middleware === undefined)) {
  process.stderr.write('usage: floor.ts fixed <answer.json> | auth <answer.json> <middleware URL> | auth-request <answer.json> <middleware URL>\n');
  process.exit(2);
}
const answer = JSON.parse(readFileSync(answerFile, 'utf8')) as AnswerFile;
const body = Buffer.from(answer.body, 'base64');
const headers = answer.headers;
const status = answer.status;

let server;
if (mode === 'fixed') {
  server = createServer((_req, res) => {
    res.writeHead(status, headers);
    res.end(body);
  });
} else if (mode === 'auth') {
  const pool = new Pool(middleware!, { connections: 32, keepAliveTimeout: 30_000 });
  server = createServer((req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    pool.dispatch({ method: 'GET', path: q === -1 ? '/auth' : `/auth${url.slice(q)}` }, new Answer(res));
  });
} else {
  const pool = new Pool(middleware!, { connections: 32, keepAliveTimeout: 30_000 });
  server = createServer((req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    pool.request({ method: 'GET', path: q === -1 ? '/auth' : `/auth${url.slice(q)}` }).then(
      async (r) => {
        await r.body.dump();
        if (r.statusCode !== 200) {
          res.writeHead(403, { 'content-length': 0 });
          res.end();
          return;
        }
        res.writeHead(status, headers);
        res.end(body);
      },
      () => {
        res.writeHead(503, { 'content-length': 0 });
        res.end();
      },
    );
  });
}
/** The middleware's answer, then ours: 200 with the fixed answer, 403 for a deny, 503 for no answer. */
class Answer implements Dispatcher.DispatchHandler {
  private status = 0;

  constructor(private readonly res: ServerResponse) {}

  onRequestStart(): void {}

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number): void {
    this.status = statusCode;
  }

  onResponseData(): void {}

  onResponseEnd(): void {
    if (this.status !== 200) {
      this.res.writeHead(403, { 'content-length': 0 });
      this.res.end();
      return;
    }
    this.res.writeHead(status, headers);
    this.res.end(body);
  }

  onResponseError(): void {
    this.res.writeHead(503, { 'content-length': 0 });
    this.res.end();
  }
}

server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`));
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
