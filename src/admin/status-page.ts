/**
 * The status page: one self-contained HTML response (inline CSS and JS, no
 * framework, no CDN: the admin listener is often on a box without internet)
 * that polls the admin API with fetch. And the login form the admin listener
 * answers with when a token is configured and the browser has none.
 *
 * Session fields come from viewers and the middleware (names, user agents),
 * so the script only ever writes them as textContent, and the page's
 * Content-Security-Policy allows exactly its own inline script and style (by
 * hash) and fetches to its own origin. The admin token never appears here:
 * the browser holds it in an HttpOnly cookie.
 */
import { createHash } from 'node:crypto';

const STYLE = `
:root{color-scheme:light;--fg:#1d2127;--mute:#5d6673;--line:#dde1e6;--bg:#f4f5f7;--card:#fff;--acc:#1f5fad;--bad:#b3261e;--warn:#8a5a00}
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;align-items:baseline;gap:16px;padding:10px 16px;background:var(--card);border-bottom:1px solid var(--line)}
h1{font-size:16px;margin:0}
h2{font-size:12px;margin:0 0 8px;text-transform:uppercase;letter-spacing:.05em;color:var(--mute)}
main{padding:12px 16px;max-width:1280px}
section{margin-bottom:14px}
#status{color:var(--mute);font-size:13px;margin:0}
.bad{color:var(--bad)!important}
.grid{display:grid;gap:8px;grid-template-columns:repeat(auto-fill,minmax(165px,1fr))}
.charts{grid-template-columns:repeat(auto-fill,minmax(210px,1fr))}
.card{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:8px 12px;min-width:0}
.l{color:var(--mute);font-size:12px}
.v{font-size:21px;font-weight:600;font-variant-numeric:tabular-nums;white-space:nowrap}
.s{color:var(--mute);font-size:12px;min-height:1.4em}
dl{display:grid;grid-template-columns:auto 1fr;gap:0 10px;margin:2px 0 0;font-size:12px;line-height:1.3;font-variant-numeric:tabular-nums}
dt{color:var(--mute)}dd{margin:0;text-align:right}
figure{margin:0}
figcaption{display:flex;justify-content:space-between;gap:8px;font-size:12px;color:var(--mute)}
figcaption b{color:var(--fg);font-variant-numeric:tabular-nums}
svg{display:block;width:100%;height:48px;margin-top:4px;border-bottom:1px solid var(--line)}
svg path{fill:none;stroke:var(--acc);stroke-width:1.5;stroke-linejoin:round}
svg circle{fill:var(--acc)}
.axis{display:flex;justify-content:space-between;font-size:11px;color:var(--mute)}
.bar{display:flex;align-items:center;gap:12px;margin-bottom:8px}
.bar h2{margin:0}
input{font:inherit;padding:4px 8px;border:1px solid #c3c9d1;border-radius:4px;width:240px}
table{width:100%;border-collapse:collapse;background:var(--card);border:1px solid var(--line);font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:5px 10px;border-bottom:1px solid var(--line);white-space:nowrap}
thead th{font-size:12px;color:var(--mute);font-weight:600;background:#fafbfc}
tbody th{font-weight:600}
.n{text-align:right}
button{font:inherit;font-size:13px;padding:2px 12px;border:1px solid #d7a8a4;border-radius:4px;background:#fff;color:var(--bad);cursor:pointer}
button:hover{background:#fbeeed}button:disabled{opacity:.5;cursor:default}
.pager{display:flex;align-items:center;gap:8px;margin-left:auto;color:var(--mute);font-size:13px;font-variant-numeric:tabular-nums}
button.nav{border-color:#c3c9d1;color:var(--fg)}button.nav:hover{background:#f0f2f5}
.scroll{overflow-x:auto}
#empty{padding:10px;color:var(--mute);margin:0}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
`;

