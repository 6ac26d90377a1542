/**
 * `check`'s report for a terminal: step by step, like `curl -v` but with a
 * ✓ or ✗ per step and the verdict in words. `--json` prints the CheckReport
 * itself: the same facts.
 */
import type { Step } from './exchange.js';
import type { BackendReport, CheckReport, Outcome } from './run.js';

const PASS = '✓';
const FAIL = '✗';
const SKIP = '-';

/** 60000 → `60s`, 36000000 → `10h`: the way the flags are written. */
export function formatDuration(n: number): string {
  if (n < 1000 || n % 1000 !== 0) return `${n} ms`;
  const s = n / 1000;
  if (s % 3600 === 0) return `${s / 3600}h`;
  if (s < 600 || s % 60 !== 0) return `${s}s`;
  return `${s / 60}m`;
}

function fmtMs(n: number | undefined): string {
  if (n === undefined) return '';
  return ` (${n < 10 ? n.toFixed(1) : Math.round(n)} ms)`;
}

function mark(ok: boolean | null): string {
  return ok === true ? PASS : ok === false ? FAIL : SKIP;
}

function outcomeText(o: Outcome): string {
  if (o.result === 'unavailable') return `${FAIL} unavailable: ${o.message ?? o.reason} [${o.reason}]`;
  const extras = [
    o.ttlMs === undefined ? undefined : `holds ${formatDuration(o.ttlMs)}`,
    o.sessionName === undefined ? undefined : `name ${o.sessionName}`,
    o.userId === undefined ? undefined : `user ${o.userId}`,
    o.maxSessions === undefined ? undefined : `max sessions ${o.maxSessions}`,
    o.unique === true ? 'unique' : undefined,
    o.location === undefined ? undefined : `redirect to ${o.location}`,
  ].filter((x) => x !== undefined);
  return `${o.result === 'allow' ? PASS : FAIL} ${o.result} (${o.reason})${extras.length === 0 ? '' : `: ${extras.join(', ')}`}`;
}

function stepLines(steps: readonly Step[], indent: string): string[] {
  const out: string[] = [];
  for (const s of steps) {
    out.push(`${indent}${mark(s.ok)} ${s.step.toUpperCase().padEnd(5)} ${s.detail}${fmtMs(s.ms)}`);
    if (s.certificate !== undefined && s.ok !== false) {
      out.push(`${indent}        subject ${s.certificate.subject}; issuer ${s.certificate.issuer}`);
      out.push(`${indent}        valid ${s.certificate.validFrom} to ${s.certificate.validTo}${s.certificate.subjectAltName === undefined ? '' : `; ${s.certificate.subjectAltName}`}`);
    }
    if (s.ok === false && s.certificate !== undefined) out.push(`${indent}        valid ${s.certificate.validFrom} to ${s.certificate.validTo}${s.certificate.subjectAltName === undefined ? '' : `; ${s.certificate.subjectAltName}`}`);
    if (s.ok === false && s.hint !== undefined) out.push(`${indent}        → ${s.hint}`);
  }
  return out;
}

function backendLines(b: BackendReport): string[] {
  const out = [``, `Middleware ${b.name} (${b.type}): ${b.url}`];
  if (b.request === null) {
    out.push(`  no call: the ${b.type} backend decides without asking`);
  } else {
    out.push(`  > ${b.request.method} ${b.request.url}`);
    for (const [n, v] of b.request.headers) out.push(`  > ${n}: ${v}`);
    out.push(...stepLines(b.steps, '  '));
    if (b.response !== null) {
      for (const [n, v] of b.response.headers) out.push(`  < ${n}: ${v}`);
      if (b.response.body !== '') out.push(`  < body: ${JSON.stringify(b.response.body)}${b.response.bodyBytes > b.response.body.length ? ' …' : ''}`);
    }
  }
  out.push(`  → ${outcomeText(b.outcome)}`);
  if (b.recheck !== undefined) {
    out.push(`  asked again ${formatDuration(b.recheck.afterMs)} later (--recheck-probe):`);
    out.push(...stepLines(b.recheck.steps.filter((s) => s.ok === false || s.step === 'http'), '    '));
    out.push(`    → ${outcomeText(b.recheck.outcome)}${b.recheck.oneShot ? '   ONE-SHOT TOKEN' : ''}`);
  }
  return out;
}

