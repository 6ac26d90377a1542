// nginx configurations, generated into a temporary directory and run as `nginx -p DIR -c CONF`
// (daemon off, one worker):
//   origin  static HLS files (sendfile, open_file_cache); access log only for the live channel of
//           (f), where the bench counts origin requests per segment.
//   N1      what an operator writes today: auth_request to the middleware with the auth
//           subrequest proxy_cache'd per token (200 for 60 s, 403 for 10 s, proxy_cache_lock),
//           proxy_pass to the origin over keep-alive, 64k proxy buffers in memory.
//   N2      N1 + proxy_cache of playlists (1 s, background update, use_stale updating) and
//           segments (30 s) with proxy_cache_lock: the best config an operator could write.
// Both proxies stream MPEG-TS (location without an extension) unbuffered: nginx has no fan-out.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Children, Child } from './children.js';
import { answers, waitFor } from './children.js';

export type NginxRole = 'origin' | 'N1' | 'N2';

export interface NginxSpec {
  readonly role: NginxRole;
  readonly dir: string;
  readonly port: number;
  /** origin: the directory served. */
  readonly root?: string;
  /** origin: where the live channel's access log goes. */
  readonly liveLog?: string;
  /** N1/N2: 127.0.0.1:port of the origin and of the middleware. */
  readonly origin?: string;
  readonly middleware?: string;
}

const LIVE_LOCATION = '/play/live/';

function preamble(dir: string): string {
  // As root, nginx would switch its worker to "nobody", which cannot read the temp directory.
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  return `${user}daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 16384;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
  default_type application/octet-stream;
  # nginx closes a client connection after 1,000 requests by default; the edge does not.
  keepalive_requests 1000000;
  keepalive_timeout 65s;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
`;
}

function originConf(s: NginxSpec): string {
  return `${preamble(s.dir)}
  log_format counts '$msec $uri $status $body_bytes_sent';
  server {
    listen 127.0.0.1:${s.port} backlog=4096;
    root ${s.root};
    open_file_cache max=1000 inactive=60s;
    open_file_cache_valid 60s;
    location ${LIVE_LOCATION} {
      open_file_cache off;   # the playlist file is replaced every target duration
      access_log ${s.liveLog} counts;
    }
    location = /__ping { return 200 "ok\\n"; }
  }
}
`;
}

/** The auth subrequest and the upstream, shared by N1 and N2. */
function proxyConf(s: NginxSpec): string {
  const n2 = s.role === 'N2';
  const proxied = `
      auth_request /__auth;
      set $auth_args $args;        # the auth subrequest shares the main request's variables
      set $auth_token $arg_token;
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";`;
  const mediaCache = (validity: string, extra: string): string =>
    n2
      ? `
      proxy_cache media;
      proxy_cache_key $uri;
      proxy_cache_valid 200 ${validity};
      proxy_cache_lock on;
      proxy_cache_lock_timeout 10s;${extra}`
      : '';
  return `${preamble(s.dir)}
  # Buffers for 1 MiB segments, in memory: nginx's defaults (8 x 4k + temp files on disk) served
  # 0.6 GB/s of segments here, these 1.7 GB/s. The edge is compared with the better nginx.
  proxy_buffers 16 64k;
  proxy_buffer_size 64k;
  proxy_busy_buffers_size 128k;
  proxy_max_temp_file_size 0;
  upstream origin { server ${s.origin}; keepalive 256; keepalive_requests 1000000; }
  upstream middleware { server ${s.middleware}; keepalive 64; keepalive_requests 1000000; }
  proxy_cache_path ${s.dir}/cache/auth levels=1:2 keys_zone=auth:64m inactive=10m max_size=1g use_temp_path=off;
${n2 ? `  proxy_cache_path ${s.dir}/cache/media levels=1:2 keys_zone=media:16m inactive=10m max_size=2g use_temp_path=off;\n` : ''}
  server {
    listen 127.0.0.1:${s.port} backlog=4096;
    location = /__ping { return 200 "ok\\n"; }
    location = /__auth {
      internal;
      proxy_pass http://middleware/auth?$auth_args;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_cache auth;
      proxy_cache_key $auth_token;
      proxy_cache_valid 200 60s;
      proxy_cache_valid 403 10s;
      proxy_cache_lock on;
    }
    location ~ \\.m3u8$ {${proxied}${mediaCache('1s', `
      proxy_cache_use_stale updating;
      proxy_cache_background_update on;`)}
    }
    location ~ \\.ts$ {${proxied}${mediaCache('30s', '')}
    }
    location / {                   # MPEG-TS streams: no extension, endless body
${proxied}
      proxy_buffering off;
      proxy_read_timeout 30s;
    }
  }
}
`;
}

export function nginxConf(spec: NginxSpec): string {
  return spec.role === 'origin' ? originConf(spec) : proxyConf(spec);
}

export interface RunningNginx {
  readonly url: string;
  readonly child: Child;
  readonly conf: string;
}

/** Writes the config and starts nginx (`prefix`: e.g. taskset for the SUT core); waits until it answers. */
export async function startNginx(children: Children, name: string, spec: NginxSpec, prefix: readonly string[]): Promise<RunningNginx> {
  await mkdir(join(spec.dir, 'tmp'), { recursive: true });
  await mkdir(join(spec.dir, 'cache'), { recursive: true });
  const conf = join(spec.dir, 'nginx.conf');
  const text = nginxConf(spec);
  await writeFile(conf, text);
  const cmd = [...prefix, 'nginx', '-p', spec.dir, '-c', conf];
  const child = children.spawn(name, cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const url = `http://127.0.0.1:${spec.port}`;
  await waitFor(`nginx ${name}`, () => answers(`${url}/__ping`, 200), 10_000, child);
  return { url, child, conf: text };
}