const SCRIPT = `
'use strict';
const POLL_MS = 3000;
/** Rows per page: a busy edge has thousands of sessions, a person reads a few; the edge sends only these. */
const PAGE_ROWS = 100;
/** Typing in the filter asks the edge once the typing pauses. */
const FILTER_DEBOUNCE_MS = 250;
const SOURCES = ['cache', 'backend', 'coalesced', 'rule', 'default'];
const $ = (id) => document.getElementById(id);
const rows = new Map();
/** Cursors of the pages walked so far (null: the first): Previous pops, Next pushes the answer's nextCursor. */
const pageStarts = [null];
let nextCursor = null;
let filterTimer = 0;
let skewMs = 0;
let historyMs = 900000;
let seq = 0;

const pad = (n) => String(n).padStart(2, '0');
function fmtBytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? String(Math.round(n)) : n.toFixed(n < 10 ? 2 : 1)) + ' ' + units[i];
}
function fmtDuration(ms) {
  let s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  s %= 60;
  return h > 0 ? h + 'h ' + pad(m) + 'm' : m > 0 ? m + 'm ' + pad(s) + 's' : s + 's';
}
const fmtNum = (x) => (x == null ? '\\u2014' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const fmtMs = (x) => (x == null ? '\\u2014' : (x < 1 ? x.toFixed(2) : x < 10 ? x.toFixed(1) : Math.round(x)) + ' ms');
const fmtMsPair = (a, b) => (a == null ? '\\u2014' : fmtMs(a).replace(' ms', '') + ' / ' + fmtMs(b));
const fmtPct = (x) => (x == null ? '\\u2014' : (x === 1 ? '100' : (x * 100).toFixed(1)) + ' %');

function say(text, bad) {
  const el = $('status');
  el.textContent = text;
  el.classList.toggle('bad', Boolean(bad));
}

async function api(path, init) {
  const res = await fetch(path, Object.assign({ cache: 'no-store', headers: { accept: 'application/json' } }, init));
  // Signed out (token changed, cookie gone): the page itself answers with the login form.
  if (res.status === 401) { location.replace('/'); throw new Error('signed out'); }
  // Durations are measured on the edge's clock (Date header, 1 s resolution): the browser may be elsewhere.
  const date = Date.parse(res.headers.get('date') || '');
  if (!Number.isNaN(date) && Math.abs(date - Date.now() - skewMs) > 1500) skewMs = date - Date.now();
  const body = await res.json();
  if (!res.ok) throw new Error(body.message || body.error || 'HTTP ' + res.status);
  return body;
}

function tile(id, value, sub, bad) {
  const v = $(id);
  v.textContent = value;
  v.classList.toggle('bad', Boolean(bad));
  $(id + '-s').textContent = sub;
}

function renderTiles(o) {
  const l = o.last, w = o.window, t = o.totals;
  const first = 'first sample within ' + Math.round(o.sampleIntervalMs / 1000) + ' s';
  tile('t-sessions', String(o.sessions.total), o.sessions.hls + ' HLS \\u00b7 ' + o.sessions.mpegts + ' MPEG-TS');
  tile('t-rps', l ? fmtNum(l.requestsPerSec) : '\\u2014', l ? fmtBytes(l.bytesPerSec) + '/s sent' : first);
  tile('t-latency', l ? fmtMsPair(l.middleware.p50Ms, l.middleware.p99Ms) : '\\u2014', l ? l.middleware.calls + ' calls in the last ' + fmtDuration(Math.round(l.seconds) * 1000) : first);
  const avail = w ? w.middlewareAvailability : null;
  tile('t-avail', fmtPct(avail), w ? w.middlewareCalls + ' middleware calls in ' + fmtDuration(Math.round(w.seconds) * 1000) : first, avail != null && avail < 0.95);
  tile('t-default', w ? String(w.defaultAllows) : '\\u2014', (t ? t.defaultAllows : 0) + ' since start', w != null && w.defaultAllows > 0);
  const dl = $('t-decisions');
  const rates = l ? l.decisionsPerSec : {};
  const keys = SOURCES.concat(Object.keys(rates).filter((k) => !SOURCES.includes(k)));
  dl.replaceChildren(...keys.flatMap((k) => {
    const dt = document.createElement('dt');
    const dd = document.createElement('dd');
    dt.textContent = k;
    dd.textContent = l ? fmtNum(rates[k] || 0) : '\\u2014';
    return [dt, dd];
  }));
}

const CHARTS = [
  ['c-rps', (p) => p.requestsPerSec, fmtNum],
  ['c-sessions', (p) => p.sessions, String],
  ['c-p99', (p) => p.middleware.p99Ms, fmtMs],
  ['c-avail', (p) => p.middleware.availability, fmtPct, 1],
  ['c-default', (p) => p.defaultAllows, String],
];

function renderCharts(ts) {
  historyMs = ts.historyMs;
  const now = Date.now() + skewMs;
  for (const [id, value, fmt, fixedMax] of CHARTS) {
    const fig = $(id);
    const svg = fig.querySelector('svg');
    const w = svg.clientWidth || 300, h = 48;
    svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
    const pts = ts.points.map((p) => [p.t, value(p)]).filter((p) => p[1] != null);
    let max = fixedMax || 0;
    if (!fixedMax) for (const p of pts) max = Math.max(max, p[1]);
    const scale = max > 0 ? max : 1;
    let d = '', lastX = -1, lastY = 0, prevT = 0;
    for (const [t, v] of pts) {
      const x = Math.max(0, Math.min(w, ((t - now + historyMs) / historyMs) * w));
      const y = h - 3 - (v / scale) * (h - 6);
      // A gap of more than two intervals (no calls, a failed read) is not drawn as a line.
      d += (d === '' || t - prevT > ts.sampleIntervalMs * 2.5 ? 'M' : 'L') + x.toFixed(1) + ' ' + y.toFixed(1);
      lastX = x; lastY = y; prevT = t;
    }
    fig.querySelector('path').setAttribute('d', d);
    const dot = fig.querySelector('circle');
    dot.setAttribute('cx', String(lastX));
    dot.setAttribute('cy', String(lastY));
    dot.setAttribute('r', lastX < 0 ? '0' : '2.5');
    const last = ts.points.length > 0 ? value(ts.points[ts.points.length - 1]) : null;
    fig.querySelector('b').textContent = last == null ? '\\u2014' : fmt(last);
    fig.querySelector('.max').textContent = pts.length === 0 ? 'no data yet' : fixedMax ? '0 to ' + fmt(fixedMax) : 'max ' + fmt(max);
  }
}

function cell(tr, tag, text, cls) {
  const c = document.createElement(tag);
  c.textContent = text;
  if (cls) c.className = cls;
  tr.appendChild(c);
  return c;
}

function makeRow(s) {
  const tr = document.createElement('tr');
  tr.dataset.id = s.id;
  const head = cell(tr, 'th', s.channel);
  head.scope = 'row';
  const who = s.name || s.userId;
  cell(tr, 'td', who || '\\u2014');
  cell(tr, 'td', s.ip).title = s.userAgent;
  cell(tr, 'td', s.kind === 'mpegts' ? 'MPEG-TS' : 'HLS');
  const r = { tr, duration: cell(tr, 'td', '', 'n'), bytes: cell(tr, 'td', '', 'n'), source: cell(tr, 'td', ''), next: cell(tr, 'td', '', 'n') };
  // The edge of the fleet that holds the session (node.name): the list is the fleet's.
  cell(tr, 'td', s.edge || '\u2014');
  const button = document.createElement('button');
  button.type = 'button';
  button.textContent = 'Kick';
  button.setAttribute('aria-label', 'Kick ' + (who ? who + ' ' : 'the session ') + 'on ' + s.channel + ' (' + s.ip + ')');
  button.addEventListener('click', () => kick(s.id, button));
  cell(tr, 'td', '').appendChild(button);
  return r;
}

/** The query for the page on screen: its first row's cursor (none for page 1) and the filter, applied by the edge. */
function sessionsQuery() {
  const params = new URLSearchParams({ limit: String(PAGE_ROWS) });
  const start = pageStarts[pageStarts.length - 1];
  if (start) params.set('cursor', start);
  const q = $('filter').value.trim();
  if (q !== '') params.set('q', q);
  return '/api/sessions?' + params.toString();
}

function renderSessions(list) {
  const now = Date.now() + skewMs;
  const live = new Set();
  let prev = null;
  for (const s of list.sessions) {
    live.add(s.id);
    let r = rows.get(s.id);
    // Rows are updated in place, never rebuilt or moved: a focused Kick button keeps its focus
    // across polls. A new row goes right after its predecessor, so the table keeps the API's order.
    if (!r) {
      r = makeRow(s);
      rows.set(s.id, r);
      if (prev) prev.after(r.tr); else $('rows').prepend(r.tr);
    }
    prev = r.tr;
    r.duration.textContent = fmtDuration(now - Date.parse(s.openedAt));
    r.bytes.textContent = fmtBytes(s.bytes);
    // Why it was let in (or not), in a few words; the whole sentence on hover. An older edge sends no why.
    r.source.textContent = s.why ? s.why.short : s.decision.result === 'allow' ? s.decision.source || 'allow' : s.decision.result;
    r.source.title = s.why ? s.why.text : '';
    const due = s.nextCheckAt ? Date.parse(s.nextCheckAt) - now : null;
    r.next.textContent = due == null ? '\u2014' : due <= 0 ? 'due' : 'in ' + fmtDuration(due);
    r.next.title = s.nextCheckAt ? 'The middleware is asked again at ' + new Date(s.nextCheckAt).toLocaleTimeString() : 'No re-check scheduled';
  }
  for (const [id, r] of rows) if (!live.has(id)) { r.tr.remove(); rows.delete(id); }
  nextCursor = list.nextCursor;
  const shown = list.sessions.length;
  $('count').textContent = String(list.total);
  // Pages are cut by cursor, not offset: the page count is what the total gives at this moment.
  $('range').textContent = list.total <= PAGE_ROWS && pageStarts.length === 1 ? '' : 'page ' + pageStarts.length + ' of ' + Math.max(pageStarts.length, Math.ceil(list.total / PAGE_ROWS));
  $('prev').disabled = pageStarts.length === 1;
  $('next').disabled = !nextCursor;
  const note = $('empty');
  note.hidden = shown > 0;
  note.textContent = list.total > 0 ? 'No sessions on this page.' : $('filter').value.trim() === '' ? 'No open sessions.' : 'No session matches the filter.';
}

async function refresh() {
  // The newest refresh wins: an answer from before a kick must not bring the kicked row back.
  const mine = ++seq;
  try {
    const [list, overview, series] = await Promise.all([api(sessionsQuery()), api('/api/overview'), api('/api/timeseries')]);
    if (mine !== seq) return;
    // The page emptied (its sessions closed): step back instead of showing nothing.
    if (list.sessions.length === 0 && pageStarts.length > 1) { pageStarts.pop(); refresh(); return; }
    renderSessions(list);
    renderTiles(overview);
    renderCharts(series);
    say('Updated ' + new Date().toLocaleTimeString() + ' \\u00b7 charts sampled in the edge every ' + Math.round(series.sampleIntervalMs / 1000) + ' s');
  } catch (err) {
    if (mine === seq) say('Cannot reach the edge: ' + err.message, true);
  }
}

async function kick(id, button) {
  button.disabled = true;
  try {
    await api('/api/sessions/' + encodeURIComponent(id), { method: 'DELETE' });
    say('Kicked session ' + id.slice(0, 6));
  } catch (err) {
    say('Kick failed: ' + err.message, true);
    button.disabled = false;
  }
  await refresh();
}

async function loop() {
  await refresh();
  setTimeout(loop, POLL_MS);
}

function restartFromFirstPage() {
  pageStarts.length = 1;
  refresh();
}
$('filter').addEventListener('input', () => {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(restartFromFirstPage, FILTER_DEBOUNCE_MS);
});
$('next').addEventListener('click', () => {
  if (!nextCursor) return;
  pageStarts.push(nextCursor);
  refresh();
});
$('prev').addEventListener('click', () => {
  if (pageStarts.length > 1) pageStarts.pop();
  refresh();
});
loop();
`;