export function formatCheckReport(r: CheckReport): string {
  const out: string[] = ['astra-auth-edge check'];
  out.push(`  request  GET ${r.request.url}`);
  out.push(`  from     ${r.request.peerIp} (${r.request.peerIpFrom === '--ip' ? '--ip' : 'default: pass --ip'})   User-Agent: ${r.request.userAgent === '' ? '(none)' : JSON.stringify(r.request.userAgent)}`);
  for (const [n, v] of r.request.headers) out.push(`  header   ${n}: ${v}`);

  out.push('', 'Identify');
  const id = r.identify;
  if (!id.ok) {
    if (id.path !== undefined) out.push(`  ${PASS} path      ${id.path}`);
    out.push(`  ${FAIL} ${id.step.padEnd(9)} refused: ${id.status} ${id.code}${id.reason === undefined ? '' : ` (${id.reason})`}`);
  } else {
    out.push(`  ${PASS} path      ${id.path}${id.rawPath !== id.path ? ` (sent as ${id.rawPath}, normalized)` : ''}`);
    out.push(`  ${PASS} query     ${id.query === '' ? '(none)' : id.query}`);
    out.push(`  ${PASS} channel   ${id.channel}: a ${id.kind} request, ${id.sessionKind === 'mpegts' ? 'an HTTP MPEG-TS' : 'an HLS'} session`);
    out.push(`  ${PASS} client IP ${id.clientIp}${id.clientIpFrom === 'forwarded' ? ' (from the trusted proxy\'s X-Forwarded-For / X-Real-IP)' : ''}`);
    out.push(`  ${id.token === null ? SKIP : PASS} token     ${id.token === null ? 'none in the query' : `${id.token} (${id.tokenLength} characters, decoded as the middleware reads it)`}`);
    if (id.host !== '') out.push(`  ${PASS} host      ${id.host}`);
  }

  const st = r.securetoken;
  if (r.rules.length > 0 && r.rules.every((s) => s.result === 'off') && !st.configured) {
    out.push('', 'Local rules: none configured (--ip-deny, --ip-allow, --user-agent-deny, --token-deny, --token-allow, --securetoken-secret)');
  } else if (r.rules.length > 0) {
    out.push('', 'Local rules (the first that matches decides)');
    for (const s of r.rules) {
      const entries = s.entries === 0 ? '' : `${s.entries} ${s.entries === 1 ? 'entry' : 'entries'}`;
      const result = s.result === 'match' ? `${s.allow ? PASS : FAIL} MATCH → ${s.allow ? 'allow' : 'deny'} ${s.reason}` : s.result.replace('_', ' ');
      out.push(`  ${s.order}. ${s.flag.padEnd(18)} ${entries.padEnd(11)} ${result}`);
    }
    const result = !st.configured
      ? 'off'
      : st.reason === null
        ? 'not reached'
        : `${st.allow === true ? PASS : FAIL} ${st.reason}${st.decides ? '' : ': not a securetoken, so the middleware decides'}`;
    out.push(`  6. ${'securetoken'.padEnd(18)} ${''.padEnd(11)} ${result}`);
  }

  for (const b of r.backends) out.push(...backendLines(b));

  const v = r.verdict;
  out.push('', 'Verdict');
  const head = v.result === 'allow' ? `${PASS} ALLOW` : v.result === 'deny' ? `${FAIL} DENY` : `${FAIL} UNAVAILABLE`;
  out.push(`  ${head}: ${v.summary}`);
  out.push(`  the viewer gets ${v.viewerGets}`);
  if (v.defaultAction !== undefined) out.push(`  default action: ${v.defaultAction.means}`);
  if (v.keptMs !== undefined) out.push(`  the edge keeps this decision ${formatDuration(v.keptMs)} (${v.keptBecause}), then asks again`);

  if (r.warnings.length > 0) {
    out.push('', 'Warnings');
    for (const w of r.warnings) out.push(`  ! ${w}`);
  }
  if (r.notes.length > 0) {
    out.push('', 'Notes');
    for (const n of r.notes) out.push(`  - ${n}`);
  }
  out.push('', `exit ${r.exitCode}`);
  return `${out.join('\n')}\n`;
}