function chart(id: string, label: string): string {
  return `<figure class="card" id="${id}"><figcaption><span>${label}</span><b>&mdash;</b></figcaption><svg role="img" aria-label="${label}, last 15 minutes"><path/><circle r="0"/></svg><div class="axis"><span>&minus;15 min</span><span class="max"></span><span>now</span></div></figure>`;
}

function card(id: string, label: string, title?: string): string {
  return `<div class="card"${title === undefined ? '' : ` title="${title}"`}><div class="l">${label}</div><div class="v" id="${id}">&mdash;</div><div class="s" id="${id}-s"></div></div>`;
}

const PAGE_BODY = `<header><h1>astra-auth-edge</h1><p id="status" role="status">Loading&hellip;</p></header>
<main>
<section aria-labelledby="h-now"><h2 id="h-now">Now</h2><div class="grid">
${card('t-sessions', 'Open sessions')}
${card('t-rps', 'Requests/s')}
${card('t-latency', 'Middleware p50 / p99')}
${card('t-avail', 'Availability, 15 min', 'Share of middleware calls that got an answer (allow or deny) rather than a timeout, refusal, 5xx or malformed reply')}
${card('t-default', 'Default allows, 15 min', 'Sessions let in by the default action because the middleware was unavailable')}
<div class="card"><div class="l">Decisions/s by source</div><dl id="t-decisions"></dl></div>
</div></section>
<section aria-labelledby="h-charts"><h2 id="h-charts">Last 15 minutes</h2><div class="grid charts">
${chart('c-rps', 'Requests/s')}
${chart('c-sessions', 'Open sessions')}
${chart('c-p99', 'Middleware p99')}
${chart('c-avail', 'Middleware availability')}
${chart('c-default', 'Default allows')}
</div></section>
<section aria-labelledby="h-sessions"><div class="bar"><h2 id="h-sessions">Sessions (<span id="count">0</span>)</h2>
<label>Filter <input id="filter" type="search" placeholder="channel or name" autocomplete="off"></label>
<span class="pager"><button type="button" class="nav" id="prev" disabled>Previous</button><span id="range"></span><button type="button" class="nav" id="next" disabled>Next</button></span></div>
<div class="scroll"><table aria-labelledby="h-sessions"><thead><tr><th scope="col">Channel</th><th scope="col">Name</th><th scope="col">IP</th><th scope="col">Kind</th><th scope="col" class="n">Duration</th><th scope="col" class="n">Bytes</th><th scope="col">Decision</th><th scope="col" class="n">Next check</th><th scope="col">Edge</th><th scope="col"><span class="sr">Action</span></th></tr></thead>
<tbody id="rows"></tbody></table></div><p id="empty" hidden></p></section>
</main>`;

const LOGIN_STYLE = `
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2127;background:#f4f5f7}
main{max-width:340px;margin:12vh auto;background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:20px 24px}
h1{font-size:16px;margin:0 0 12px}label{display:block;font-size:13px;margin-bottom:4px}
input{font:inherit;width:100%;padding:6px 8px;border:1px solid #c3c9d1;border-radius:4px;margin-bottom:12px}
button{font:inherit;padding:5px 16px;border:1px solid #1f5fad;border-radius:4px;background:#1f5fad;color:#fff;cursor:pointer}
p{color:#b3261e;margin:0 0 12px}
`;

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
}

function htmlDocument(title: string, style: string, body: string, script?: string): string {
  const js = script === undefined ? '' : `<script>${script}</script>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${title}</title><link rel="icon" href="data:,"><style>${style}</style></head>
<body>${body}${js}</body></html>
`;
}

function securityHeaders(style: string, script?: string): Record<string, string> {
  const scriptSrc = script === undefined ? "'none'" : sha256(script);
  return {
    'content-security-policy': `default-src 'none'; script-src ${scriptSrc}; style-src ${sha256(style)}; connect-src 'self'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
  };
}

export interface HtmlAnswer {
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
}

export const STATUS_PAGE: HtmlAnswer = Object.freeze({
  body: htmlDocument('astra-auth-edge status', STYLE, PAGE_BODY, SCRIPT),
  headers: Object.freeze(securityHeaders(STYLE, SCRIPT)),
});

const LOGIN_HEADERS = Object.freeze(securityHeaders(LOGIN_STYLE));

/** The form submits `GET /?token=…`; the answer sets the cookie and redirects to `/`. */
export function loginPage(wrongToken: boolean): HtmlAnswer {
  const note = wrongToken ? '<p role="alert">That token is not right.</p>' : '';
  const body = `<main><h1>astra-auth-edge</h1>${note}<form method="get" action="/"><label for="token">Admin token</label><input id="token" name="token" type="password" autocomplete="current-password" required autofocus><button type="submit">Sign in</button></form></main>`;
  return { body: htmlDocument('astra-auth-edge: sign in', LOGIN_STYLE, body), headers: LOGIN_HEADERS };
}
